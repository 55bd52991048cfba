//! Asking a remote for its schema and history: one request, whose answer may come fragmented
//! (a history of many migrations is bigger than one message) and is then fetched fragment by
//! fragment, as a page is.

use super::codec::{decode_message, encode_message};
use super::compress::Compression;
use super::fragment::Reassembly;
use super::protocol::{ErrorCode, FragmentRequest, Message, PublishedSchema};
use super::pull::{FRAGMENT_WINDOW, PullError};

/// Rounds of requests a fetch may take: enough for the biggest answer, fragments
/// [`FRAGMENT_WINDOW`] at a time, with some lost on the way.
pub const MAX_SCHEMA_ROUNDS: u32 = 64;

/// One fetch of a remote's schema.
#[derive(Debug, Default)]
pub struct SchemaFetch {
    reassembly: Option<Reassembly>,
}

impl SchemaFetch {
    /// A fetch that has received nothing yet.
    pub fn new() -> Self {
        SchemaFetch::default()
    }

    /// What to send now: the schema request, or the fragments of its answer still missing.
    pub fn requests(&self) -> Vec<Vec<u8>> {
        let request = schema_request();
        let Some(reassembly) = &self.reassembly else {
            return vec![request];
        };
        let hash = reassembly.manifest().hash;
        reassembly
            .missing()
            .take(FRAGMENT_WINDOW)
            .map(|index| {
                let fragment = FragmentRequest {
                    original: request.clone(),
                    hash,
                    index,
                };
                encode_message(&Message::FragmentRequest(fragment), Compression::None)
            })
            .collect()
    }

    /// Makes sense of one answer: the schema once it is whole, None while it is not (or the
    /// answer was a repeat or late).
    pub fn receive(&mut self, answer: &[u8]) -> Result<Option<PublishedSchema>, PullError> {
        match decode_message(answer)? {
            Message::Schema(schema) => Ok(Some(schema)),
            Message::Fragmented(manifest) if self.reassembly.is_none() => {
                self.reassembly = Some(Reassembly::new(manifest)?);
                Ok(None)
            }
            Message::Fragment(fragment) => {
                let Some(reassembly) = self.reassembly.as_mut() else {
                    return Ok(None);
                };
                if reassembly.manifest().hash != fragment.hash {
                    return Ok(None);
                }
                match reassembly.add(fragment.index, fragment.bytes) {
                    Ok(None) => Ok(None),
                    Ok(Some(whole)) => {
                        self.reassembly = None;
                        match decode_message(&whole)? {
                            Message::Schema(schema) => Ok(Some(schema)),
                            _ => Err(PullError::BadPage("fragments held something else")),
                        }
                    }
                    Err(err) => {
                        self.reassembly = None;
                        Err(err.into())
                    }
                }
            }
            Message::Error(error) if error.code == ErrorCode::FragmentGone => {
                // The schema changed while it was fetched: ask for it again.
                self.reassembly = None;
                Ok(None)
            }
            Message::Error(error) => Err(PullError::Refused(error)),
            Message::Fragmented(_) => Ok(None),
            _ => Err(PullError::BadPage("not a schema")),
        }
    }
}

/// The request for a remote's CRR schema and its history.
pub fn schema_request() -> Vec<u8> {
    encode_message(&Message::SchemaRequest, Compression::None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fragment;
    use crate::protocol::Fragment;
    use crate::schema_history::SchemaHistory;

    #[test]
    fn a_fragmented_schema_is_fetched_whole() {
        let migrations: Vec<String> = (0..40)
            .map(|n| {
                format!(
                    "create table t{n} (id integer primary key not null, body text); -- {}",
                    "x".repeat(2000)
                )
            })
            .collect();
        let schema = PublishedSchema {
            shape: Default::default(),
            history: SchemaHistory::new(migrations).unwrap(),
        };
        let answer = encode_message(&Message::Schema(schema.clone()), Compression::None);
        let manifest = fragment::manifest(&answer);
        let mut fetch = SchemaFetch::new();
        assert_eq!(fetch.requests(), vec![schema_request()]);
        let manifest_answer =
            encode_message(&Message::Fragmented(manifest.clone()), Compression::None);
        assert_eq!(fetch.receive(&manifest_answer).unwrap(), None);
        let mut whole = None;
        for round in 0..MAX_SCHEMA_ROUNDS {
            let requests = fetch.requests();
            assert!(!requests.is_empty(), "round {round}");
            for request in requests {
                let Ok(Message::FragmentRequest(asked)) = decode_message(&request) else {
                    panic!("not a fragment request");
                };
                let bytes = fragment::fragment(&answer, asked.index).unwrap().to_vec();
                let reply = Message::Fragment(Fragment {
                    hash: manifest.hash,
                    index: asked.index,
                    bytes,
                });
                if let Some(schema) = fetch
                    .receive(&encode_message(&reply, Compression::None))
                    .unwrap()
                {
                    whole = Some(schema);
                }
            }
            if whole.is_some() {
                break;
            }
        }
        assert_eq!(whole, Some(schema));
    }

    #[test]
    fn an_answer_of_another_kind_is_refused() {
        let mut fetch = SchemaFetch::new();
        let page = encode_message(&Message::SchemaRequest, Compression::None);
        assert!(matches!(fetch.receive(&page), Err(PullError::BadPage(_))));
    }
}
