-- The schema history: the additive migrations that made this database's CRR schema, oldest
-- first, as `ddcp migrate` applied them here or as they were taken from a remote this database
-- follows. Published with the schema (docs/schema-evolution.md). `id` is the SHA-256 of `sql`:
-- a migration already here is not recorded twice.
create table ddcp_migrations (
  seq integer primary key,
  sql text not null,
  id blob not null unique,
  origin text,             -- the remote it was followed from; null when made here
  applied_at integer not null  -- unix seconds
);
-- Whether this database follows a remote's schema: applies the migrations it publishes.
alter table ddcp_remotes add column schema_follow integer not null default 0;
-- What each remote published as its history when last asked (its migrations, oldest first),
-- how many of them this database followed, and why it follows no further when it does not.
create table ddcp_remote_histories (
  remote text primary key not null,
  length integer not null,
  head blob not null,
  followed integer not null default 0,
  refused text
);
create table ddcp_remote_migrations (
  remote text not null,
  seq integer not null,
  sql text not null,
  primary key (remote, seq)
);
