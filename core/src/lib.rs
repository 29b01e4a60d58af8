//! `identity-core`: the protocol's records and decisions as plain data and pure functions.
//!
//! Nothing here does I/O or reads a clock: a decision takes what the caller parsed and
//! loaded, and `now`, and answers with an outcome (and, where it writes, the store
//! operations to apply atomically). No web framework, no AWS SDK, no SQLite: the test
//! command checks the crate graph with `cargo tree -p identity-core`. `identity-shared`
//! loads, executes the operations on its two store backends, and re-exports these types.
//!
//! - [`store`]: records, conditions, operations, tables, the store error.
//! - [`scope`], [`pkce`], [`grant`]: the OAuth vocabulary, PKCE `S256`, grants.
//! - [`code`]: the authorization-code exchange; [`refresh`]: refresh-token rotation;
//!   [`jwt`]: the JWT bearer grant's claims, user and scope rules.

pub mod clock;
pub mod code;
pub mod grant;
pub mod jwt;
pub mod pkce;
pub mod refresh;
pub mod scope;
pub mod store;
