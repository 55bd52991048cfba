//! The HTTP API's request bodies, as `ddcp serve --api` reads them: any bytes must give a
//! request or an error, never a panic, a hang or an unbounded allocation. The reading is
//! ddcp's own file, included as it is.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/api/request_json.rs"]
mod request_json;

use request_json::{StatementJson, TransactionRequest};

fuzz_target!(|data: &[u8]| {
    // POST /v1/transactions, and the one-statement routes (queries, subscriptions).
    if let Ok(request) = serde_json::from_slice::<TransactionRequest>(data) {
        for statement in request.statements {
            let _ = statement.into_parts();
        }
    }
    if let Ok(statement) = serde_json::from_slice::<StatementJson>(data) {
        let _ = statement.into_parts();
    }
});
