//! contingent-projections
