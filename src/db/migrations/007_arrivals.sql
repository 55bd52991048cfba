-- Where merged changes came from, for `ddcp watch` (see db/feed.rs): the db_versions
-- first..=last were given to changes merged in one transaction from the site `via` (a remote's,
-- or a bundle's source), `kind` 'pull' or 'bundle'. A db_version in no range is a local commit.
create table ddcp_arrivals (
  first integer not null,
  last integer not null,
  via blob not null,
  kind text not null
);
create index ddcp_arrivals_last on ddcp_arrivals (last);
