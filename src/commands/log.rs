//! `ddcp log [--remote NAME] [--json]`: what this database holds from whom. Its changes counted
//! by the site that wrote them (itself, its remotes, and the peers its remotes relay), with the
//! range of this database's versions they landed at (what `bundle create --since` takes); and
//! for each remote, the site its Status named, the remote's version pulled up to, how many
//! changes its pages brought, and when the last one came.

use serde::Serialize;

use super::CommandError;
use super::output::{print_json, print_line};
use crate::cli::LogArgs;
use crate::config::Config;
use crate::db::{DbError, RemoteName};

#[derive(Serialize)]
struct LogJson {
    site_id: String,
    db_version: i64,
    authors: Vec<AuthorJson>,
    remotes: Vec<RemoteLogJson>,
}

#[derive(Serialize)]
struct AuthorJson {
    site_id: String,
    /// `this database`, or the remote whose site this is; none for a relayed author.
    who: Option<String>,
    changes: u64,
    first_db_version: i64,
    last_db_version: i64,
}

#[derive(Serialize)]
struct RemoteLogJson {
    name: String,
    key: String,
    authors: String,
    site_id: Option<String>,
    pulled_version: Option<i64>,
    changes_pulled: u64,
    last_pulled_at: Option<i64>,
}

pub fn run(config: &Config, args: &LogArgs) -> Result<(), CommandError> {
    let db = super::open_db(config)?;
    let own = db.site_id()?;
    let mut remotes = Vec::new();
    for remote in db.remotes()? {
        let pulls = db.remote_pulls(&remote.name)?;
        remotes.push((remote, pulls));
    }
    if let Some(name) = &args.remote {
        let name: RemoteName = name.parse()?;
        remotes.retain(|(remote, _)| remote.name == name);
        if remotes.is_empty() {
            return Err(DbError::NoSuchRemote(name.to_string()).into());
        }
    }
    let who = |site: &crate::sync::SiteId| {
        if *site == own {
            return Some("this database".to_string());
        }
        remotes
            .iter()
            .find(|(_, pulls)| pulls.site_id.as_ref() == Some(site))
            .map(|(remote, _)| format!("remote {}", remote.name))
    };
    let mut authors: Vec<AuthorJson> = db
        .authors_held()?
        .into_iter()
        .map(|held| AuthorJson {
            site_id: held.site_id.to_string(),
            who: who(&held.site_id),
            changes: held.changes,
            first_db_version: held.first.0,
            last_db_version: held.last.0,
        })
        .collect();
    if args.remote.is_some() {
        let sites: Vec<String> = remotes
            .iter()
            .filter_map(|(_, pulls)| pulls.site_id.map(|site| site.to_string()))
            .collect();
        authors.retain(|author| sites.contains(&author.site_id));
    }
    let log = LogJson {
        site_id: own.to_string(),
        db_version: db.db_version()?.0,
        authors,
        remotes: remotes
            .into_iter()
            .map(|(remote, pulls)| RemoteLogJson {
                name: remote.name.to_string(),
                key: remote.key.to_string(),
                authors: remote.accept.authors.to_string(),
                site_id: pulls.site_id.map(|site| site.to_string()),
                pulled_version: pulls.pulled_version.map(|version| version.0),
                changes_pulled: pulls.changes,
                last_pulled_at: pulls.last_at,
            })
            .collect(),
    };
    db.close()?;
    if args.json {
        print_json(&log)?;
        return Ok(());
    }
    print_line(format_args!(
        "this database: site {}, db_version {}",
        log.site_id, log.db_version
    ))?;
    print_line("changes held, by author:")?;
    if log.authors.is_empty() {
        print_line("  (none)")?;
    }
    for author in &log.authors {
        let who = author
            .who
            .as_ref()
            .map_or("relayed".to_string(), Clone::clone);
        print_line(format_args!(
            "  {} ({who}): {} changes, at db_version {}..={}",
            author.site_id, author.changes, author.first_db_version, author.last_db_version
        ))?;
    }
    print_line("remotes:")?;
    if log.remotes.is_empty() {
        print_line("  (none)")?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    for remote in &log.remotes {
        let pulled = match (
            &remote.site_id,
            remote.pulled_version,
            remote.last_pulled_at,
        ) {
            (None, _, _) => "never pulled".to_string(),
            (Some(site), version, last) => format!(
                "site {site}, pulled to its db_version {}, {} changes in all, last {}",
                version.map_or("-".to_string(), |v| v.to_string()),
                remote.changes_pulled,
                last.map_or("never".to_string(), |at| format!("{}s ago", now - at))
            ),
        };
        print_line(format_args!(
            "  {} {} (authors {}): {pulled}",
            remote.name, remote.key, remote.authors
        ))?;
    }
    Ok(())
}
