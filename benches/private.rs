//! What a private database costs, measured in one run against the same work done public:
//! the sealed Status's size per member and the time to seal and open it, and per request the
//! bytes and time that signing, checking and sealing add to a plain exchange (a schema request
//! and a full 32 KiB answer). Figures are printed, never asserted. `cargo bench --bench
//! private` runs full size; `cargo test --benches` runs a small smoke.

use std::time::{Duration, Instant};

use ddcp::sync::codec::{decode_message, encode_message, encode_published, encode_status};
use ddcp::sync::compress::Compression;
use ddcp::sync::protocol::{MAX_ANSWER_BYTES, Message, Published, Status};
use ddcp::sync::seal::{
    MAX_MEMBERS, authenticate, check_request, member_seals, open_answer, open_status, seal_answer,
    seal_status, seal_with,
};
use ddcp::sync::{DbVersion, Epoch, MemberId, MemberKeys, RecordKey, SchemaFingerprint, SiteId};

fn record() -> RecordKey {
    "VLD0:73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY"
        .parse()
        .unwrap()
}

/// Mean time of `work` over `rounds` runs.
fn time(rounds: u32, mut work: impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..rounds {
        work();
    }
    started.elapsed() / rounds
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn status_costs(rounds: u32) {
    let owner = MemberKeys::generate();
    // A route blob of Veilid's on the test network is about 500 bytes.
    let status = Status {
        site_id: SiteId([1; 16]),
        db_version: DbVersion(12345),
        schema_fingerprint: SchemaFingerprint([2; 32]),
        route: vec![7; 500],
        public_key: owner.id().as_bytes().to_vec(),
        incarnation: ddcp::sync::Incarnation(1),
        history: Default::default(),
    };
    let open = encode_status(&status);
    println!(
        "status: public {} bytes (baseline); sealed, by member count:",
        open.len()
    );
    for members in [1, 10, 100, MAX_MEMBERS] {
        let keys: Vec<MemberKeys> = (0..members).map(|_| MemberKeys::generate()).collect();
        let ids: Vec<MemberId> = keys.iter().map(MemberKeys::id).collect();
        let sealed = seal_status(&owner, &record(), Epoch(1), &ids, &open);
        let bytes = encode_published(&Published::Sealed(sealed.clone())).len();
        let per_member = (bytes - open.len()) as f64 / members as f64;
        // Once per epoch and change of members: a key agreement per member.
        let seals = time(rounds, || {
            member_seals(&owner, &record(), Epoch(1), &ids);
        });
        // At every publish: the body only, the seals kept.
        let made = member_seals(&owner, &record(), Epoch(1), &ids);
        let publish = time(rounds, || {
            seal_with(&owner, &record(), Epoch(1), made.clone(), &open);
        });
        // The last member's seal is found last: the worst case for opening.
        let opener = keys.last().unwrap();
        let opening = time(rounds, || {
            open_status(opener, &record(), &sealed).unwrap();
        });
        println!(
            "  {members:>4} members: {bytes:>6} bytes ({:.2}x public, {per_member:.1} bytes per member); seals {:.0} us per epoch, {:.0} us per publish; a member opens it in {:.0} us",
            bytes as f64 / open.len() as f64,
            micros(seals),
            micros(publish),
            micros(opening)
        );
    }
}

fn request_costs(rounds: u32) {
    let owner = MemberKeys::generate();
    let member = MemberKeys::generate();
    let request = encode_message(&Message::SchemaRequest, Compression::None);
    let answer = vec![0x5a; MAX_ANSWER_BYTES];
    // Baseline: what a public exchange does with the same bytes (decode the request).
    let plain = time(rounds, || {
        decode_message(&request).unwrap();
    });
    let mut wire = Vec::new();
    let mut sealed_wire = Vec::new();
    let private = time(rounds, || {
        // Asker: sign. Server: decode, check, seal the answer. Asker: decode, open.
        let asked = authenticate(&member, &record(), Epoch(1), request.clone());
        wire = encode_message(&Message::Authenticated(asked), Compression::None);
        let Ok(Message::Authenticated(received)) = decode_message(&wire) else {
            unreachable!()
        };
        check_request(&record(), Epoch(1), |_| true, &received).unwrap();
        let sealed = seal_answer(&owner, &record(), &received, &answer);
        sealed_wire = encode_message(&Message::SealedAnswer(sealed), Compression::None);
        let Ok(Message::SealedAnswer(sealed)) = decode_message(&sealed_wire) else {
            unreachable!()
        };
        open_answer(&member, &owner.id(), &record(), &received, &sealed).unwrap();
    });
    println!(
        "request: {} bytes plain, {} signed (+{}); answer of {} bytes sealed: +{} bytes",
        request.len(),
        wire.len(),
        wire.len() - request.len(),
        answer.len(),
        sealed_wire.len() - answer.len()
    );
    println!(
        "per request, both ends: public {:.1} us (decoding the request); private {:.0} us more (sign, check, two key agreements, a 32 KiB answer sealed and opened)",
        micros(plain),
        micros(private) - micros(plain)
    );
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let rounds = if full { 200 } else { 3 };
    println!("private databases ({rounds} rounds per figure)");
    status_costs(rounds);
    request_costs(rounds * 10);
}
