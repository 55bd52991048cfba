-- Whose changes each remote may bring (sync/authors.rs: 'any', 'direct' or site ids in hex,
-- comma-separated).
alter table ddcp_remotes add column authors text not null default 'any';

-- The author policy under which this database's cursor in a site's changes moved: pulled under
-- another one, the site's changes are pulled again from the start (what was skipped may be
-- admitted now, and staged parts may hold what is refused now).
create table ddcp_cursor_authors (
  site_id blob primary key not null,
  authors text not null
);
