-- Each remote's owner: the database identity (member id, ed25519) its Status named when this
-- database first read it, or as given with `ddcp remote add|set --owner`. A Status naming
-- another is refused (docs/private-databases.md, "Owners").
alter table ddcp_remotes add column owner blob;
