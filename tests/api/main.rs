//! Black-box tests of the HTTP API: each test starts the real router on a random loopback port
//! over a fresh embedded registry in a temporary directory, and speaks HTTP to it.

mod access;
mod contract;
mod diary_cache;
mod errors;
mod helpers;
mod idempotency;
mod lifecycle;
mod limits;
mod log_and_feed;
mod privacy;
mod reach;
