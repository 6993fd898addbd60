//! Access control: who is asking (a [`Principal`] from a verified bearer token), and what they
//! may do and see ([`authorize_command`], [`authorize_read`]).
//!
//! Tokens are JWTs signed with ES256 or RS256 and checked against a JSON Web Key Set, with
//! issuer, audience and expiry checked ([`TokenVerifier`]); [`LocalIssuer`] signs tokens for the
//! embedded default and the demo. The policy is pure: it reads the writer's `State` and knows
//! nothing of HTTP or storage.
#![deny(missing_docs)]

mod federal;
mod policy;
mod principal;
mod tokens;

pub use federal::{federal_view, FEDERAL_ENVELOPE_FIELDS, FEDERAL_FIELDS};
pub use policy::{authorize_command, authorize_read, command_learner, Denied, Read};
pub use principal::{Claims, IncompleteClaims, Principal, Role};
pub use tokens::{
    write_secret_file, LocalIssuer, TokenError, TokenVerifier, DEFAULT_AUDIENCE, LEEWAY_SECONDS,
    LOCAL_ISSUER,
};
