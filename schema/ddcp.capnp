# DDCP wire messages: one schema for what peers send each other and what `ddcp bundle` writes.
# src/sync/codec/ turns these into Rust types and back.
@0xaaed5cf9ee473f3d;

# One SQLite value, as cr-sqlite stores it in crsql_changes.val.
struct Value {
  union {
    null @0 :Void;
    integer @1 :Int64;
    real @2 :Float64;
    text @3 :Text;
    blob @4 :Data;
    rawText @5 :Data;   # TEXT that is not valid UTF-8 (SQLite allows it): kept byte for byte
  }
}

# One row of crsql_changes: a column of a row (or a row's delete / create sentinel) at a version.
struct Change {
  table @0 :Text;
  pk @1 :Data;          # cr-sqlite's packed primary key
  cid @2 :Text;         # column name, or "-1" for the row sentinel
  val @3 :Value;
  colVersion @4 :Int64;
  dbVersion @5 :Int64;  # the version at the database the change was read from
  siteId @6 :Data;      # 16 bytes: the site that authored the change (kept across relays)
  cl @7 :Int64;         # causal length: odd = row exists, even = row deleted
  seq @8 :Int64;        # position within the source transaction
}

# A run of changes, in (dbVersion, seq) order.
struct Changeset {
  changes @0 :List(Change);
}

# The shape of the CRR tables: peers (and bundles) replicate only between equal schemas.
struct Column {
  name @0 :Text;
  declType @1 :Text;
  notNull @2 :Bool;
  pkIndex @3 :UInt32;   # 0 when not part of the primary key, else its 1-based position
  defaultValue @4 :Text; # the DEFAULT expression as SQLite keeps it (`ddcp clone` re-creates
  hasDefault @5 :Bool;   # tables with it); not part of the fingerprint
}

struct Table {
  name @0 :Text;
  columns @1 :List(Column);
}

struct Schema {
  tables @0 :List(Table);
  migrations @1 :List(Text);   # the schema history: the additive migrations that made it,
                               # oldest first (empty in a bundle, and from older builds)
}

# First message of a bundle file; Changeset messages follow, then a SHA-256 of all before it.
struct BundleHeader {
  formatVersion @0 :UInt32;
  siteId @1 :Data;          # the database the bundle was made from
  sinceVersion @2 :Int64;   # changes after this db_version of that database ...
  untilVersion @3 :Int64;   # ... up to and including this one
  changeCount @4 :UInt64;
  schema @5 :Schema;
}

# ---- The sync protocol: a puller asks, the remote answers; every message at most 32 KiB. ----

# Where a puller stands in a remote's changes. Changes are ordered by
# (dbVersion, seq, table, pk, cid): seq alone does not tell rows of one db_version apart once a
# database has merged several peers' transactions in one of its own.
struct Cursor {
  dbVersion @0 :Int64;     # every change up to this version is done, but for `within`
  union {
    groupDone @1 :Void;    # dbVersion's changes are all done
    within @2 :RowKey;     # dbVersion's changes are done up to and including this row
  }
}

struct RowKey {
  seq @0 :Int64;
  table @1 :Text;
  pk @2 :Data;
  cid @3 :Text;
}

# What a database publishes in its DHT record (subkey 0).
struct Status {
  protocolVersion @0 :UInt16;
  siteId @1 :Data;
  dbVersion @2 :Int64;
  schemaFingerprint @3 :Data;
  route @4 :Data;            # the private route blob peers call this database on
  publicKey @5 :Data;        # the database's member id (ed25519): what its answers are sealed with
  sealed @6 :SealedStatus;   # a private database: the Status above, for its members only
                             # (then the fields above are empty)
  incarnation @7 :UInt64;    # the database's life since its last restore (0: not known)
  historyLength @8 :UInt32;  # migrations in its schema history ...
  historyHead @9 :Data;      # ... and the hash chain's head over them (empty: none)
}

# A private database's Status, which only its members can open (crates/ddcp-sync/src/seal.rs).
struct SealedStatus {
  epoch @0 :UInt64;          # moves on when a member is removed: older requests are refused
  owner @1 :Data;            # the database's member id (ed25519 public key)
  keys @2 :List(Data);       # the body's key, sealed to each member in turn (48 bytes each)
  nonce @3 :Data;            # 24 bytes
  body @4 :Data;             # a Status message, encrypted with that key
}

# A request to a private database: the asker's member id, signed, bound to the database and
# the epoch. The answer is a SealedAnswer that only this member can open.
struct Authenticated {
  member @0 :Data;           # the asker's member id (ed25519 public key)
  epoch @1 :UInt64;          # the epoch of the Status the asker read
  nonce @2 :Data;            # 24 random bytes: the answer is bound to this request
  request @3 :Data;          # the request itself, an Envelope
  signature @4 :Data;        # ed25519 over the database's record key, epoch, nonce and request
}

struct SealedAnswer {
  nonce @0 :Data;            # 24 bytes
  answer @1 :Data;           # an Envelope, encrypted for the member who asked
}

struct ChangesRequest {
  askerSiteId @0 :Data;      # rows this site wrote are left out: it has them
  since @1 :Cursor;
  maxBytes @2 :UInt32;       # the page budget; more than one message is fine (fragments)
  schemaFingerprint @3 :Data;
  listen @4 :Listen;         # unset: the asker is not told of new versions
}

# "Tell me of your new versions on this route": notes (below) go to `route` while the asker
# keeps asking; each quotes `token`, which only the asker and the answering database know.
struct Listen {
  route @0 :Data;            # the asker's private route blob
  token @1 :Data;            # 16 random bytes of the asker's
}

# A one-way hint (app_message) to a listening peer: the database has a new version. Only a
# hint: the peer pulls as it would on seeing the Status, and checks what it gets as always.
struct Note {
  token @0 :Data;            # the listener's token
  dbVersion @1 :Int64;
  incarnation @2 :UInt64;
}

# A private database's note, sealed for the member who listens: only it and the database open
# it (crates/ddcp-sync/src/seal.rs). The token is in clear, to find the listener's remote.
struct SealedNote {
  token @0 :Data;            # the listener's token, also what the seal is bound to
  epoch @1 :UInt64;          # the key epoch it is sealed in
  nonce @2 :Data;            # 24 bytes
  note @3 :Data;             # a Note message, encrypted
}

enum Compression {
  none @0;
  zstd @1;
}

struct ChangesPage {
  siteId @0 :Data;           # the answering database
  since @1 :Cursor;          # the request's cursor, echoed: stale answers are recognized
  after @2 :Cursor;          # where the next request starts
  groupComplete @3 :Bool;    # false: the page is part of one db_version group; more follows
  more @4 :Bool;             # the remote had changes beyond `after` when it answered
  dbVersion @5 :Int64;       # the remote's db_version when it answered
  changeCount @6 :UInt32;
  compression @7 :Compression;
  changes @8 :Data;          # a Changeset message, compressed as `compression` says
  # Rows a filtered reader may not have seen whole: every current cell (db_version at or
  # before `since`) of a row that a change in this page may have made visible to it. A
  # Changeset, compressed as `rowCompression` says; empty for an unfiltered reader.
  rowCount @9 :UInt32;
  rowCompression @10 :Compression;
  rows @11 :Data;
  # The answering database's life since its last restore (0: not known). A restore brings back
  # the backup's version counter: a cursor from another life would skip changes, so the puller
  # starts over.
  incarnation @12 :UInt64;
}

# An answer too big for one message: the puller fetches it in fragments.
struct Fragmented {
  hash @0 :Data;             # SHA-256 of the whole answer (an Envelope)
  totalLen @1 :UInt64;
  fragmentCount @2 :UInt32;
}

struct FragmentRequest {
  original @0 :Data;         # the request (an Envelope) whose answer was fragmented
  hash @1 :Data;
  index @2 :UInt32;
}

struct Fragment {
  hash @0 :Data;
  index @1 :UInt32;
  bytes @2 :Data;
}

enum ErrorCode {
  malformed @0;              # the request could not be decoded
  schemaMismatch @1;         # CRR schemas differ: nothing can be exchanged
  unknownCursor @2;          # the cursor is ahead of this database: start over
  tooBusy @3;                # try again later
  notAllowed @4;             # the asker may not read this database
  fragmentGone @5;           # the fragmented answer changed: ask for the page again
  unsupportedVersion @6;     # protocol versions differ
  internal @7;               # the database failed to answer
}

struct Error {
  code @0 :ErrorCode;
  message @1 :Text;
}

struct Envelope {
  protocolVersion @0 :UInt16;
  union {
    changesRequest @1 :ChangesRequest;
    changesPage @2 :ChangesPage;
    fragmented @3 :Fragmented;
    fragmentRequest @4 :FragmentRequest;
    fragment @5 :Fragment;
    error @6 :Error;
    schemaRequest @7 :Void;
    schema @8 :Schema;
    authenticated @9 :Authenticated;   # a private database's request
    sealedAnswer @10 :SealedAnswer;    # its answer
    note @11 :Note;                    # a new version, to a listener (app_message)
    sealedNote @12 :SealedNote;        # a private database's note, to a member
  }
}
