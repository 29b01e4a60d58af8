//! Proof of work: what a page asks of a browser not known to the account while failures
//! surge ([`crate::throttle::Verdict::Prove`]). Nobody is refused because others failed;
//! instead each further attempt from an unknown browser costs its sender about 2^[`BITS`]
//! SHA-256 computations (a second or so in a browser), and costs us one hash to check.
//!
//! The challenge is sealed under the cookie key with the time it was made, so it needs no
//! store: it is good for [`LIFETIME_SECS`]. The work is bound to the subject the form names
//! (the `email` field, as sent): one solution does not serve for another email. The page
//! carries a small inline script (allowed by its hash in the page's policy) that finds a
//! nonce when the form is sent; a browser without scripts is told so.

use std::sync::LazyLock;

use aws_lc_rs::digest;
use base64::Engine;
use http::HeaderValue;

use crate::secrets::CookieKeys;
use maud::{Markup, PreEscaped, html};

/// Leading zero bits the work's hash needs.
pub const BITS: u32 = 16;
/// How long a challenge may be answered.
pub const LIFETIME_SECS: i64 = 600;
/// The form fields.
pub const CHALLENGE_FIELD: &str = "work_challenge";
pub const NONCE_FIELD: &str = "work_nonce";
const AAD: &[u8] = b"identity work v1";

/// A new challenge, made `now`.
pub fn challenge(keys: &CookieKeys, now: i64) -> String {
    keys.seal(&now.to_be_bytes(), AAD)
}

/// How many leading bits of `hash` are zero.
pub fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for b in hash {
        bits += b.leading_zeros();
        if *b != 0 {
            break;
        }
    }
    bits
}

/// What the work hashes: challenge, subject and nonce, each on its own line.
fn work_hash(challenge: &str, subject: &str, nonce: &str) -> digest::Digest {
    digest::digest(
        &digest::SHA256,
        format!("{challenge}\n{subject}\n{nonce}").as_bytes(),
    )
}

/// Did the browser do the work: a challenge we made within [`LIFETIME_SECS`], and a nonce
/// (decimal, as the page's script counts) whose hash with it and `subject` starts with
/// [`BITS`] zero bits?
pub fn proven(
    keys: &CookieKeys,
    now: i64,
    challenge: Option<&str>,
    nonce: Option<&str>,
    subject: &str,
) -> bool {
    let (Some(challenge), Some(nonce)) = (challenge, nonce) else {
        return false;
    };
    if challenge.len() > 256 || nonce.is_empty() || nonce.len() > 20 {
        return false;
    }
    if !nonce.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Some(made) = keys
        .open(challenge, AAD)
        .and_then(|p| <[u8; 8]>::try_from(p.as_slice()).ok())
        .map(i64::from_be_bytes)
    else {
        return false;
    };
    (0..=LIFETIME_SECS).contains(&(now - made))
        && leading_zero_bits(work_hash(challenge, subject, nonce).as_ref()) >= BITS
}

/// The page's script: when a form marked `data-work` is sent, it finds the nonce (in
/// batches of Web Crypto digests), puts it in the form and sends it.
pub const SCRIPT: &str = r#"document.querySelectorAll("form[data-work]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    if (form.dataset.done) return;
    event.preventDefault();
    var bits = Number(form.dataset.work);
    var prefix = form.elements.work_challenge.value + "\n" + form.elements.email.value + "\n";
    var status = document.getElementById("work-status");
    if (status) status.textContent = "Checking this browser…";
    var encoder = new TextEncoder();
    function enough(buffer) {
      var bytes = new Uint8Array(buffer), zeros = 0;
      for (var i = 0; i < bytes.length; i++) {
        if (bytes[i] === 0) { zeros += 8; continue; }
        zeros += Math.clz32(bytes[i]) - 24;
        break;
      }
      return zeros >= bits;
    }
    function batch(start) {
      var tries = [];
      for (var i = 0; i < 512; i++) {
        tries.push(crypto.subtle.digest("SHA-256", encoder.encode(prefix + (start + i))));
      }
      Promise.all(tries).then(function (hashes) {
        for (var i = 0; i < hashes.length; i++) {
          if (enough(hashes[i])) {
            form.elements.work_nonce.value = String(start + i);
            form.dataset.done = "1";
            form.submit();
            return;
          }
        }
        batch(start + 512);
      });
    }
    batch(0);
  });
});"#;

/// The `script-src` source that allows [`SCRIPT`] and nothing else.
pub static SCRIPT_SOURCE: LazyLock<String> = LazyLock::new(|| {
    let hash = digest::digest(&digest::SHA256, SCRIPT.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(hash.as_ref())
    )
});

/// What goes inside the form: the challenge, the nonce's field, and a line that says what
/// the browser is doing. The form itself needs `data-work` (see [`form_attribute`]).
pub fn fields(challenge: &str) -> Markup {
    html! {
        input type="hidden" name=(CHALLENGE_FIELD) value=(challenge);
        input type="hidden" name=(NONCE_FIELD) value="";
        p class="muted" id="work-status" {
            "Many attempts are failing right now, so this browser does a short check (a \
            second or so) when you continue. "
            noscript { "It needs JavaScript." }
        }
    }
}

/// The value of the form's `data-work` attribute, which marks it.
pub fn form_attribute() -> u32 {
    BITS
}

/// The script element, placed after the form.
pub fn script_element() -> Markup {
    html! { script { (PreEscaped(SCRIPT)) } }
}

/// `policy` (a page's Content-Security-Policy) with the script allowed by its hash.
pub fn allow_script(policy: &HeaderValue) -> HeaderValue {
    let text = policy.to_str().unwrap_or(super::form::DEFAULT_CSP);
    HeaderValue::from_str(&format!("{text}; script-src {}", *SCRIPT_SOURCE))
        .unwrap_or_else(|_| policy.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the page's script does, in Rust.
    fn solve(challenge: &str, subject: &str) -> String {
        (0u64..)
            .map(|n| n.to_string())
            .find(|n| leading_zero_bits(work_hash(challenge, subject, n).as_ref()) >= BITS)
            .unwrap()
    }

    #[test]
    fn leading_zero_bits_count_across_bytes() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x80]), 16);
        assert_eq!(leading_zero_bits(&[0, 0x01]), 15);
        assert_eq!(leading_zero_bits(&[0xff]), 0);
    }

    #[test]
    fn work_is_proven_only_for_our_fresh_challenge_and_its_subject() {
        let k = CookieKeys::generated();
        let c = challenge(&k, 1_000);
        let nonce = solve(&c, "ann@example.com");
        assert!(proven(&k, 1_010, Some(&c), Some(&nonce), "ann@example.com"));
        assert!(!proven(
            &k,
            1_010,
            Some(&c),
            Some(&nonce),
            "bob@example.com"
        ));
        assert!(!proven(
            &k,
            1_000 + LIFETIME_SECS + 1,
            Some(&c),
            Some(&nonce),
            "ann@example.com"
        ));
        assert!(!proven(
            &CookieKeys::generated(),
            1_010,
            Some(&c),
            Some(&nonce),
            "ann@example.com"
        ));
        assert!(!proven(&k, 1_010, Some(&c), None, "ann@example.com"));
        assert!(!proven(&k, 1_010, Some(&c), Some("0x1"), "ann@example.com"));
    }

    #[test]
    fn the_policy_allows_the_work_script_by_its_hash_only() {
        let policy = allow_script(&HeaderValue::from_static(super::super::form::DEFAULT_CSP));
        let text = policy.to_str().unwrap();
        assert!(
            text.ends_with(&format!("script-src {}", *SCRIPT_SOURCE)),
            "{text}"
        );
        assert!(!text.contains("unsafe-inline'; script") && !text.contains("script-src *"));
    }
}
