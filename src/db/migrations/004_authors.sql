-- Whose changes each remote may bring (sync/authors.rs: 'any', 'direct' or site ids in hex,
-- comma-separated), and whether its changes must be pulled again from the start (the policy
-- was widened: what it skipped before may be admitted now).
alter table ddcp_remotes add column authors text not null default 'any';
alter table ddcp_remotes add column repull integer not null default 0;
