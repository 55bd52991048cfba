//! This database's DHT record: its key, and the owner keypair that lets only this node write it.
//! Veilid does not keep a record's owner secret, so ddcp keeps both in the state dir, in a file
//! readable by its owner only. The owner key, and the texts it is read from and written as,
//! are wiped from memory when dropped.

use std::io::Write;
use std::path::{Path, PathBuf};

use veilid_core::{CRYPTO_KIND_VLD0, Crypto, DHTSchema, KeyPair};
use zeroize::Zeroizing;

use super::NetError;
use super::network::Network;
use crate::sync::RecordKey;

/// The state dir's file holding the record key and its owner keypair.
const IDENTITY_FILE: &str = "record";

/// Why an owner line does not parse. veilid-core's own parse error quotes the text it was
/// given, here the owner's secret key: it is not passed on.
const BAD_OWNER: &str = "the owner line is not a VLD0 keypair";

/// One subkey: the database's Status.
const STATUS_SUBKEYS: u16 = 1;

/// The database's DHT record key and owner keypair. Its Debug shows neither secret.
#[derive(Clone)]
pub struct RecordIdentity {
    /// What peers pass to `ddcp remote add`.
    pub key: RecordKey,
    /// The owner keypair, in Veilid's text form.
    owner: Zeroizing<String>,
}

impl std::fmt::Debug for RecordIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordIdentity")
            .field("key", &self.key)
            .field("owner", &"<redacted>")
            .finish()
    }
}

fn identity_path(state_dir: &Path) -> PathBuf {
    state_dir.join(IDENTITY_FILE)
}

impl RecordIdentity {
    /// The identity kept in `state_dir`.
    pub fn load(state_dir: &Path) -> Result<RecordIdentity, NetError> {
        let path = identity_path(state_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => Zeroizing::new(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(NetError::NoIdentity(state_dir.to_path_buf()));
            }
            Err(source) => return Err(NetError::Io { path, source }),
        };
        let bad = |reason: String| NetError::BadIdentity {
            path: path.clone(),
            reason,
        };
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .map(str::trim)
                .ok_or_else(|| bad(format!("no {name} line")))
        };
        let key = field("key")?
            .parse()
            .map_err(|err| bad(format!("key: {err}")))?;
        let owner = field("owner")?;
        // Checked now, so that a damaged file is reported here rather than when serving.
        // veilid-core takes a secret of any length: both halves must be 32 bytes, as ddcp's
        // strict reading of the same VLD0:<key>:<secret> form checks.
        let _: KeyPair = owner.parse().map_err(|_| bad(BAD_OWNER.to_string()))?;
        let _: RecordKey = owner.parse().map_err(|_| bad(BAD_OWNER.to_string()))?;
        Ok(RecordIdentity {
            key,
            owner: Zeroizing::new(owner.to_string()),
        })
    }

    /// Writes the identity into `state_dir`, mode 0600; an existing one is never replaced.
    pub fn save(&self, state_dir: &Path) -> Result<(), NetError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = identity_path(state_dir);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    NetError::IdentityExists(state_dir.to_path_buf())
                }
                _ => NetError::Io {
                    path: path.clone(),
                    source,
                },
            })?;
        let text = Zeroizing::new(format!(
            "key {}\nowner {}\n",
            self.key.reveal(),
            self.owner.as_str()
        ));
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|source| NetError::Io { path, source })
    }

    /// The owner keypair, which lets this node write the record.
    pub(super) fn owner(&self) -> Result<KeyPair, NetError> {
        self.owner
            .parse()
            .map_err(|_: veilid_core::VeilidAPIError| NetError::BadIdentity {
                path: PathBuf::from(IDENTITY_FILE),
                reason: BAD_OWNER.to_string(),
            })
    }

    /// True when `state_dir` holds an identity already.
    pub fn exists(state_dir: &Path) -> bool {
        identity_path(state_dir).exists()
    }
}

/// Creates the database's DHT record on the node of `network`. The record is created locally, without
/// the network; `ddcp serve` publishes its first value once attached.
pub async fn create_record_identity(network: &Network) -> Result<RecordIdentity, NetError> {
    let api = network.api();
    let failed = |err: veilid_core::VeilidAPIError| NetError::CreateRecord(err.to_string());
    let owner = Crypto::generate_keypair(CRYPTO_KIND_VLD0).map_err(failed)?;
    let schema = DHTSchema::dflt(STATUS_SUBKEYS).map_err(failed)?;
    let routing = api.routing_context().map_err(failed)?;
    let descriptor = routing
        .create_dht_record(CRYPTO_KIND_VLD0, schema, Some(owner.clone()))
        .await
        .map_err(failed)?;
    let key_text = Zeroizing::new(descriptor.key().to_string());
    // Close it again: init's node stops right after; serve reopens it with the owner keypair.
    routing
        .close_dht_record(descriptor.key())
        .await
        .map_err(failed)?;
    let key = key_text.parse().map_err(|err| {
        NetError::CreateRecord(format!("veilid printed a key ddcp cannot read: {err}"))
    })?;
    Ok(RecordIdentity {
        key,
        owner: Zeroizing::new(owner.to_string()),
    })
}
