//! contingent-registry
