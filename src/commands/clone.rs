//! `ddcp clone KEY [DIR]`: a new database that replicates with a remote one, in one command
//! (git's habit): its CRR tables made as the remote's (the protocol's SchemaRequest), the remote
//! added and pulled, and a record of its own, as `ddcp init` makes. A failure keeps nothing it
//! made, but for a private remote that refused it: its member identity stays in the state dir,
//! the one line names it, and the same command run again once the owner added it uses it.

use std::time::Duration;

use serde::Serialize;

use super::pull::ProgressLine;
use super::{CommandError, block_on};
use crate::cli::CloneArgs;
use crate::config::Config;
use crate::db::{AcceptPolicy, Db, Followed, RemoteName, remove_database_files};
use crate::member_file;
use crate::net::{FirstContact, NetError, Node, RecordIdentity, create_record_identity};
use crate::pull::{PullReport, RemoteError, RemoteLink, pull_remote, remote_schema};
use crate::sync::authors::AuthorPolicy;
use crate::sync::text::printable;
use crate::sync::{MemberId, MemberKeys, RecordKey};

/// The remote's record may not be on the network yet (it starts now too), and a fresh node may
/// be told `TryAgain` for a while after it attached: looked for again this long before the
/// clone gives up.
const FIRST_CONTACT: Duration = Duration::from_secs(60);

#[derive(Serialize)]
struct CloneJson {
    key: String,
    remote: String,
    pages: u64,
    changes: u64,
    refused: u64,
    remote_db_version: i64,
}

pub fn run(config: &Config, args: &CloneArgs) -> Result<(), CommandError> {
    // A file: a backup to start a new peer from (see `clone_file`).
    let from_file = std::path::Path::new(&args.source).is_file();
    // Everything the user typed is checked before anything is made.
    let key: Option<RecordKey> = match from_file {
        true => None,
        false => Some(super::remote_key(&args.source).map_err(|err| {
            if names_a_file(&args.source) {
                CommandError::NoBackupFile(args.source.clone().into())
            } else {
                err
            }
        })?),
    };
    let name: RemoteName = args.name.parse()?;
    let authors: AuthorPolicy = match &args.authors.authors {
        Some(text) => text.parse().map_err(CommandError::BadAuthors)?,
        None => AuthorPolicy::Any,
    };
    let owner: Option<MemberId> = args
        .owner
        .as_deref()
        .map(|id| id.parse().map_err(CommandError::BadMemberId))
        .transpose()?;
    if from_file && args.owner.is_some() {
        return Err(CommandError::OwnerForAFile);
    }
    let made = Made::before(config, args);
    let config = &target(config, args).inspect_err(|_| made.undo())?;
    let Some(key) = key else {
        return super::clone_file::run(config, std::path::Path::new(&args.source), args.json)
            .inspect_err(|_| made.undo());
    };
    let me = member_file::load_or_create(&config.state_dir).inspect_err(|_| made.undo())?;
    let link = RemoteLink {
        name,
        key,
        accept: AcceptPolicy {
            authors,
            ..AcceptPolicy::default()
        },
    };
    let attach = Duration::from_secs(args.attach.attach_timeout);
    let result = block_on(async {
        let node = Node::start(&config.veilid_dir(), &config.network).await?;
        let cloned = clone(config, &node, &me, &link, owner, attach).await;
        node.shutdown().await;
        cloned
    })
    .and_then(|cloned| cloned);
    let (own_key, report) = match result {
        Ok(done) => done,
        Err(err) => {
            // Nothing half made: the database and the record go, and the state dir and DIR
            // when the clone made them; the member identity stays only when a private
            // remote refused it (its owner is asked to add it, and the same command run
            // again then clones).
            remove_database_files(&config.db_file);
            let _ = std::fs::remove_file(config.state_dir.join("record"));
            if !matches!(err, CommandError::NotAMember { .. }) {
                made.undo();
            }
            return Err(err);
        }
    };
    tracing::info!(target: "ddcp", key = ?own_key.to_string(), remote_name = %link.name,
        changes = report.changes, "Cloned database");
    if args.json {
        super::output::print_json(&CloneJson {
            key: own_key.reveal().to_string(),
            remote: link.name.to_string(),
            pages: report.pages,
            changes: report.changes,
            refused: report.refused,
            remote_db_version: report.remote_version.0,
        })?;
    } else {
        // As `ddcp init`: the new database's key, which its own peers add.
        super::output::print_line(own_key.reveal())?;
    }
    Ok(())
}

/// A source that is no record key but reads as a path (a '/', a file extension, a '~'),
/// names a backup that is not there: said so, rather than as a malformed key.
fn names_a_file(source: &str) -> bool {
    // A record key holds no '/', '~' or '.'; a path holds one of them.
    let path = std::path::Path::new(source);
    source.contains('/') || source.starts_with('~') || path.extension().is_some()
}

/// The folders a clone may make: removed again when it fails, unless they were there before.
struct Made {
    dir: Option<std::path::PathBuf>,
    state_dir: Option<std::path::PathBuf>,
}

impl Made {
    /// What of DIR and the state dir does not exist yet.
    fn before(config: &Config, args: &CloneArgs) -> Made {
        let state_dir = match &args.dir {
            Some(dir) => dir.join(".ddcp"),
            None => config.state_dir.clone(),
        };
        Made {
            dir: args.dir.clone().filter(|dir| !dir.exists()),
            state_dir: Some(state_dir).filter(|dir| !dir.exists()),
        }
    }

    /// Removes what the clone made.
    fn undo(&self) {
        if let Some(state_dir) = &self.state_dir {
            let _ = std::fs::remove_dir_all(state_dir);
        }
        if let Some(dir) = &self.dir {
            // Only if empty: nothing the user put there goes.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Where the new database goes (DIR, or --db-file and --state-dir), checked to hold none yet,
/// DIR and the state dir made.
fn target(config: &Config, args: &CloneArgs) -> Result<Config, CommandError> {
    let mut config = config.clone();
    if let Some(dir) = &args.dir {
        config.db_file = dir.join("ddcp.db");
        config.state_dir = dir.join(".ddcp");
    }
    if RecordIdentity::exists(&config.state_dir) {
        return Err(NetError::IdentityExists(config.state_dir.clone()).into());
    }
    if config.db_file.exists() {
        return Err(crate::db::DbError::AlreadyInitialized(config.db_file.clone()).into());
    }
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).map_err(|source| CommandError::File {
            what: "cannot create",
            path: dir.clone(),
            source,
        })?;
    }
    super::create_state_dir(&config)?;
    Ok(config)
}

async fn clone(
    config: &Config,
    node: &Node,
    me: &MemberKeys,
    link: &RemoteLink,
    owner: Option<MemberId>,
    attach: Duration,
) -> Result<(RecordKey, PullReport), CommandError> {
    node.attach(attach).await?;
    let network = node.network();
    let remote_failed = |err: RemoteError| {
        let (name, reason) = (link.name.to_string(), err.to_string());
        match err {
            RemoteError::NotAMember(_) => CommandError::NotAMember { name, reason },
            _ => CommandError::Remote { name, reason },
        }
    };
    let deadline = tokio::time::Instant::now() + FIRST_CONTACT;
    let mut contact = FirstContact::default();
    let (view, schema) = loop {
        let asked = match network.open_record_within(&link.key, contact.bound()).await {
            Ok(()) => remote_schema(network, me, &link.key).await,
            Err(err) => Err(err.into()),
        };
        match asked {
            Ok(answer) => break answer,
            // Not yet on the network, or this node not yet able to reach it: ask again.
            Err(RemoteError::Net(_) | RemoteError::NotPublished)
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(contact.missed()).await;
            }
            Err(err) => return Err(remote_failed(err)),
        }
    };
    if let Some(owner) = owner
        && view.owner() != Some(owner)
    {
        return Err(CommandError::NotTheOwner {
            name: link.name.to_string(),
            expected: owner,
            named: view.owner(),
        });
    }
    let mut db = Db::create(&config.db_file, &config.extension)?;
    db.create_tables(&schema.shape)?;
    let identity = create_record_identity(node.network()).await?;
    identity.save(&config.state_dir)?;
    db.bind_record(&identity.key)?;
    db.add_remote(&link.name, &link.key, &link.accept, false)?;
    if let Some(owner) = &owner {
        db.set_remote_owner(&link.name, owner)?;
    }
    // The clone follows its origin's schema: the migrations it publishes later are applied
    // here too. Its history so far is taken now (its indexes made, its migrations recorded
    // here for the peers that follow this database in turn).
    db.set_schema_follow(&link.name, true)?;
    if let Followed::Refused(why) = db.see_remote_history(&link.name, &schema.history)? {
        tracing::warn!(target: "ddcp", remote_name = %link.name, why = %printable(&why, 300),
            "The remote's schema history is not followed");
    }
    let (db, stopped) = super::pull::db_actor(db).await?;
    let mut bar = ProgressLine::new(link.name.as_str());
    let pulled = pull_remote(network, &db, me, link, Some(view), None, &mut |progress| {
        bar.show(progress)
    })
    .await;
    bar.finish();
    db.actor().stop(None);
    let _ = stopped.await;
    network.close_record(&link.key).await;
    Ok((identity.key, pulled.map_err(remote_failed)?))
}
