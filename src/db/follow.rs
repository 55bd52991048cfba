//! Remotes' schema histories: what each published when last asked, and following it. A remote
//! this database follows has its migrations applied here, in order, before the changes that
//! need them; one it does not follow is said to be ahead (`ddcp status`) until the user runs
//! `ddcp migrate --from NAME`. A history that rewrites what was followed from it is not
//! followed further (docs/schema-evolution.md).

use rusqlite::OptionalExtension;

use super::migrate::{MigrationStep, missing_steps};
use super::{Db, DbError, RemoteName};
use crate::sync::schema_history::{HistoryHead, HistoryMark, SchemaHistory};

/// What became of a remote's history when this database saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Followed {
    /// The remote is not followed: this many of its migrations have steps this database lacks.
    Ahead(usize),
    /// Followed: what its migrations new here did, in order (nothing when none was new).
    Applied(Vec<MigrationStep>),
    /// Not followed past what was followed before: why, in one line.
    Refused(String),
}

/// A remote's schema as this database last saw it, for `ddcp status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSchema {
    /// The remote.
    pub remote: RemoteName,
    /// Whether this database follows its schema.
    pub follow: bool,
    /// Migrations in the history it published.
    pub published: u32,
    /// Of them, how many have steps this database lacks.
    pub ahead: usize,
    /// Why it is not followed further, when it is not.
    pub refused: Option<String>,
}

/// One migration of a remote's history, as `ddcp migrate --from` applies (or would apply) it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowedMigration {
    /// Its place in the remote's history, from 1.
    pub number: usize,
    /// What it did (or would do) here.
    pub steps: Vec<MigrationStep>,
}

impl Db {
    /// Where the history `remote` published stood when this database last saw it.
    pub fn seen_history(&self, remote: &RemoteName) -> Result<Option<HistoryMark>, DbError> {
        self.conn()
            .query_row(
                "select length, head from ddcp_remote_histories where remote = ?1",
                [remote.as_str()],
                |row| Ok((row.get::<_, u32>(0)?, row.get::<_, Vec<u8>>(1)?)),
            )
            .optional()?
            .map(|(length, head)| {
                let head = <[u8; 32]>::try_from(head.as_slice()).map_err(|_| {
                    DbError::History(crate::sync::schema_history::HistoryError::TooBig)
                })?;
                Ok(HistoryMark {
                    length,
                    head: HistoryHead(head),
                })
            })
            .transpose()
    }

    /// Takes in the history `remote` publishes now: kept, and followed when this database
    /// follows the remote (its migrations new here applied in order, then the changes held
    /// for what they made). A history that no longer begins with the migrations followed from
    /// it, or a migration that cannot be applied here, stops the following there.
    pub fn see_remote_history(
        &mut self,
        remote: &RemoteName,
        history: &SchemaHistory,
    ) -> Result<Followed, DbError> {
        // A pull of a remote this database does not list (a program's own pull through the
        // library) keeps nothing of it.
        if !self.remotes()?.iter().any(|listed| listed.name == *remote) {
            return Ok(Followed::Ahead(self.ahead_in(history.migrations())?));
        }
        let follow = self.follows(remote)?;
        let followed = self.followed(remote)?;
        let mark = history.mark();
        if follow {
            let before = self.remote_migrations(remote)?;
            let kept = &before[..followed.min(before.len())];
            if let Err(rewritten) = history.extends(kept) {
                // What was followed stays as it was; the mark is noted, so the same history
                // is not fetched again and again.
                let refused = format!(
                    "{rewritten}: not followed (`ddcp remote set {remote} --schema follow` takes it as it is now)"
                );
                self.note_history(remote, mark, None, followed, Some(&refused))?;
                return Ok(Followed::Refused(refused));
            }
        }
        self.note_history(remote, mark, Some(history), followed, None)?;
        if !follow {
            return Ok(Followed::Ahead(self.ahead(remote)?));
        }
        let mut applied = Vec::new();
        let mut done = history.len();
        for (index, migration) in history.migrations().iter().enumerate().skip(followed) {
            // The user may have stopped following it meanwhile (`remote set --schema manual`).
            if !self.follows(remote)? {
                done = index;
                break;
            }
            match self.apply_migration(migration, Some(remote), false) {
                Ok(migrated) => applied.extend(migrated.applied),
                Err(
                    err @ (DbError::BadMigration { .. }
                    | DbError::EmptyMigration
                    | DbError::History(_)),
                ) => {
                    let refused = format!("its migration {} is not followed: {err}", index + 1);
                    self.note_history(remote, mark, None, index, Some(&refused))?;
                    self.apply_held()?;
                    return Ok(Followed::Refused(refused));
                }
                Err(err) => {
                    // Not the migration's fault (the database busy, its disk full): its history
                    // is not noted as seen, so the next pull takes it again.
                    self.note_history(remote, HistoryMark::default(), None, index, None)?;
                    return Err(err);
                }
            }
        }
        self.note_history(remote, mark, None, done, None)?;
        if !applied.is_empty() {
            self.apply_held()?;
        }
        Ok(Followed::Applied(applied))
    }

    /// `ddcp migrate --from REMOTE`: applies the migrations of the history `remote` published
    /// when last seen that have steps this database lacks, in order, each in its own
    /// transaction; with `dry_run`, says what they would do. The first that fails stops it.
    pub fn migrate_from(
        &mut self,
        remote: &RemoteName,
        dry_run: bool,
    ) -> Result<Vec<FollowedMigration>, DbError> {
        self.remote(remote)?;
        let mut done = Vec::new();
        for (index, migration) in self.remote_migrations(remote)?.iter().enumerate() {
            let missing = missing_steps(self.conn(), migration)?;
            if missing.is_empty() {
                continue;
            }
            let steps = match dry_run {
                true => missing,
                false => {
                    self.apply_migration(migration, Some(remote), false)?
                        .applied
                }
            };
            done.push(FollowedMigration {
                number: index + 1,
                steps,
            });
        }
        if !dry_run && !done.is_empty() {
            self.apply_held()?;
        }
        Ok(done)
    }

    /// Follows `remote`'s schema, or stops following it. Following again takes its history as
    /// it is now: a refusal is forgotten and its migrations are checked from the first.
    pub fn set_schema_follow(&mut self, remote: &RemoteName, follow: bool) -> Result<(), DbError> {
        let remote_row = self.remote(remote)?;
        if follow && remote_row.accept.into.is_some() {
            return Err(DbError::FollowIntoMirrors(remote.to_string()));
        }
        self.conn().execute(
            "update ddcp_remotes set schema_follow = ?2 where name = ?1",
            (remote.as_str(), follow),
        )?;
        // Seen again at the next pull, from its first migration.
        self.conn().execute(
            "delete from ddcp_remote_histories where remote = ?1",
            [remote.as_str()],
        )?;
        Ok(())
    }

    /// Every remote's schema as last seen (remotes never asked left out).
    pub fn remote_schemas(&self) -> Result<Vec<RemoteSchema>, DbError> {
        let mut statement = self.conn().prepare(
            "select r.name, r.schema_follow, h.length, h.refused
             from ddcp_remotes r join ddcp_remote_histories h on h.remote = r.name
             order by r.name",
        )?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, bool>(1)?,
                    row.get::<_, u32>(2)?,
                    row.get::<_, Option<String>>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut schemas = Vec::new();
        for (name, follow, published, refused) in rows {
            let remote: RemoteName = name.parse()?;
            schemas.push(RemoteSchema {
                ahead: self.ahead(&remote)?,
                remote,
                follow,
                published,
                refused,
            });
        }
        Ok(schemas)
    }

    fn follows(&self, remote: &RemoteName) -> Result<bool, DbError> {
        self.conn()
            .query_row(
                "select schema_follow from ddcp_remotes where name = ?1",
                [remote.as_str()],
                |row| row.get(0),
            )
            .optional()?
            .ok_or_else(|| DbError::NoSuchRemote(remote.to_string()))
    }

    /// How many of the remote's migrations were followed (applied or found here).
    fn followed(&self, remote: &RemoteName) -> Result<usize, DbError> {
        let followed: Option<i64> = self
            .conn()
            .query_row(
                "select followed from ddcp_remote_histories where remote = ?1",
                [remote.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        Ok(followed.unwrap_or(0) as usize)
    }

    /// The remote's migrations as last kept, oldest first.
    fn remote_migrations(&self, remote: &RemoteName) -> Result<Vec<String>, DbError> {
        let mut statement = self
            .conn()
            .prepare("select sql from ddcp_remote_migrations where remote = ?1 order by seq")?;
        let migrations = statement
            .query_map([remote.as_str()], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(migrations)
    }

    /// How many of the remote's kept migrations have steps this database lacks (or cannot be
    /// applied here at all).
    fn ahead(&self, remote: &RemoteName) -> Result<usize, DbError> {
        self.ahead_in(&self.remote_migrations(remote)?)
    }

    /// How many of `migrations` have steps this database lacks (or cannot be applied here).
    fn ahead_in(&self, migrations: &[String]) -> Result<usize, DbError> {
        let mut ahead = 0;
        for migration in migrations {
            match missing_steps(self.conn(), migration) {
                Ok(missing) if missing.is_empty() => {}
                Ok(_) | Err(DbError::BadMigration { .. } | DbError::EmptyMigration) => ahead += 1,
                Err(err) => return Err(err),
            }
        }
        Ok(ahead)
    }

    /// Notes where the remote's history stands (its migrations too, when given), how many of
    /// them were followed, and why no more, in one transaction.
    fn note_history(
        &mut self,
        remote: &RemoteName,
        mark: HistoryMark,
        migrations: Option<&SchemaHistory>,
        followed: usize,
        refused: Option<&str>,
    ) -> Result<(), DbError> {
        let tx = self.conn_mut().transaction()?;
        tx.execute(
            "insert into ddcp_remote_histories (remote, length, head, followed, refused)
             values (?1, ?2, ?3, ?4, ?5)
             on conflict (remote) do update set length = excluded.length, head = excluded.head,
               followed = excluded.followed, refused = excluded.refused",
            (
                remote.as_str(),
                mark.length,
                &mark.head.0[..],
                followed as i64,
                refused,
            ),
        )?;
        if let Some(history) = migrations {
            tx.execute(
                "delete from ddcp_remote_migrations where remote = ?1",
                [remote.as_str()],
            )?;
            let mut insert = tx.prepare(
                "insert into ddcp_remote_migrations (remote, seq, sql) values (?1, ?2, ?3)",
            )?;
            for (seq, migration) in history.migrations().iter().enumerate() {
                insert.execute((remote.as_str(), seq as i64, migration))?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
