//! The learners' data keys, kept apart from the log: destroying a learner's keys erases their
//! personal data from every copy of the log (crypto-shredding).
//!
//! [`KeyStore`] is what a key management service would implement. [`SqlKeyStore`] keeps each
//! key wrapped (XChaCha20-Poly1305) under the region's master key, in its own SQLite file
//! (`DATA/keys.db`) or, when the read models are in PostgreSQL, in a table of that database
//! shared by every process of the region. The master key comes from `CONTINGENT_MASTER_KEY`
//! (64 hex digits) or from the file `DATA/keys/master-key` (mode 0600, made on first start).
//! The store keeps a check value of the master key and refuses to open with another one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use contingent_domain::LearnerId;
use contingent_log::DataKey;
use sha2::{Digest, Sha256};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Executor, Row};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::registry::RegistryError;

/// The environment variable that holds the master key, as 64 hex digits.
pub const MASTER_KEY_ENV: &str = "CONTINGENT_MASTER_KEY";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS data_keys (
    key_id     TEXT PRIMARY KEY,
    learner_id TEXT NOT NULL,
    wrapped    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS data_keys_by_learner ON data_keys (learner_id);
CREATE TABLE IF NOT EXISTS master_key_check (
    id    INTEGER PRIMARY KEY,
    check_value TEXT NOT NULL
);
"#;

/// Where the learners' data keys are kept.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Keeps new data keys, all or none; returns once they are durable.
    async fn create(&self, keys: &[&DataKey]) -> Result<(), RegistryError>;
    /// The key with this id; none once it was destroyed (or never made).
    async fn get(&self, key_id: Uuid) -> Result<Option<DataKey>, RegistryError>;
    /// Destroys every key of a learner made before `before` (all of them for `None`); returns
    /// how many there were.
    async fn destroy(
        &self,
        learner: LearnerId,
        before: Option<DateTime<Utc>>,
    ) -> Result<u64, RegistryError>;
}

/// The region's master key, which wraps every data key.
pub struct MasterKey(Zeroizing<[u8; 32]>);

fn unavailable(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Unavailable(e.to_string())
}

impl MasterKey {
    /// From `CONTINGENT_MASTER_KEY` when set, else from `path`, made (mode 0600) if missing.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
            return Self::parse(&text)
                .ok_or_else(|| unavailable(format!("{MASTER_KEY_ENV} is not 64 hex digits")));
        }
        if !path.exists() {
            Self::create(path)?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| unavailable(format!("{}: {e}", path.display())))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(unavailable(format!(
                    "the master key file {} has mode {:o}: it must be 0600",
                    path.display(),
                    mode & 0o777
                )));
            }
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| unavailable(format!("{}: {e}", path.display())))?,
        );
        Self::parse(&text)
            .ok_or_else(|| unavailable(format!("{} is not 64 hex digits", path.display())))
    }

    fn create(path: &Path) -> Result<(), RegistryError> {
        let io = |e: std::io::Error| unavailable(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, secret.as_mut());
        let text = Zeroizing::new(format!("{}\n", hex::encode(secret.as_ref())));
        // Written whole beside it, then linked into place: two processes starting at once end
        // up with the same key.
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp).map_err(io)?;
            file.write_all(text.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    /// Parses 64 hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let mut secret = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), secret.as_mut()).ok()?;
        Some(Self(secret))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.as_ref().into())
    }

    /// A value that identifies the master key without revealing it.
    fn check_value(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"contingent.master-key-check.v1");
        hasher.update(self.0.as_ref());
        hex::encode(hasher.finalize())
    }

    fn aad(key_id: Uuid, learner: LearnerId) -> Vec<u8> {
        let mut aad = b"contingent.data-key.v1".to_vec();
        aad.extend_from_slice(key_id.as_bytes());
        aad.extend_from_slice(learner.to_string().as_bytes());
        aad
    }

    fn wrap(&self, key: &DataKey) -> Result<String, RegistryError> {
        let mut nonce = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: key.secret(),
                    aad: &Self::aad(key.id, key.learner),
                },
            )
            .map_err(|_| unavailable("wrapping a data key failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(hex::encode(out))
    }

    fn unwrap(
        &self,
        key_id: Uuid,
        learner: LearnerId,
        wrapped: &str,
    ) -> Result<DataKey, RegistryError> {
        let bytes = hex::decode(wrapped).map_err(unavailable)?;
        if bytes.len() < 24 {
            return Err(unavailable(format!("data key {key_id} is damaged")));
        }
        let (nonce, sealed) = bytes.split_at(24);
        let secret = Zeroizing::new(
            self.cipher()
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &Self::aad(key_id, learner),
                    },
                )
                .map_err(|_| {
                    unavailable(format!(
                        "data key {key_id} does not open with the master key"
                    ))
                })?,
        );
        DataKey::from_bytes(key_id, learner, &secret)
            .ok_or_else(|| unavailable(format!("data key {key_id} is damaged")))
    }
}

/// Where the key store lives.
#[derive(Debug, Clone)]
pub enum KeyStoreLocation {
    /// A SQLite file of this process (`DATA/keys.db`).
    File(PathBuf),
    /// A PostgreSQL database shared by every process of the region.
    Postgres(String),
}

impl KeyStoreLocation {
    /// The settings' key store: `key_store`, else the PostgreSQL database when one is set, else
    /// `DATA/keys.db`.
    pub fn of(settings: &crate::Settings) -> Self {
        match settings.key_store.as_ref().or(settings.database.as_ref()) {
            Some(url) => Self::Postgres(url.clone()),
            None => Self::File(settings.data_dir.join("keys.db")),
        }
    }
}

/// The master key file: `DATA/keys/master-key`.
pub fn master_key_path(settings: &crate::Settings) -> PathBuf {
    settings.data_dir.join("keys").join("master-key")
}

/// Opens the key store the settings name, with their master key.
pub async fn open_key_store(settings: &crate::Settings) -> Result<SqlKeyStore, RegistryError> {
    let master = MasterKey::load(&master_key_path(settings))?;
    SqlKeyStore::open(&KeyStoreLocation::of(settings), master).await
}

/// The key store of the embedded default and of the regional deployment.
pub struct SqlKeyStore {
    pool: AnyPool,
    master: MasterKey,
    sqlite: bool,
}

impl SqlKeyStore {
    /// Opens (creating if needed) the store, and checks the master key against it.
    pub async fn open(
        location: &KeyStoreLocation,
        master: MasterKey,
    ) -> Result<Self, RegistryError> {
        sqlx::any::install_default_drivers();
        let options = match location {
            KeyStoreLocation::File(path) => {
                let path = std::path::absolute(path).map_err(sqlx::Error::Io)?;
                let url = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .to_url_lossy();
                AnyConnectOptions::from_url(&url)?
            }
            KeyStoreLocation::Postgres(url) => url.parse::<AnyConnectOptions>()?,
        };
        let sqlite = matches!(location, KeyStoreLocation::File(_));
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(60))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // A destroyed key's bytes are overwritten, not left in a free page.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA secure_delete = ON; PRAGMA busy_timeout = 30000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let mut tx = pool.begin().await?;
        if !sqlite {
            sqlx::query("SELECT pg_advisory_xact_lock(7165119440512434292)")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
        let check = master.check_value();
        let stored: Option<String> =
            sqlx::query("SELECT check_value FROM master_key_check WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.get(0));
        match stored {
            None => {
                sqlx::query("INSERT INTO master_key_check (id, check_value) VALUES (1, $1)")
                    .bind(&check)
                    .execute(&mut *tx)
                    .await?;
            }
            Some(stored) if stored == check => {}
            Some(_) => {
                return Err(unavailable(format!(
                    "the key store's data keys were wrapped by another master key: set \
                     {MASTER_KEY_ENV} (or DATA/keys/master-key) to the region's master key"
                )))
            }
        }
        tx.commit().await?;
        Ok(Self {
            pool,
            master,
            sqlite,
        })
    }
}

#[async_trait]
impl KeyStore for SqlKeyStore {
    async fn create(&self, keys: &[&DataKey]) -> Result<(), RegistryError> {
        if keys.is_empty() {
            return Ok(());
        }
        // One transaction (one sync to disk) for the keys of a whole append.
        let mut tx = self.pool.begin().await?;
        for key in keys {
            let wrapped = self.master.wrap(key)?;
            sqlx::query("INSERT INTO data_keys (key_id, learner_id, wrapped) VALUES ($1, $2, $3)")
                .bind(key.id.to_string())
                .bind(key.learner.to_string())
                .bind(wrapped)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get(&self, key_id: Uuid) -> Result<Option<DataKey>, RegistryError> {
        let row = sqlx::query("SELECT learner_id, wrapped FROM data_keys WHERE key_id = $1")
            .bind(key_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let learner: String = row.get(0);
        let wrapped: String = row.get(1);
        let learner: LearnerId = learner
            .parse()
            .map_err(|_| unavailable(format!("data key {key_id} names no learner")))?;
        self.master.unwrap(key_id, learner, &wrapped).map(Some)
    }

    async fn destroy(
        &self,
        learner: LearnerId,
        before: Option<DateTime<Utc>>,
    ) -> Result<u64, RegistryError> {
        // Key ids are UUID v7: their text sorts by the millisecond they were made in.
        let bound = before.map_or_else(
            || "g".to_owned(),
            |t| {
                let ms = u64::try_from(t.timestamp_millis()).unwrap_or(0) + 1;
                let hex = format!("{ms:012x}");
                format!("{}-{}", &hex[..8], &hex[8..])
            },
        );
        let done = sqlx::query("DELETE FROM data_keys WHERE learner_id = $1 AND key_id < $2")
            .bind(learner.to_string())
            .bind(bound)
            .execute(&self.pool)
            .await?;
        if self.sqlite && done.rows_affected() > 0 {
            // Leave no copy of the deleted rows in the write-ahead log either.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(done.rows_affected())
    }
}
