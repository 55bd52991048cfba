//! A subscription as a response body: NDJSON lines, sent as its deliveries come, ending when
//! the subscription does (docs/api.md has the lines).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame};
use serde_json::{Value as Json, json};

use super::json::row_to_json;
use crate::app::{Delivery, RowChange, RowEvent, Subscription};

/// A subscription's lines: `{"id", "columns"}` first, then one per delivery.
#[derive(Debug)]
pub struct SubscriptionBody {
    subscription: Subscription,
    /// The first line, until sent.
    header: Option<Bytes>,
}

impl SubscriptionBody {
    /// The lines of `subscription`.
    pub fn new(subscription: Subscription) -> SubscriptionBody {
        let header = line(&json!({
            "id": subscription.id(),
            "columns": subscription.columns(),
        }));
        SubscriptionBody {
            subscription,
            header: Some(header),
        }
    }
}

impl Body for SubscriptionBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(header) = self.header.take() {
            return Poll::Ready(Some(Ok(Frame::data(header))));
        }
        self.subscription
            .poll_next(context)
            .map(|delivery| delivery.map(|delivery| Ok(Frame::data(lines(&delivery)))))
    }
}

/// A delivery's lines: the rows (a line each, then `{"eoq": {"change_id": 0}}`), or an event.
fn lines(delivery: &Delivery) -> Bytes {
    match delivery {
        Delivery::Rows(rows) => {
            let mut text = Vec::new();
            for row in rows {
                text.extend_from_slice(&line(&json!({ "row": row_to_json(row) })));
            }
            text.extend_from_slice(&line(&json!({ "eoq": { "change_id": 0 } })));
            Bytes::from(text)
        }
        Delivery::Event(event) => line(&event_json(event)),
    }
}

/// `{"change_id", "event", "row"}`, or `{"change_id", "error"}` when the query failed.
fn event_json(event: &RowEvent) -> Json {
    let (name, row) = match &event.change {
        RowChange::Insert(row) => ("insert", row),
        RowChange::Update(row) => ("update", row),
        RowChange::Delete(row) => ("delete", row),
        RowChange::QueryFailed(why) => {
            return json!({ "change_id": event.change_id, "error": why });
        }
    };
    json!({ "change_id": event.change_id, "event": name, "row": row_to_json(row) })
}

/// One NDJSON line.
fn line(json: &Json) -> Bytes {
    let mut text = serde_json::to_vec(json).unwrap_or_default();
    text.push(b'\n');
    Bytes::from(text)
}
