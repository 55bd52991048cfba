//! Noticing another process's commit at once: the database's WAL is watched (Linux's inotify),
//! and every write to it has the DbActor look for changes a moment later, instead of at its next
//! timed look (every [`super::WATCHED_CHECK_INTERVAL`] while the watch works, every
//! [`super::CHANGE_CHECK_INTERVAL`] once it ended). An idle database wakes nothing.
//!
//! The database file and its folder are watched too: the file unlinked or renamed over (its
//! link count changes), or the folder moved or removed, has the DbActor look at once, and find
//! that its path no longer names the file it opened ([`super::file_identity`]), rather than at
//! its next timed look.
//!
//! The write a watch sees comes a moment before SQLite marks the commit in the WAL's shared index
//! (and, with `synchronous = FULL`, before an fsync): so the DbActor looks soon after a write,
//! and once more when the writes have stopped for a while. Looking costs one pragma when nothing
//! moved. The DbActor's own writes wake the watch too; they cost a look at most once per
//! [`FIRST_LOOK`] while they go on.

#![allow(unsafe_code)] // tokio's registration of a descriptor it does not own, inotify's.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use ractor::ActorRef;
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::DbMsg;

/// How long after a write to the WAL the DbActor first looks: long enough for the writer to
/// have marked its commit, short enough not to be noticed.
const FIRST_LOOK: Duration = Duration::from_millis(1);

/// How long after the last write of a burst the DbActor looks once more: for a commit whose
/// marking came late (an fsync between the write and the mark).
const LAST_LOOK: Duration = Duration::from_millis(25);

/// The watch on a database's WAL; it stops when dropped.
#[derive(Debug)]
pub(super) struct CommitWatch {
    task: JoinHandle<()>,
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
        let watched = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .and_then(|inotify| {
                let wal = inotify.add_watch(wal.as_os_str(), AddWatchFlags::IN_MODIFY)?;
                inotify.add_watch(
                    db_file,
                    AddWatchFlags::IN_ATTRIB
                        | AddWatchFlags::IN_DELETE_SELF
                        | AddWatchFlags::IN_MOVE_SELF,
                )?;
                inotify.add_watch(
                    folder,
                    AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF,
                )?;
                Ok((inotify, wal))
            })
            .map_err(std::io::Error::from)
            .and_then(|(inotify, wal)| {
                // SAFETY: WatchFd owns the inotify instance's descriptor, which stays open and
                // the same until the AsyncFd that owns the WatchFd is dropped.
                let fd = unsafe { AsyncFd::register(WatchFd(inotify)) }?;
                Ok((fd, wal))
            });
        match watched {
            Ok((fd, wal)) => Some(CommitWatch {
                task: tokio::spawn(async move {
                    watch(fd, wal, db.clone()).await;
                    // The DbActor looks often again (it is gone when the send fails).
                    let _ = db.send_message(DbMsg::WatchEnded);
                }),
            }),
            Err(err) => {
                tracing::debug!(target: "ddcp", error = %err,
                    "Cannot watch the database's WAL: other processes' commits are looked for on a timer");
                None
            }
        }
    }
}

/// The inotify instance, as tokio's readiness wants it.
struct WatchFd(Inotify);

impl AsRawFd for WatchFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

async fn watch(fd: AsyncFd<WatchFd>, wal: WatchDescriptor, db: ActorRef<DbMsg>) {
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    loop {
        let next_look = first.into_iter().chain(last).min();
        tokio::select! {
            ready = fd.readable() => {
                let Ok(mut ready) = ready else { return };
                match ready.get_inner().0.read_events() {
                    Ok(events) => {
                        if events.iter().any(|event| event.mask.contains(AddWatchFlags::IN_IGNORED)) {
                            // The WAL went away (the last connection closed it, or its journal
                            // mode changed), or the folder did: the timed look remains.
                            tracing::debug!(target: "ddcp", "The database's WAL is no longer watched");
                            return;
                        }
                        if events.iter().any(|event| event.wd != wal)
                            && db.send_message(DbMsg::CheckForChanges).is_err()
                        {
                            return;
                        }
                        if events.iter().any(|event| event.wd == wal) {
                            let now = Instant::now();
                            first.get_or_insert(now + FIRST_LOOK);
                            last = Some(now + LAST_LOOK);
                        }
                    }
                    Err(Errno::EAGAIN) => ready.clear_ready(),
                    Err(err) => {
                        tracing::debug!(target: "ddcp", error = %err, "The database's WAL watch failed");
                        return;
                    }
                }
            }
            () = sleep_until(next_look.unwrap_or_else(Instant::now)), if next_look.is_some() => {
                let now = Instant::now();
                if first.is_some_and(|at| at <= now) {
                    first = None;
                }
                if last.is_some_and(|at| at <= now) {
                    last = None;
                }
                if db.send_message(DbMsg::CheckForChanges).is_err() {
                    return;
                }
            }
        }
    }
}
