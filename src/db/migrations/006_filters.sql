-- Filters (sync/filter.rs; stored as JSON by db/filters.rs, '' for none). The filter shared
-- with every reader lives in ddcp_meta under 'share_filter'.

-- What each remote may change here, beyond its authors.
alter table ddcp_remotes add column accept_filter text not null default '';

-- What each member of a private database may read.
alter table ddcp_members add column read_filter text not null default '';

-- The cursor in a site's changes now moves under a whole accept policy (authors and filter):
-- pulled under another one, the site's changes are pulled again from the start.
alter table ddcp_cursor_authors rename to ddcp_cursor_policy;
alter table ddcp_cursor_policy rename column authors to policy;

-- A remote added with `--into PREFIX` lands its tables in mirrors named PREFIX + T (see
-- db/mirrors.rs); NULL for one whose changes land in the tables themselves.
alter table ddcp_remotes add column into_prefix text;

-- Every mirror prefix in use or used once: its tables stay when its remote is removed, and
-- stay out of what this database serves unless serve = 1 (`--serve-mirrors`). `remote` is
-- what its rows' `source` says in the ddcp_all_T views.
create table ddcp_mirrors (
  prefix text primary key not null,
  remote text not null,
  serve integer not null default 0
);
