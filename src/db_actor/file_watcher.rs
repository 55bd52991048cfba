//! The process's one inotify instance, shared by every database it serves. Linux lets a user
//! hold 128 instances by default (`fs.inotify.max_user_instances`): a host of hundreds of
//! databases with one each ran out, and its later databases fell back to looking for commits
//! five times a second. Watches are plentiful (`fs.inotify.max_user_watches`, tens of
//! thousands and more; three a database). A thread of its own reads the events, blocking, and
//! tells each to whoever watches the file it is about.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// What a watched file is to its watcher, and so which of its events count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Watched {
    /// A database's WAL: told of its writes.
    Wal,
    /// A database file: told when it is unlinked or renamed over (its link count changes).
    File,
    /// A database's folder: told when it is moved or removed.
    Folder,
}

impl Watched {
    fn flags(self) -> AddWatchFlags {
        match self {
            Watched::Wal => AddWatchFlags::IN_MODIFY,
            Watched::File => {
                AddWatchFlags::IN_ATTRIB
                    | AddWatchFlags::IN_DELETE_SELF
                    | AddWatchFlags::IN_MOVE_SELF
            }
            Watched::Folder => AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF,
        }
    }
}

/// What one watcher was told since it last looked. Flags, not a queue: however many events
/// come, a watcher holds three booleans.
#[derive(Debug, Default)]
pub(super) struct Signals {
    written: AtomicBool,
    moved: AtomicBool,
    ended: AtomicBool,
    wake: Notify,
}

/// What [`Signals::take`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Seen {
    /// The WAL was written.
    pub written: bool,
    /// The file or its folder was moved or removed.
    pub moved: bool,
    /// A watch ended (its file is gone, or the watcher failed): nothing more will be told.
    pub ended: bool,
}

impl Signals {
    /// Waits until something is told (at once when something was since the last wait).
    pub(super) async fn told(&self) {
        self.wake.notified().await;
    }

    /// What was told since the last time, cleared.
    pub(super) fn take(&self) -> Seen {
        Seen {
            written: self.written.swap(false, Ordering::AcqRel),
            moved: self.moved.swap(false, Ordering::AcqRel),
            ended: self.ended.swap(false, Ordering::AcqRel),
        }
    }

    /// As a write to the watched WAL would tell.
    #[cfg(test)]
    pub(super) fn tell_written(&self) {
        self.tell(&self.written);
    }

    fn tell(&self, flag: &AtomicBool) {
        flag.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// One watcher's interest in one watched file.
#[derive(Debug)]
struct Subscriber {
    id: u64,
    watched: Watched,
    signals: Arc<Signals>,
}

/// The process's inotify instance and who watches what through it.
#[derive(Debug)]
pub(super) struct FileWatcher {
    inotify: Inotify,
    /// By watch descriptor: inotify gives one descriptor for one file however often it is
    /// watched, so two databases in one folder share the folder's.
    subscribers: Mutex<HashMap<WatchDescriptor, Vec<Subscriber>>>,
    next_id: AtomicU64,
    /// No thread reads the events (it could not start, or reading failed): a watch would
    /// never be told anything, so none is given, and the databases look on their timers.
    deaf: AtomicBool,
}

/// A watcher's watches; they end when it is dropped.
#[derive(Debug)]
pub(super) struct Watch {
    id: u64,
    descriptors: Vec<WatchDescriptor>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(watcher) = FileWatcher::shared() {
            watcher.unsubscribe(self);
        }
    }
}

impl FileWatcher {
    /// The process's watcher, started by the first call; `None` when inotify cannot be had
    /// (then every call says so, and the databases look on their timers).
    pub(super) fn shared() -> Option<&'static FileWatcher> {
        static SHARED: OnceLock<Option<FileWatcher>> = OnceLock::new();
        let shared = SHARED.get_or_init(|| match Inotify::init(InitFlags::IN_CLOEXEC) {
            Ok(inotify) => Some(FileWatcher {
                inotify,
                subscribers: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                deaf: AtomicBool::new(false),
            }),
            Err(err) => {
                tracing::debug!(target: "ddcp", error = %err, "No inotify: databases are looked at on timers");
                None
            }
        });
        let watcher = shared.as_ref()?;
        static READING: std::sync::Once = std::sync::Once::new();
        READING.call_once(|| {
            let started = std::thread::Builder::new()
                .name("ddcp-watch".into())
                .spawn(move || watcher.read_events());
            if let Err(err) = started {
                tracing::debug!(target: "ddcp", error = %err, "No thread to read file events");
                watcher.deaf.store(true, Ordering::Release);
            }
        });
        Some(watcher)
    }

    /// Tells `signals` of the events of `files` until the returned watch is dropped. All or
    /// none: a file that cannot be watched (it does not exist, a file system without inotify)
    /// leaves none of them watched; so does a watcher whose events nobody reads.
    pub(super) fn watch(
        &self,
        files: &[(&Path, Watched)],
        signals: &Arc<Signals>,
    ) -> std::io::Result<Watch> {
        let mut watch = Watch {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            descriptors: Vec::new(),
        };
        // Under the lock: an event of a descriptor is handed out only once its watchers are
        // all in the map, and the reader's failure is seen by every watch after it.
        let mut subscribers = self.subscribers.lock();
        if self.deaf.load(Ordering::Acquire) {
            return Err(std::io::Error::other("nothing reads the file events"));
        }
        for (path, watched) in files {
            // Added to what others watch the same file for, not instead of it.
            // (nix names no IN_MASK_ADD.)
            let mask_add = AddWatchFlags::from_bits_retain(nix::libc::IN_MASK_ADD);
            let flags = watched.flags() | mask_add;
            let descriptor = match self.inotify.add_watch(*path, flags) {
                Ok(descriptor) => descriptor,
                Err(err) => {
                    // The watch, dropped, takes back what it got.
                    drop(subscribers);
                    return Err(err.into());
                }
            };
            subscribers.entry(descriptor).or_default().push(Subscriber {
                id: watch.id,
                watched: *watched,
                signals: Arc::clone(signals),
            });
            watch.descriptors.push(descriptor);
        }
        Ok(watch)
    }

    fn unsubscribe(&self, watch: &Watch) {
        let mut subscribers = self.subscribers.lock();
        for descriptor in &watch.descriptors {
            let Some(watchers) = subscribers.get_mut(descriptor) else {
                continue; // ended already
            };
            watchers.retain(|subscriber| subscriber.id != watch.id);
            if watchers.is_empty() {
                subscribers.remove(descriptor);
                // Its IN_IGNORED event comes later, for a descriptor no longer in the map.
                let _ = self.inotify.rm_watch(*descriptor);
            }
        }
    }

    /// The reading thread's work, for the life of the process.
    fn read_events(&self) {
        loop {
            match self.inotify.read_events() {
                Ok(events) => self.dispatch(&events),
                Err(Errno::EINTR) => {}
                Err(err) => {
                    tracing::warn!(target: "ddcp", error = %err,
                        "Cannot read file events: databases are looked at on timers");
                    let subscribers = self.subscribers.lock();
                    self.deaf.store(true, Ordering::Release);
                    for subscriber in subscribers.values().flatten() {
                        subscriber.signals.tell(&subscriber.signals.ended);
                    }
                    return;
                }
            }
        }
    }

    fn dispatch(&self, events: &[InotifyEvent]) {
        let mut subscribers = self.subscribers.lock();
        for event in events {
            if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                // Events were lost: everyone looks. (A lost IN_IGNORED leaves its descriptor's
                // watchers in the map, told nothing more: their timed looks remain, and their
                // file is gone anyway.)
                for subscriber in subscribers.values().flatten() {
                    subscriber.signals.tell(&subscriber.signals.written);
                    subscriber.signals.tell(&subscriber.signals.moved);
                }
                continue;
            }
            if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                // The file is gone (or its watch was removed): its watchers hear no more.
                for subscriber in subscribers.remove(&event.wd).into_iter().flatten() {
                    subscriber.signals.tell(&subscriber.signals.ended);
                }
                continue;
            }
            for subscriber in subscribers.get(&event.wd).into_iter().flatten() {
                if !event.mask.intersects(subscriber.watched.flags()) {
                    continue;
                }
                let signals = &subscriber.signals;
                match subscriber.watched {
                    Watched::Wal => signals.tell(&signals.written),
                    Watched::File | Watched::Folder => signals.tell(&signals.moved),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// One write, one event (a truncating write makes two, which may be told apart).
    fn append(file: &Path) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().append(true).open(file).unwrap();
        file.write_all(b"a write").unwrap();
    }

    async fn told(signals: &Signals) -> Seen {
        tokio::time::timeout(Duration::from_secs(10), signals.told())
            .await
            .expect("nothing was told");
        signals.take()
    }

    #[tokio::test]
    async fn a_write_and_a_folder_moved_are_told_to_each_watcher_of_them() {
        let watcher = FileWatcher::shared().expect("inotify");
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("shared");
        std::fs::create_dir(&folder).unwrap();
        let (one, two) = (folder.join("one-wal"), folder.join("two-wal"));
        std::fs::write(&one, b"").unwrap();
        std::fs::write(&two, b"").unwrap();
        let (first, second) = (Arc::new(Signals::default()), Arc::new(Signals::default()));
        let watch_one = watcher
            .watch(&[(&one, Watched::Wal), (&folder, Watched::Folder)], &first)
            .unwrap();
        let watch_two = watcher
            .watch(&[(&two, Watched::Wal), (&folder, Watched::Folder)], &second)
            .unwrap();

        append(&one);
        let seen = told(&first).await;
        assert!(seen.written && !seen.moved && !seen.ended, "{seen:?}");
        assert_eq!(second.take(), Seen::default(), "another's file");

        // One watcher of the shared folder gone: the other is still told of it.
        drop(watch_one);
        std::fs::rename(&folder, dir.path().join("away")).unwrap();
        let seen = told(&second).await;
        assert!(seen.moved, "{seen:?}");
        assert_eq!(first.take(), Seen::default(), "no longer watching");
        drop(watch_two);
    }

    /// More watchers than a user may hold inotify instances by default (128), each told of its
    /// own file's writes.
    #[tokio::test]
    async fn more_watchers_than_inotify_instances_are_each_told() {
        const WATCHERS: usize = 200;
        let watcher = FileWatcher::shared().expect("inotify");
        let dir = tempfile::tempdir().unwrap();
        let mut watching = Vec::new();
        for n in 0..WATCHERS {
            let file = dir.path().join(format!("{n}-wal"));
            std::fs::write(&file, b"").unwrap();
            let signals = Arc::new(Signals::default());
            let watch = watcher.watch(&[(&file, Watched::Wal)], &signals).unwrap();
            watching.push((file, signals, watch));
        }
        for (file, signals, _) in &watching {
            append(file);
            assert!(told(signals).await.written);
        }
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_watched_leaves_none_watched() {
        let watcher = FileWatcher::shared().expect("inotify");
        let dir = tempfile::tempdir().unwrap();
        let there = dir.path().join("there");
        std::fs::write(&there, b"").unwrap();
        let signals = Arc::new(Signals::default());
        let missing = dir.path().join("missing");
        let failed = watcher.watch(
            &[(&there, Watched::Wal), (&missing, Watched::File)],
            &signals,
        );
        assert_eq!(
            failed.unwrap_err().raw_os_error(),
            Some(Errno::ENOENT as i32)
        );
        append(&there);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(signals.take(), Seen::default());
    }
}
