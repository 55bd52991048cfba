//! Who holds each record open on this node. The databases one node serves may pull the same
//! remote, or one another, and Veilid opens a record once per node: a close by one database
//! would close it (and end its watch) for the others, and a reader's open of a record this node
//! writes would take the writer away from its publisher. So a record is closed when its last
//! holder lets go of it, and a record this node writes is never opened as a reader's nor
//! closed by one.

use std::collections::{HashMap, HashSet};

/// Who holds a record open: a remote's actor, or a one-shot command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordHolder(pub u64);

impl RecordHolder {
    /// The one command of a process that opens records by itself (`ddcp pull`, `clone`,
    /// `restore`).
    pub const THIS_COMMAND: RecordHolder = RecordHolder(u64::MAX);
}

/// What to do with Veilid's record after a hold changed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Veilid {
    /// Open it (again: harmless for a reader's open).
    Open,
    /// Close it: its last holder let go.
    Close,
    /// Leave it as it is.
    Leave,
}

/// The holds, by record key (its text, without secret).
#[derive(Debug, Default)]
pub(super) struct RecordHolds {
    readers: HashMap<String, HashSet<RecordHolder>>,
    written: HashSet<String>,
}

impl RecordHolds {
    /// This node writes `record` (it opened it with its owner key).
    pub(super) fn write(&mut self, record: &str) {
        self.written.insert(record.to_string());
    }

    /// `holder` opens `record` to read it.
    pub(super) fn open(&mut self, record: &str, holder: RecordHolder) -> Veilid {
        self.readers
            .entry(record.to_string())
            .or_default()
            .insert(holder);
        if self.written.contains(record) {
            Veilid::Leave
        } else {
            Veilid::Open
        }
    }

    /// `holder` lets go of `record`.
    pub(super) fn close(&mut self, record: &str, holder: RecordHolder) -> Veilid {
        let last = match self.readers.get_mut(record) {
            Some(holders) => {
                holders.remove(&holder);
                holders.is_empty()
            }
            None => true,
        };
        if last {
            self.readers.remove(record);
        }
        if last && !self.written.contains(record) {
            Veilid::Close
        } else {
            Veilid::Leave
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_closes_when_its_last_reader_lets_go_and_never_when_written_here() {
        let mut holds = RecordHolds::default();
        let (a, b) = (RecordHolder(1), RecordHolder(2));
        assert_eq!(holds.open("r", a), Veilid::Open);
        assert_eq!(holds.open("r", b), Veilid::Open);
        assert_eq!(holds.close("r", a), Veilid::Leave);
        // Twice by the same holder (an actor that failed, then was let go of): no harm.
        assert_eq!(holds.close("r", a), Veilid::Leave);
        assert_eq!(holds.close("r", b), Veilid::Close);
        holds.write("mine");
        assert_eq!(holds.open("mine", a), Veilid::Leave);
        assert_eq!(holds.close("mine", a), Veilid::Leave);
    }
}
