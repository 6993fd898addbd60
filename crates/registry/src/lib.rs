//! The application layer: the one place that opens connections ([`Registry::open`]), the
//! writer that validates commands against the domain rules and appends them with group commit,
//! the projector task that keeps the read models current, and the auditor's services
//! (history, state as of a date, chain verification, rebuild).
//!
//! It wires the domain, a log backend and the read models together; it knows nothing of HTTP.
#![deny(missing_docs)]

mod audit;
mod faults;
mod idempotency;
mod journal;
mod keystore;
mod markbook;
mod metrics;
mod migrate;
mod private_log;
mod projecting;
mod registry;
mod settings;
mod snapshot;
mod writer;

pub use audit::{kind_name, rebuild, verify, VerifyJob, VerifyJobState, VerifyReport, VerifyRun};
pub use faults::AppendFaults;
pub use journal::{Journal, JournalEntry, JournalLocation};
pub use keystore::{
    master_key_path, open_key_store, KeyStore, KeyStoreLocation, MasterKey, SqlKeyStore,
    MASTER_KEY_ENV,
};
pub use metrics::Metrics;
pub use migrate::{migrate_log, Migration};
pub use private_log::PrivateLog;
pub use projecting::{run_projector, select_projections};
pub use registry::{
    open_log, open_stored_log, open_writer_log, rotate_writer_key, writer_key, Receipt, Registry,
    RegistryError,
};
pub use settings::{LogBackend, RequestLimits, Settings};
pub use snapshot::{LearnerSnapshot, SnapshotEnrollment};
