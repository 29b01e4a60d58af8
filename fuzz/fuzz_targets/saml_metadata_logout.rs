//! The other SAML readers: IdP metadata (`identity admin idp add --metadata`) and Single
//! Logout messages on both bindings (the Redirect binding's query, the POST binding's form).
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use sso_acs::saml::{Incoming, parse_idp_metadata};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_idp_metadata(text);
    let _ = Incoming::from_query(text);
    let form: HashMap<String, String> = identity_shared::http::fields::read_pairs(data)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let _ = Incoming::from_form(&form);
});
