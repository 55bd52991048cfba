//! Noticing another process's commit at once: the database's WAL is watched (Linux's inotify),
//! and every write to it has the DbActor look for changes a moment later, instead of at its next
//! timed look (every [`super::WATCHED_CHECK_INTERVAL`] while the watch works, every
//! [`super::CHANGE_CHECK_INTERVAL`] once it ended). An idle database wakes nothing.
//!
//! The database file and its own folder are watched too: the file unlinked or renamed over (its
//! link count changes), or that folder moved or removed, has the DbActor look at once, and find
//! that its path no longer names the file it opened ([`super::file_identity`]). A folder higher
//! up moved away is noticed at the next timed look.
//!
//! The write a watch sees comes a moment before SQLite marks the commit in the WAL's shared index
//! (and, with `synchronous = FULL`, before an fsync; the mark is written to the `-shm` file
//! through a memory mapping, which inotify does not see): so the DbActor looks soon after a
//! write, and a few times more once the writes have stopped, for a slow disk's fsync. Looking
//! costs one pragma when nothing moved. The DbActor's own writes wake the watch too; they cost
//! a look at most once per [`FIRST_LOOK`] while they go on.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::DbMsg;
use super::file_watcher::{FileWatcher, Signals, Watch, Watched};

/// How long after a write to the WAL the DbActor first looks: long enough for the writer to
/// have marked its commit, short enough not to be noticed.
const FIRST_LOOK: Duration = Duration::from_millis(1);

/// How long after the last write of a burst the DbActor looks again, each: for a commit whose
/// marking came late (an fsync between the write and the mark; a slow disk's takes long).
const LOOKS_AFTER_LAST: [Duration; 3] = [
    Duration::from_millis(25),
    Duration::from_millis(250),
    Duration::from_millis(2500),
];

/// The watch on a database's WAL, file and folder; it stops when dropped.
#[derive(Debug)]
pub(super) struct CommitWatch {
    task: JoinHandle<()>,
    _watch: Watch,
}

impl Drop for CommitWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CommitWatch {
    /// Watches the WAL of the database at `db_file`, asking `db` to look for changes after its
    /// writes, and the file and its folder, asking it to look at once when they are moved or
    /// removed. `None` when they cannot be watched (no inotify, a file system without it): the
    /// DbActor's timed look remains.
    pub(super) fn start(db_file: &Path, db: ActorRef<DbMsg>) -> Option<CommitWatch> {
        let mut wal = db_file.as_os_str().to_owned();
        wal.push("-wal");
        let folder = match db_file.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder,
            _ => Path::new("."),
        };
        let signals = Arc::new(Signals::default());
        let files = [
            (Path::new(&wal), Watched::Wal),
            (db_file, Watched::File),
            (folder, Watched::Folder),
        ];
        let watching = match FileWatcher::shared()?.watch(&files, &signals) {
            Ok(watching) => watching,
            Err(err) => {
                tracing::debug!(target: "ddcp", error = %err,
                    "Cannot watch the database's WAL: other processes' commits are looked for on a timer");
                return None;
            }
        };
        Some(CommitWatch {
            task: tokio::spawn(async move {
                watch(&signals, db.clone()).await;
                // The DbActor looks often again (it is gone when the send fails).
                let _ = db.send_message(DbMsg::WatchEnded);
            }),
            _watch: watching,
        })
    }
}

async fn watch(signals: &Signals, db: ActorRef<DbMsg>) {
    let mut first: Option<Instant> = None;
    // The burst's last write, and how many of the looks after it were made.
    let mut last_write: Option<(Instant, usize)> = None;
    loop {
        let last = last_write.map(|(at, made)| at + LOOKS_AFTER_LAST[made]);
        let next_look = first.into_iter().chain(last).min();
        tokio::select! {
            () = signals.told() => {
                let seen = signals.take();
                if seen.moved && db.send_message(DbMsg::CheckForChanges).is_err() {
                    return;
                }
                if seen.ended {
                    // The WAL went away (the last connection closed it, or its journal mode
                    // changed), or the folder did: the timed look remains.
                    tracing::debug!(target: "ddcp", "The database's WAL is no longer watched");
                    return;
                }
                if seen.written {
                    let now = Instant::now();
                    first.get_or_insert(now + FIRST_LOOK);
                    last_write = Some((now, 0));
                }
            }
            () = sleep_until(next_look.unwrap_or_else(Instant::now)), if next_look.is_some() => {
                let now = Instant::now();
                if first.is_some_and(|at| at <= now) {
                    first = None;
                }
                if last.is_some_and(|at| at <= now) {
                    last_write = last_write
                        .map(|(at, made)| (at, made + 1))
                        .filter(|(_, made)| *made < LOOKS_AFTER_LAST.len());
                }
                if db.send_message(DbMsg::CheckForChanges).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ractor::{Actor, ActorProcessingErr};
    use tokio::sync::mpsc;

    /// Stands in for the DbActor: tells when it was asked to look.
    struct Looks;

    impl Actor for Looks {
        type Msg = DbMsg;
        type State = mpsc::UnboundedSender<Instant>;
        type Arguments = mpsc::UnboundedSender<Instant>;

        async fn pre_start(
            &self,
            _myself: ActorRef<DbMsg>,
            told: Self::Arguments,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(told)
        }

        async fn handle(
            &self,
            _myself: ActorRef<DbMsg>,
            message: DbMsg,
            told: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            if let DbMsg::CheckForChanges = message {
                let _ = told.send(Instant::now());
            }
            Ok(())
        }
    }

    /// A burst of two writes 10 ms apart: a look a moment after each, then the looks after the
    /// last (25 ms, 250 ms, 2.5 s, for a commit marked late), then none.
    #[tokio::test(start_paused = true)]
    async fn a_burst_is_looked_at_at_once_and_again_for_a_late_mark() {
        let (sender, mut looks) = mpsc::unbounded_channel();
        let (db, _) = Actor::spawn(None, Looks, sender).await.unwrap();
        let signals = Arc::new(Signals::default());
        let watching = tokio::spawn({
            let (signals, db) = (Arc::clone(&signals), db.clone());
            async move { watch(&signals, db).await }
        });
        let start = Instant::now();
        signals.tell_written();
        tokio::time::sleep(Duration::from_millis(10)).await;
        signals.tell_written();
        tokio::time::sleep(Duration::from_secs(60)).await;

        let mut at = Vec::new();
        while let Ok(look) = looks.try_recv() {
            at.push((look - start).as_millis());
        }
        assert_eq!(at, [1, 11, 35, 260, 2510]);
        watching.abort();
        db.stop(None);
    }
}
