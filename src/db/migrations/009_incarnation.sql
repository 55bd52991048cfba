-- The database's incarnation: its life since its last `ddcp restore`, which gives it a new one
-- (see crates/ddcp-sync/src/ids.rs, Incarnation). Random, odd so never 0 ("not known").
insert into ddcp_meta (key, value) values ('incarnation', random() | 1)
  on conflict (key) do nothing;
-- The remote's incarnation each cursor was taken in (0: not known, a cursor from before this
-- migration): a page from another life of the remote means it was restored, and the pull
-- starts over.
alter table ddcp_cursors add column incarnation integer not null default 0;
