//! Add-on SSO, as a partner verifies it (identity-addon-verify): the form the platform
//! POSTs, read and checked against one add-on's salt.
#![no_main]

use identity_addon_verify::{Salt, SsoForm, check};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(pairs) = identity_shared::http::fields::read_pairs(data) else {
        return;
    };
    if let Ok(form) = SsoForm::from_pairs(&pairs) {
        let salt = Salt::new("fuzz-salt-0123456789abcdef0123456789abcdef");
        assert!(
            check(&form, &salt, NOW).is_err(),
            "a form we never issued verified"
        );
    }
});
