//! Who wrote the log: a writer's Ed25519 key, the region's list of trusted writer keys, the
//! signature every group commit carries, and signed checkpoints of the head.
//!
//! The hash chain proves order; these prove authorship. A batch signature covers the positions
//! `first..=last` of one append, the hash before it and its last hash, so through the chain it
//! covers every byte of the batch; a checkpoint covers a head (position and hash) at a time.

use std::path::Path;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::envelope::Hash;

/// Why a key or a key list could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The file's content is not what it should be.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn invalid(path: &Path, problem: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

/// The id of a writer key: the first 8 bytes of SHA-256 of its public key, as 16 hex digits.
pub fn key_id(public: &VerifyingKey) -> String {
    hex::encode(&Hash::of(public.as_bytes()).0[..8])
}

/// A writer's signing key. Its file holds the 32-byte Ed25519 secret as 64 hex digits and must
/// be readable by its owner only (mode 0600).
pub struct WriterKey {
    key: SigningKey,
    id: String,
}

impl std::fmt::Debug for WriterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WriterKey({})", self.id)
    }
}

impl WriterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        Self::from_secret(secret)
    }

    /// The key with this 32-byte secret.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&secret);
        let id = key_id(&key.verifying_key());
        Self { key, id }
    }

    /// Loads the key at `path`, creating it (mode 0600) if there is none. A key file that
    /// others may read is refused.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        if path.exists() {
            return Self::load(path);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        // Written whole beside it, then linked into place: two processes starting at once on
        // one data directory end up with the same key, never with a half-written file.
        let key = Self::generate();
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        write_private(
            &tmp,
            format!("{}\n", hex::encode(key.key.to_bytes())).as_bytes(),
        )
        .map_err(io_error(&tmp))?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(io_error(path)(e)),
        }
    }

    /// Loads the key at `path`.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(io_error(path))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(invalid(
                    path,
                    format!(
                        "the writer key file has mode {:o}: it must be 0600",
                        mode & 0o777
                    ),
                ));
            }
        }
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        let mut secret = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut secret)
            .map_err(|_| invalid(path, "a writer key file holds 64 hex digits"))?;
        Ok(Self::from_secret(secret))
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The public key.
    pub fn public(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs one append: positions `first..=last`, chained from `prev_hash`, ending at
    /// `last_hash`.
    pub fn sign_batch(
        &self,
        first: u64,
        last: u64,
        prev_hash: Hash,
        last_hash: Hash,
    ) -> BatchSignature {
        let mut out = BatchSignature {
            first_position: first,
            last_position: last,
            prev_hash,
            last_hash,
            key_id: self.id.clone(),
            signature: String::new(),
        };
        out.signature = hex::encode(self.key.sign(&out.message()).to_bytes());
        out
    }

    /// Signs the head `position`/`head_hash` as of `time` (kept to the millisecond).
    pub fn sign_checkpoint(
        &self,
        position: u64,
        head_hash: Hash,
        time: DateTime<Utc>,
    ) -> Checkpoint {
        let time = DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or(time);
        let mut out = Checkpoint {
            position,
            head_hash,
            time,
            key_id: self.id.clone(),
            signature: String::new(),
        };
        out.signature = hex::encode(self.key.sign(&out.message()).to_bytes());
        out
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// The signature of one group commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSignature {
    /// Position of the batch's first event.
    pub first_position: u64,
    /// Position of its last event.
    pub last_position: u64,
    /// The hash before the first event.
    pub prev_hash: Hash,
    /// The hash of the last event.
    pub last_hash: Hash,
    /// The writer key that signed.
    pub key_id: String,
    /// Ed25519 signature of [`BatchSignature::message`], 128 hex digits.
    pub signature: String,
}

impl BatchSignature {
    /// The signed bytes: `contingent.batch.v1`, first and last position (8 bytes big-endian
    /// each), the previous hash, the last hash, the key id.
    pub fn message(&self) -> Vec<u8> {
        let mut m = b"contingent.batch.v1".to_vec();
        m.extend_from_slice(&self.first_position.to_be_bytes());
        m.extend_from_slice(&self.last_position.to_be_bytes());
        m.extend_from_slice(&self.prev_hash.0);
        m.extend_from_slice(&self.last_hash.0);
        m.extend_from_slice(self.key_id.as_bytes());
        m
    }
}

/// A signed statement of the log's head at a time, for auditors to keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Position of the head.
    pub position: u64,
    /// Hash of the event at that position.
    pub head_hash: Hash,
    /// When it was signed (milliseconds).
    pub time: DateTime<Utc>,
    /// The writer key that signed.
    pub key_id: String,
    /// Ed25519 signature of [`Checkpoint::message`], 128 hex digits.
    pub signature: String,
}

impl Checkpoint {
    /// The signed bytes: `contingent.checkpoint.v1`, the position (8 bytes big-endian), the
    /// head hash, the time in milliseconds since the epoch (8 bytes big-endian), the key id.
    pub fn message(&self) -> Vec<u8> {
        let mut m = b"contingent.checkpoint.v1".to_vec();
        m.extend_from_slice(&self.position.to_be_bytes());
        m.extend_from_slice(&self.head_hash.0);
        m.extend_from_slice(&self.time.timestamp_millis().to_be_bytes());
        m.extend_from_slice(self.key_id.as_bytes());
        m
    }
}

/// Whether a registered key may still sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// The key signs new appends.
    Active,
    /// The key was rotated out: it signs nothing new, and what it signed still verifies.
    Retired,
}

/// One registered writer key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredKey {
    /// Its id (see [`key_id`]).
    pub key_id: String,
    /// The Ed25519 public key, 64 hex digits.
    pub public_key: String,
    /// Active or retired.
    pub status: KeyStatus,
}

/// The region's trusted writer keys: a JSON file `{"writers": [{"key_id", "public_key",
/// "status"}]}`. Keys are retired, never removed, so what they signed still verifies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterKeys {
    /// The keys.
    pub writers: Vec<RegisteredKey>,
}

impl WriterKeys {
    /// Reads the list at `path`.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        let keys: Self = serde_json::from_str(&text).map_err(|e| invalid(path, e.to_string()))?;
        for k in &keys.writers {
            let public = parse_public(&k.public_key).ok_or_else(|| {
                invalid(path, format!("key {}: not an Ed25519 public key", k.key_id))
            })?;
            if key_id(&public) != k.key_id {
                return Err(invalid(
                    path,
                    format!("key {}: the id does not match the public key", k.key_id),
                ));
            }
        }
        Ok(keys)
    }

    /// Reads the list at `path`, or an empty list if there is no file.
    pub fn load_or_empty(path: &Path) -> Result<Self, KeyError> {
        if path.exists() {
            Self::load(path)
        } else {
            Ok(Self::default())
        }
    }

    /// Writes the list to `path` (through a temporary file, then renamed).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| invalid(path, e.to_string()))?;
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text + "\n").map_err(io_error(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io_error(path))
    }

    /// Registers `key` as active (nothing changes if it is listed already).
    pub fn register(&mut self, key: &VerifyingKey) {
        let id = key_id(key);
        if self.get(&id).is_none() {
            self.writers.push(RegisteredKey {
                key_id: id,
                public_key: hex::encode(key.as_bytes()),
                status: KeyStatus::Active,
            });
        }
    }

    /// Marks a key retired; false if no such key is listed.
    pub fn retire(&mut self, key_id: &str) -> bool {
        match self.writers.iter_mut().find(|k| k.key_id == key_id) {
            Some(k) => {
                k.status = KeyStatus::Retired;
                true
            }
            None => false,
        }
    }

    /// The registered key with this id.
    pub fn get(&self, key_id: &str) -> Option<&RegisteredKey> {
        self.writers.iter().find(|k| k.key_id == key_id)
    }

    /// Checks a signature of `message` by the key `key_id`: the key must be registered (active
    /// or retired) and the signature valid.
    pub fn check(&self, key_id: &str, message: &[u8], signature: &str) -> Result<(), String> {
        let registered = self
            .get(key_id)
            .ok_or_else(|| format!("key {key_id} is not a registered writer key"))?;
        let public = parse_public(&registered.public_key)
            .ok_or_else(|| format!("key {key_id} is not an Ed25519 public key"))?;
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(signature, &mut bytes)
            .map_err(|_| "the signature is not 128 hex digits".to_owned())?;
        public
            .verify(message, &Signature::from_bytes(&bytes))
            .map_err(|_| format!("the signature by key {key_id} does not verify"))
    }

    /// Checks a batch signature.
    pub fn check_batch(&self, s: &BatchSignature) -> Result<(), String> {
        self.check(&s.key_id, &s.message(), &s.signature)
    }

    /// Checks a checkpoint's signature.
    pub fn check_checkpoint(&self, c: &Checkpoint) -> Result<(), String> {
        self.check(&c.key_id, &c.message(), &c.signature)
    }
}

fn parse_public(hex_text: &str) -> Option<VerifyingKey> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut bytes).ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retired_key_still_verifies_what_it_signed_and_a_stranger_does_not() {
        let old = WriterKey::generate();
        let new = WriterKey::generate();
        let stranger = WriterKey::generate();
        let mut keys = WriterKeys::default();
        keys.register(&old.public());
        let signed = old.sign_batch(1, 3, Hash::of(b"a"), Hash::of(b"b"));
        keys.register(&new.public());
        assert!(keys.retire(old.id()));
        assert_eq!(keys.check_batch(&signed), Ok(()));
        let checkpoint = new.sign_checkpoint(3, Hash::of(b"b"), Utc::now());
        assert_eq!(keys.check_checkpoint(&checkpoint), Ok(()));

        let mut changed = signed.clone();
        changed.last_position = 4;
        assert!(keys.check_batch(&changed).is_err());
        let foreign = stranger.sign_batch(1, 3, Hash::of(b"a"), Hash::of(b"b"));
        assert!(keys
            .check_batch(&foreign)
            .is_err_and(|e| e.contains("not a registered writer key")));
    }

    #[test]
    fn a_key_file_is_created_private_and_loaded_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys").join("writer-key");
        let created = WriterKey::load_or_create(&path).expect("created");
        let loaded = WriterKey::load_or_create(&path).expect("loaded");
        assert_eq!(created.id(), loaded.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            assert!(WriterKey::load(&path).is_err());
        }
    }
}
