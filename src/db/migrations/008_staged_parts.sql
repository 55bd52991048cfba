-- Parts of a remote transaction too big for one page, held until the last part arrives so that
-- the transaction is applied whole: one row per part, its changes encoded as a changeset (the
-- wire's encoding). A row per change (ddcp_staged) cost as much to write, read and delete as
-- the merge itself; parts staged there before this migration are still applied, first.
create table ddcp_staged_parts (
  site_id blob not null,
  ord integer not null,
  changes blob not null,
  primary key (site_id, ord)
);
