//! Everything a peer or a file can hand ddcp's decoders: any bytes must give a value or an
//! error, never a panic, a hang or an unbounded allocation (libFuzzer's -malloc_limit_mb).

#![no_main]

use ddcp_sync::bundle::BundleReader;
use ddcp_sync::codec::{decode_message, decode_status};
use ddcp_sync::cursor::Cursor;
use ddcp_sync::pull::Puller;
use ddcp_sync::schema::SchemaFingerprint;
use ddcp_sync::SiteId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_message(data);
    let _ = decode_status(data);
    if let Ok(mut reader) = BundleReader::open(data) {
        while let Ok(Some(_)) = reader.next_changes() {}
    }
    // The puller on top: a fragment manifest followed by fragments must not blow up either.
    let mut puller = Puller::new(SiteId([1; 16]), SiteId([2; 16]), SchemaFingerprint([0; 32]), Cursor::START, 1 << 16);
    for chunk in data.split(|byte| *byte == 0xa5).take(64) {
        let _ = puller.receive(chunk);
        let _ = puller.requests();
    }
});
