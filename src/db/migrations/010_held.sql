-- Changes a remote sent to a table or column this database lacks (the remote runs a newer
-- version of the app): kept in the order they came, named as the remote names them, until this
-- database has the table or column; then accepted as that remote's (its policy, its filters),
-- without pulling them again. One row per change; `via` is the remote's site.
create table ddcp_held (
  ord integer primary key,
  via blob not null,
  tbl text not null,
  pk blob not null,
  cid text not null,
  val any,
  col_version integer not null,
  db_version integer not null,
  author blob not null,
  cl integer not null,
  seq integer not null
);
create index ddcp_held_by_via on ddcp_held (via, ord);
-- A page pulled again (a cursor that started over, a bundle applied twice) holds nothing twice.
create unique index ddcp_held_once on ddcp_held (via, tbl, pk, cid, col_version, cl, author);
