//! Everything a peer or a file can hand ddcp's decoders: any bytes must give a value or an
//! error, never a panic, a hang or an unbounded allocation (libFuzzer's -malloc_limit_mb).

#![no_main]

use std::sync::LazyLock;

use ddcp_sync::bundle::BundleReader;
use ddcp_sync::codec::{
    decode_changeset, decode_message, decode_note, decode_published, decode_request,
    decode_status,
};
use ddcp_sync::cursor::Cursor;
use ddcp_sync::protocol::{Message, Published};
use ddcp_sync::pull::Puller;
use ddcp_sync::schema::SchemaFingerprint;
use ddcp_sync::seal::{check_request, open_answer, open_note, open_own_status, open_status};
use ddcp_sync::sealed_file::open_sealed;
use ddcp_sync::SiteId;
use ddcp_sync::{Epoch, MemberKeys, RecordKey};
use libfuzzer_sys::fuzz_target;

/// A member identity and a record, made once: deriving a key per input would be most of the
/// time spent.
static ME: LazyLock<MemberKeys> = LazyLock::new(|| MemberKeys::from_secret([3; 32]));
static RECORD: LazyLock<RecordKey> = LazyLock::new(|| {
    "VLD0:73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY"
        .parse()
        .unwrap()
});

fuzz_target!(|data: &[u8]| {
    let (me, record) = (&*ME, &*RECORD);
    let _ = decode_message(data);
    let _ = decode_request(data);
    let _ = decode_status(data);
    let _ = decode_changeset(&mut &data[..]);
    // A private database's messages, opened and checked as a member and a server would.
    if let Ok(Published::Sealed(sealed)) = decode_published(data) {
        let _ = open_status(me, record, &sealed);
        let _ = open_own_status(me, record, &sealed);
    }
    let _ = open_sealed(me, data);
    match decode_note(data) {
        Ok(Message::SealedNote(sealed)) => {
            let _ = open_note(me, &me.id(), record, &sealed);
        }
        _ => {}
    }
    if let Ok(Message::Authenticated(request)) = decode_message(data) {
        let _ = check_request(record, Epoch(1), |_| true, &request);
        let answer = ddcp_sync::seal::seal_answer(me, record, &request, data);
        let _ = open_answer(me, &me.id(), record, &request, &answer);
    }
    if let Ok(mut reader) = BundleReader::open(data) {
        while let Ok(Some(_)) = reader.next_changes() {}
    }
    // The puller on top: a fragment manifest followed by fragments must not blow up either.
    let mut puller = Puller::new(
        SiteId([1; 16]),
        SiteId([2; 16]),
        SchemaFingerprint([0; 32]),
        Cursor::START,
        1 << 16,
    );
    for chunk in data.split(|byte| *byte == 0xa5).take(64) {
        let _ = puller.receive(chunk);
        let _ = puller.requests();
    }
});
