-- The BBS example's one table (examples/bbs/README.md): a post, who wrote it, when.
-- Text ids, made by the page, never an auto-increment: two peers post at the same time without
-- taking each other's ids. Every NOT NULL column has a default, as cr-sqlite asks.
create table if not exists posts (
  id text primary key not null,
  author text not null default '',
  body text not null default '',
  posted_at integer not null default 0
);
select crsql_as_crr('posts');
