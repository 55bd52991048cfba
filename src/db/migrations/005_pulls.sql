-- What `ddcp log` shows of each remote: the site id its Status named at the last pull, and per
-- site, when a page of its changes was last accepted and how many changes all pages held.
alter table ddcp_remotes add column site_id blob;

create table ddcp_pulled (
  site_id blob primary key not null,
  last_at integer not null, -- unix seconds
  changes integer not null
);
