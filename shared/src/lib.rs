//! The common library of the identity service.
//!
//! Every Lambda under `functions/` and the `identity` CLI build on this crate:
//! [`store`] (records with TTL semantics on two backends), [`secrets`] (typed keys
//! with rotation), [`session`] (server-side sessions behind an encrypted cookie),
//! [`http`] (state, errors, pages, request ids) and [`logging`].
//!
//! Invariants: nothing here logs request bodies, cookies, tokens or keys; secret
//! values live in [`secret`] newtypes that never print; single-use values are
//! consumed with a conditional write on both backends.

pub mod accounts;
pub mod addon_sso;
pub mod addons;
pub mod api_keys;
pub mod apps;
pub mod audit;
pub mod authorizations;
pub mod aws;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod http;
pub mod idps;
pub mod jwt_clients;
pub mod logging;
pub mod login_history;
pub mod oauth;
pub mod orgs;
pub mod outbox;
pub mod password_reset;
pub mod secret;
pub mod secrets;
pub mod session;
pub mod sso;
pub mod store;
pub mod throttle;
pub mod tokens;

pub use clock::Clock;
pub use config::Config;
pub use http::AppState;
pub use store::Store;
