//! The session cookie opener: whatever a browser (or anyone) sends as `identity_session`
//! opens only if we sealed it.
#![no_main]

use std::sync::OnceLock;

use identity_shared::secret::SecretString;
use identity_shared::secrets::{CookieKeys, SecretKind, generate};
use identity_shared::session::SessionId;
use libfuzzer_sys::fuzz_target;

fn keys() -> &'static CookieKeys {
    static KEYS: OnceLock<CookieKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let doc = serde_json::json!({ "current": generate(SecretKind::Cookie).unwrap() });
        CookieKeys::parse(&SecretString::new(doc.to_string())).expect("cookie keys")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = std::str::from_utf8(data) {
        assert!(
            SessionId::open(keys(), value).is_none(),
            "a cookie we never sealed opened"
        );
    }
});
