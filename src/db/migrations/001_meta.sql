-- ddcp's own bookkeeping. These are plain tables, never CRRs: they describe this replica only.
create table ddcp_meta (
  key text primary key not null,
  value any
);

create table ddcp_remotes (
  name text primary key not null,
  record_key text not null,
  added_at integer not null -- unix seconds
);
