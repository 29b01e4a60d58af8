//! The form and query readers every route uses: the token endpoint's form (repeats refused),
//! the authorize endpoint's query and form, and the pairs reader under both.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = identity_shared::http::fields::read_pairs(data);
    let _ = identity_shared::http::oauth::parse_unique_form(data);
    let _ = oauth_authorize::request::parse_pairs(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = identity_shared::http::fields::decode_component(text);
    }
});
