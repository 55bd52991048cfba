//! A member of a private database with a filter crafts its own requests: cursors it was never
//! given, versions past the end, mid-group positions of its choosing, page budgets from zero to
//! the largest, another database's schema fingerprint, other site ids as the asker, fragments
//! of answers built for a wider member (their hashes and original requests, which it could only
//! guess, given to it here), in any order. Its requests go through the owner's real gate and
//! responder on a real database, and every answer is opened as the member opens it: nothing in
//! any page, its changes or the rows it carries, is outside the member's filter, and every
//! fragment it is given belongs to an answer that is within it.

use std::collections::BTreeMap;

use ddcp::commands::filter_args::FilterFlags;
use ddcp::db::{Access, AccessState, Db, Extension, Member};
use ddcp::serve::{AccessGate, Admission};
use ddcp::sync::codec::{decode_message, encode_message};
use ddcp::sync::compress::Compression;
use ddcp::sync::cursor::RowKey;
use ddcp::sync::filter::{ChangeFilter, SENTINEL_CID};
use ddcp::sync::fragment::Reassembly;
use ddcp::sync::protocol::{
    ChangesPage, ChangesRequest, FragmentRequest, Fragmented, Hash, Message,
};
use ddcp::sync::seal::{authenticate, open_answer};
use ddcp::sync::serve::{MAX_PAGE_BUDGET, Responder};
use ddcp::sync::{Cursor, DbVersion, Epoch, MemberKeys, RecordKey, SchemaFingerprint, Seq, SiteId};
use proptest::prelude::*;
use proptest::test_runner::Config;

const SCHEMA: &str = "
    create table posts (id integer primary key not null, owner text, body text, secret text);
    select crsql_as_crr('posts');
    create table tags (id integer primary key not null, name text);
    select crsql_as_crr('tags');";

/// The owner's data, in several transactions: posts of three owners with secrets, tags, an
/// edit, a post handed from alice to bob, a deletion, and one post far bigger than a message
/// (its pages are fragmented).
const DATA: &[&str] = &[
    "insert into posts values (1, 'alice', 'a1', 'alice secret 1'), (2, 'bob', 'b1', 'bob secret 1')",
    "insert into tags values (1, 'news'), (2, 'misc')",
    "insert into posts values (3, 'carol', 'c1', 'carol secret 1')",
    "update posts set body = 'b1 edited', secret = 'bob secret 2' where id = 2",
    "update posts set owner = 'bob' where id = 1",
    "delete from posts where id = 3",
    "insert into posts values (4, 'alice', hex(randomblob(30000)), hex(randomblob(30000)))",
    "insert into posts values (5, 'bob', hex(randomblob(30000)), hex(randomblob(30000)))",
    "update tags set name = 'news!' where id = 1",
];

const RECORD: &str = "VLD0:73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY";

/// The owner: its database, gate and responder, as `ddcp serve` has them.
struct Owner {
    _dir: tempfile::TempDir,
    db: Db,
    gate: AccessGate,
    responder: Responder,
    record: RecordKey,
    owner: MemberKeys,
}

impl Owner {
    fn new(members: &[(&str, &MemberKeys, ChangeFilter)]) -> Owner {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::create(&dir.path().join("owner.db"), &Extension::BuiltIn).unwrap();
        db.connection().execute_batch(SCHEMA).unwrap();
        for sql in DATA {
            db.connection().execute_batch(sql).unwrap();
        }
        let record: RecordKey = RECORD.parse().unwrap();
        let owner = MemberKeys::generate();
        let state = AccessState {
            access: Access::Private,
            epoch: Epoch(1),
            members: members
                .iter()
                .map(|(name, keys, reads)| Member {
                    name: name.parse().unwrap(),
                    id: keys.id(),
                    added_at: 0,
                    reads: reads.clone(),
                })
                .collect(),
            shared: ChangeFilter::default(),
        };
        let gate = AccessGate::new(record.clone(), owner.clone(), state);
        Owner {
            _dir: dir,
            db,
            gate,
            responder: Responder::default(),
            record,
            owner,
        }
    }

    /// `request` asked by `member` as its puller asks (signed), answered as `ddcp serve`
    /// answers (the gate, the responder through the member's filter, the answer sealed), and
    /// opened as the member opens it.
    fn ask(&mut self, member: &MemberKeys, request: &Message) -> Message {
        let inner = encode_message(request, Compression::None);
        let asked = authenticate(member, &self.record, Epoch(1), inner);
        let wire = encode_message(&Message::Authenticated(asked.clone()), Compression::None);
        let Admission::Member(admitted, reads) = self.gate.admit(wire) else {
            panic!("a member's request was not admitted");
        };
        let answer =
            self.responder
                .respond_within(&self.db, &admitted.request, MAX_PAGE_BUDGET, &reads);
        let sealed = self.gate.seal(&admitted, &answer);
        let Ok(Message::SealedAnswer(sealed)) = decode_message(&sealed) else {
            panic!("a member's answer was not sealed");
        };
        let opened = open_answer(member, &self.owner.id(), &self.record, &asked, &sealed).unwrap();
        decode_message(&opened).unwrap()
    }
}

/// Every change and row in `page` passes `filter` (and a row predicate holds for the row at
/// the owner, unless the change deletes it).
fn check_page(owner: &Owner, filter: &ChangeFilter, page: &ChangesPage) {
    for change in page.changes.iter().chain(&page.rows) {
        assert!(
            filter.admits(change),
            "sent outside the member's filter: {change:?}"
        );
        let deletion = change.cid == SENTINEL_CID && change.cl % 2 == 0;
        if let (Some(rows), false) = (&filter.rows, deletion) {
            assert!(
                owner
                    .db
                    .row_matches(&change.table, &change.pk, rows)
                    .unwrap(),
                "sent a row outside the member's predicate: {change:?}"
            );
        }
    }
}

/// The whole answer behind `manifest`, fetched fragment by fragment as `member`.
fn fetch_whole(
    owner: &mut Owner,
    member: &MemberKeys,
    original: &Message,
    manifest: &Fragmented,
) -> Vec<u8> {
    let original = encode_message(original, Compression::None);
    let mut whole = Reassembly::new(manifest.clone()).unwrap();
    for index in 0..manifest.fragment_count {
        let request = Message::FragmentRequest(FragmentRequest {
            original: original.clone(),
            hash: manifest.hash,
            index,
        });
        let Message::Fragment(fragment) = owner.ask(member, &request) else {
            panic!("a fragment of a member's own answer was not given");
        };
        if let Some(bytes) = whole.add(index, fragment.bytes).unwrap() {
            return bytes;
        }
    }
    panic!("the fragments did not make the answer");
}

/// What the member's own filter may be.
fn filter_of(choice: u8) -> ChangeFilter {
    let flags = match choice % 5 {
        0 => FilterFlags {
            tables: Some("tags"),
            ..FilterFlags::default()
        },
        1 => FilterFlags {
            exclude_columns: Some("posts.secret"),
            ..FilterFlags::default()
        },
        2 => FilterFlags {
            tables: Some("posts"),
            rows: Some("owner = 'bob'"),
            ..FilterFlags::default()
        },
        3 => FilterFlags {
            tables: Some("posts"),
            exclude_columns: Some("posts.secret"),
            rows: Some("owner = 'alice'"),
            ..FilterFlags::default()
        },
        _ => FilterFlags {
            tables: Some("posts"),
            exclude_columns: Some("posts.body,posts.secret"),
            ..FilterFlags::default()
        },
    };
    flags.applied_to(&ChangeFilter::default()).unwrap()
}

/// One request the member crafts.
#[derive(Clone, Debug)]
enum Crafted {
    Changes {
        asker: u8,
        version: i64,
        within: Option<(i64, u8, Vec<u8>, u8)>,
        max_bytes: u32,
        fingerprint: u8,
    },
    /// A fragment of an answer built for the wide member (`which` of them), or of its own.
    Fragment {
        wide: bool,
        which: usize,
        index: u32,
        own_original: bool,
    },
    Schema,
}

fn crafted() -> impl Strategy<Value = Crafted> {
    let version = prop_oneof![
        Just(0i64),
        0i64..14,
        Just(i64::MAX),
        Just(-1i64),
        Just(1i64 << 53)
    ];
    let within = proptest::option::of((
        prop_oneof![Just(0i64), 0i64..40, Just(i64::MAX)],
        0u8..3,
        proptest::collection::vec(any::<u8>(), 0..4),
        0u8..5,
    ));
    let max_bytes = prop_oneof![
        Just(0u32),
        Just(1),
        0u32..5000,
        Just(64 << 10),
        Just(u32::MAX)
    ];
    prop_oneof![
        6 => (0u8..3, version, within, max_bytes, 0u8..3).prop_map(
            |(asker, version, within, max_bytes, fingerprint)| Crafted::Changes {
                asker, version, within, max_bytes, fingerprint,
            }
        ),
        3 => (any::<bool>(), 0usize..8, 0u32..6, any::<bool>()).prop_map(
            |(wide, which, index, own_original)| Crafted::Fragment { wide, which, index, own_original }
        ),
        1 => Just(Crafted::Schema),
    ]
}

/// The member's request for `crafted`; fragment requests need the answers seen so far.
fn request_of(
    crafted: &Crafted,
    schema: SchemaFingerprint,
    owner_site: SiteId,
    seen: &Seen,
) -> Option<Message> {
    Some(match crafted {
        Crafted::Changes {
            asker,
            version,
            within,
            max_bytes,
            fingerprint,
        } => Message::ChangesRequest(ChangesRequest {
            asker: match asker {
                0 => SiteId([0; 16]),
                1 => owner_site,
                _ => SiteId([7; 16]),
            },
            since: Cursor {
                db_version: DbVersion(*version),
                within: within.as_ref().map(|(seq, table, pk, cid)| RowKey {
                    seq: Seq(*seq),
                    table: ["posts", "tags", "nosuch"][*table as usize].to_string(),
                    pk: pk.clone(),
                    cid: ["owner", "body", "secret", SENTINEL_CID, "name"][*cid as usize]
                        .to_string(),
                }),
            },
            max_bytes: *max_bytes,
            schema_fingerprint: match fingerprint {
                0 => schema,
                1 => SchemaFingerprint([0; 32]),
                _ => SchemaFingerprint([9; 32]),
            },
            listen: None,
        }),
        Crafted::Fragment {
            wide,
            which,
            index,
            own_original,
        } => {
            let answers = if *wide { &seen.wide } else { &seen.own };
            let (hash, wide_original) = answers.iter().nth(which % answers.len().max(1))?;
            let original = match (own_original, seen.own.values().next()) {
                (true, Some(own)) => own.clone(),
                _ => wide_original.clone(),
            };
            Message::FragmentRequest(FragmentRequest {
                original,
                hash: *hash,
                index: *index,
            })
        }
        Crafted::Schema => Message::SchemaRequest,
    })
}

/// Fragmented answers seen: by hash, the request each answered.
#[derive(Default)]
struct Seen {
    wide: BTreeMap<Hash, Vec<u8>>,
    own: BTreeMap<Hash, Vec<u8>>,
}

proptest! {
    #![proptest_config(Config { cases: 64, ..Config::default() })]

    #[test]
    fn a_member_crafting_its_own_requests_gets_nothing_outside_its_filter(
        choice in 0u8..5,
        steps in proptest::collection::vec(crafted(), 1..24),
    ) {
        let filter = filter_of(choice);
        let (wide, narrow) = (MemberKeys::generate(), MemberKeys::generate());
        let mut owner = Owner::new(&[
            ("wide", &wide, ChangeFilter::default()),
            ("narrow", &narrow, filter.clone()),
        ]);
        let schema = owner.db.schema().unwrap().fingerprint();
        let owner_site = owner.db.site_id().unwrap();
        // Every whole answer built for the wide member, by hash: a fragment the narrow member
        // is given must be of an answer within its filter.
        let mut wide_answers: BTreeMap<Hash, Vec<u8>> = BTreeMap::new();
        let mut seen = Seen::default();
        // The wide member pulls first (its answers fill the owner's caches), in pages small and
        // large.
        for max_bytes in [1024u32, MAX_PAGE_BUDGET] {
            let request = Message::ChangesRequest(ChangesRequest {
                asker: SiteId([1; 16]),
                since: Cursor::START,
                max_bytes,
                schema_fingerprint: schema,
                listen: None,
            });
            if let Message::Fragmented(manifest) = owner.ask(&wide, &request) {
                let whole = fetch_whole(&mut owner, &wide, &request, &manifest);
                wide_answers.insert(manifest.hash, whole);
                seen.wide.insert(manifest.hash, encode_message(&request, Compression::None));
            }
        }
        prop_assert!(!seen.wide.is_empty(), "the wide member's pages were never fragmented");
        for crafted in &steps {
            let Some(request) = request_of(crafted, schema, owner_site, &seen) else {
                continue;
            };
            match owner.ask(&narrow, &request) {
                Message::ChangesPage(page) => check_page(&owner, &filter, &page),
                Message::Fragmented(manifest) => {
                    let whole = fetch_whole(&mut owner, &narrow, &request, &manifest);
                    let Ok(Message::ChangesPage(page)) = decode_message(&whole) else {
                        panic!("a fragmented answer that is not a page");
                    };
                    check_page(&owner, &filter, &page);
                    seen.own.insert(manifest.hash, encode_message(&request, Compression::None));
                }
                Message::Fragment(fragment) => {
                    // Of an answer built for the wide member: only if that answer is within
                    // the narrow member's filter too (then the narrow one's is the same bytes).
                    if let Some(whole) = wide_answers.get(&fragment.hash) {
                        let Ok(Message::ChangesPage(page)) = decode_message(whole) else {
                            panic!("a wide answer that is not a page");
                        };
                        check_page(&owner, &filter, &page);
                    } else {
                        // Else it can only be of an answer built for it, checked whole above.
                        assert!(
                            seen.own.contains_key(&fragment.hash),
                            "a fragment of an answer it never saw: {:?}",
                            fragment.hash
                        );
                    }
                }
                // Refusals (malformed, unknown cursor, another schema, a fragment gone) and
                // the schema (shared with every member: names, not contents).
                Message::Error(_) | Message::Schema(_) => {}
                other => panic!("an answer of an unexpected kind: {other:?}"),
            }
        }
    }
}
