//! The JWT bearer grant's reader (RFC 7523): header, algorithm, structure and claims of an
//! assertion, before any key is looked up.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = jwt_grant::assertion::parse(token);
    }
});
