# DDCP wire messages: one schema for what peers send each other and what `ddcp bundle` writes.
# src/sync/codec.rs is the one place that turns these into Rust types.
@0xaaed5cf9ee473f3d;

# One SQLite value, as cr-sqlite stores it in crsql_changes.val.
struct Value {
  union {
    null @0 :Void;
    integer @1 :Int64;
    real @2 :Float64;
    text @3 :Text;
    blob @4 :Data;
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
}

struct Table {
  name @0 :Text;
  columns @1 :List(Column);
}

struct Schema {
  tables @0 :List(Table);
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
