//! The scope vocabulary lives in `identity_core::scope` (pure data and rules).

pub use identity_core::scope::*;
