//! contingent-simulate
