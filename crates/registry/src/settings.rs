//! The one configuration struct.

use std::path::{Path, PathBuf};

/// How the registry runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Directory holding `log.db` (the event log) and `read.db` (the read models).
    pub data_dir: PathBuf,
    /// Most commands decided and committed together in one group commit.
    pub max_batch: usize,
    /// Events applied to the read models per transaction.
    pub projector_batch: usize,
    /// Largest request body the API accepts, in bytes.
    pub max_body_bytes: usize,
}

impl Settings {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            max_batch: 1024,
            projector_batch: 2000,
            max_body_bytes: 64 * 1024,
        }
    }

    /// The event log file.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("log.db")
    }

    /// The read-model file.
    pub fn read_path(&self) -> PathBuf {
        self.data_dir.join("read.db")
    }

    /// The access journal file.
    pub fn journal_path(&self) -> PathBuf {
        self.data_dir.join("journal.db")
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}
