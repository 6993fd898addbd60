//! contingent-log-sqlite
