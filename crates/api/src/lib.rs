//! contingent-api
