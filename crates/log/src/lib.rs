//! contingent-log
