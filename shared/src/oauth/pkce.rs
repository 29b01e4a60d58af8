//! PKCE lives in `identity_core::pkce` (pure rules).

pub use identity_core::pkce::*;
