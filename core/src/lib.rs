//! `identity-core`: the protocol's records and decisions as plain data and pure functions.
//!
//! Nothing here does I/O or reads a clock: a decision takes what the caller parsed and
//! loaded, and `now`, and answers with an outcome (and, where it writes, the store
//! operations to apply atomically). No web framework, no AWS SDK, no SQLite: the test
//! command checks the crate graph with `cargo tree -p identity-core`. `identity-shared`
//! loads, executes the operations on its two store backends, and re-exports these types.
//!
//! - [`store`]: records, conditions, operations, tables, the store error; [`plan`]: what a
//!   decision returns (its outcome and the operations to write); [`digest`]: stored
//!   hashes that never print.
//! - [`ids`]: client, grant and account ids and redirect URIs as their own types.
//! - [`scope`], [`pkce`], [`grant`]: the OAuth vocabulary, PKCE `S256`, grants.
//! - [`client`]: client authentication; [`code`]: the authorization-code exchange; [`refresh`]: refresh-token rotation;
//!   [`jwt`]: the JWT bearer grant's claims, user and scope rules; [`device`]: the device
//!   flow's poll; [`sso`]: an SSO login's path, confirmed moves, team roles; [`addon`]:
//!   who gets an add-on SSO form; [`org`]: teams, enterprise accounts and their SSO rules; [`api_key`]: when a long-lived API key still acts.

pub mod account;
pub mod addon;
pub mod api_key;
pub mod app;
pub mod authorization;
pub mod authorize;
pub mod client;
pub mod clock;
pub mod code;
pub mod device;
pub mod digest;
pub mod error;
pub mod grant;
pub mod idp;
pub mod ids;
pub mod jwt;
pub mod org;
pub mod outbox;
pub mod password;
pub mod pkce;
pub mod plan;
pub mod refresh;
pub mod role;
pub mod scope;
pub mod session;
pub mod sso;
pub mod store;
pub mod throttle;
pub mod token_request;
