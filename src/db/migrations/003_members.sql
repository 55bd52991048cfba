-- Who may read this database while it is private (see src/db/members.rs). The access mode
-- ('public' or 'private') and the key epoch live in ddcp_meta under 'access' and 'epoch'.
create table ddcp_members (
  name text primary key not null,
  member_id blob not null unique, -- the member's ed25519 public key, 32 bytes
  added_at integer not null -- unix seconds
);
