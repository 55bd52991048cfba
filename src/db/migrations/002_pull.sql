-- Where this database stands in each remote's changes (see src/sync/cursor.rs), keyed by the
-- remote's cr-sqlite site id. seq/tbl/pk/cid are set while inside a remote's db_version group.
create table ddcp_cursors (
  site_id blob primary key not null,
  db_version integer not null,
  seq integer,
  tbl text,
  pk blob,
  cid text
);

-- Parts of a remote transaction too big for one page, held until the last part arrives, so
-- that the transaction is applied whole. `val` has no declared type: values keep their own.
create table ddcp_staged (
  site_id blob not null,
  ord integer not null,
  tbl text not null,
  pk blob not null,
  cid text not null,
  val,
  col_version integer not null,
  db_version integer not null,
  author blob not null,
  cl integer not null,
  seq integer not null,
  primary key (site_id, ord)
);
