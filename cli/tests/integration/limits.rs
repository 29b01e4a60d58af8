//! What a request may carry, tried against `identity serve` over a socket, the way a hostile
//! client sends it: oversized bodies (declared and chunked), too many or too large headers,
//! too many form parameters, and SAML messages nested too deep or flooded with attributes.
//! Each gets a clear 4xx in the protocol's shape, and the server goes on answering.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::cli::serve;
use crate::free_port;

const BODY_LIMIT: usize = 512 * 1024; // identity_shared::http::limits::MAX_BODY_BYTES

/// Sends `head` (request line and headers, without the blank line), then `body`; returns the
/// status, the Content-Type and the body of the answer.
fn send(port: u16, head: &str, body: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(format!("{head}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    // The server may answer (and close) before the whole body is sent: that is the point.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let kind = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, kind, body.to_string())
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in body.chunks(16 * 1024) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[test]
fn oversized_and_overloaded_requests_get_clear_refusals_in_the_protocols_shape() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = serve(dir.path(), port);

    // A token request with a declared body over the limit: 413, OAuth JSON, before reading it.
    let big = vec![b'a'; BODY_LIMIT + 1];
    let (status, kind, body) = send(
        port,
        &format!(
            "POST /oauth/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}",
            big.len()
        ),
        &big,
    );
    assert_eq!(status, 413, "{body}");
    assert_eq!(kind, "application/json");
    assert!(body.contains("\"error\":\"invalid_request\""), "{body}");

    // A browser-shaped form post to the ACS, chunked (no length), over the limit: 413 page.
    let saml = format!("SAMLResponse={}", "A".repeat(BODY_LIMIT));
    let (status, kind, body) = send(
        port,
        "POST /sso/acs HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nAccept: text/html,application/xhtml+xml\r\nTransfer-Encoding: chunked",
        &chunked(saml.as_bytes()),
    );
    assert_eq!(status, 413, "{body}");
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(body.contains("Request too large"), "{body}");

    // Too many headers, and one oversized cookie: 431.
    let many: String = (0..80).map(|i| format!("\r\nX-Pad-{i}: 1")).collect();
    let (status, _, body) = send(port, &format!("GET /session HTTP/1.1{many}"), b"");
    assert_eq!(status, 431, "{body}");
    assert!(body.contains("invalid_request"), "{body}");
    let cookie = format!("\r\nCookie: identity_session={}", "a".repeat(20 * 1024));
    let (status, _, _) = send(port, &format!("GET /session HTTP/1.1{cookie}"), b"");
    assert_eq!(status, 431);

    // Too many form parameters at the token endpoint: 400 invalid_request, saying why.
    let params: Vec<String> = (0..150).map(|i| format!("p{i}=1")).collect();
    let form = format!("grant_type=client_credentials&{}", params.join("&"));
    let (status, _, body) = send(
        port,
        &format!(
            "POST /oauth/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}",
            form.len()
        ),
        form.as_bytes(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("more than 100 parameters"), "{body}");

    // A SAMLResponse nested far deeper than any real one, and one whose root carries
    // 20,000 distinct empty attributes (the parser would check each against every earlier
    // one): each refused as malformed, 400 page, at /sso/acs and at /sso/slo.
    let nested = format!("{}{}", "<a>".repeat(5000), "</a>".repeat(5000));
    let attrs: String = (0..20_000).map(|i| format!(" a{i}=\"\"")).collect();
    let flood =
        format!("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"{attrs}/>");
    for (field, path, xml) in [
        ("SAMLResponse", "/sso/acs", &nested),
        ("SAMLResponse", "/sso/acs", &flood),
        ("SAMLRequest", "/sso/slo", &flood),
    ] {
        let encoded = base64_standard(xml.as_bytes());
        let form = format!(
            "{field}={}",
            encoded
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        );
        let (status, kind, body) = send(
            port,
            &format!(
                "POST {path} HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nAccept: text/html\r\nContent-Length: {}",
                form.len()
            ),
            form.as_bytes(),
        );
        assert_eq!(status, 400, "{path}: {body}");
        assert!(kind.starts_with("text/html"), "{kind}");
    }

    // And the server is still there, answering as before.
    let (status, kind, _) = send(port, "GET /session HTTP/1.1", b"");
    assert_eq!(status, 401);
    assert_eq!(kind, "application/json");
}

fn base64_standard(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
