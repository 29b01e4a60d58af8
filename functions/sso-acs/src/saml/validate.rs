//! `POST /sso/acs` validation: the pure decision for one IdP, given `now`.
//!
//! Order: input guards → strict parse → unsolicited allowed? → Status → signature shape
//! and algorithms → one Assertion → xmlsec verification with the registered certificates
//! → every rule below on the verified bytes only. Checks made on the raw (unsigned)
//! envelope can only refuse, never admit.

use identity_shared::accounts::Email;
use identity_shared::idps::{DEFAULT_MFA_CONTEXTS, Idp};
use roxmltree::Node;

use super::verify::{self, Signed};
use super::xml::{
    self, NS_ASSERTION, NS_PROTOCOL, children, instant, is, only_child, optional_child, text,
};
use super::{Refusal, Routing, Sp, Verified};

/// Clock skew tolerated on NotBefore / NotOnOrAfter / IssueInstant, in seconds.
pub const MAX_SKEW_SECS: i64 = 180;
/// How old (by its IssueInstant, and the Response's) an assertion may be, skew aside,
/// whatever its NotOnOrAfter says: an unsolicited assertion must not stay usable for hours.
pub const MAX_ASSERTION_AGE_SECS: i64 = 300;

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

/// Attribute names IdPs use for the email address (Okta/Google/Keycloak profiles, Entra's
/// claim URI, the LDAP `mail` OID), compared without case.
const EMAIL_ATTRIBUTES: &[&str] = &[
    "email",
    "emailaddress",
    "mail",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
];

/// Issuer and InResponseTo, read without trust, to find the IdP and the request.
pub fn routing(xml: &str) -> Result<Routing, Refusal> {
    xml::receive(xml)?.routing()
}

impl xml::Received<'_> {
    /// Issuer and InResponseTo, read without trust, to find the IdP and the request.
    pub fn routing(&self) -> Result<Routing, Refusal> {
        read_routing(self.doc.root_element())
    }
}

fn read_routing(root: Node) -> Result<Routing, Refusal> {
    if !is(root, NS_PROTOCOL, "Response") {
        return Err(Refusal::Malformed);
    }
    let issuer = match optional_child(root, NS_ASSERTION, "Issuer")? {
        Some(i) => text(i),
        None => children(root, NS_ASSERTION, "Assertion")
            .next()
            .and_then(|a| optional_child(a, NS_ASSERTION, "Issuer").ok().flatten())
            .map(text)
            .unwrap_or_default(),
    };
    if issuer.is_empty() {
        return Err(Refusal::Malformed);
    }
    Ok(Routing {
        issuer,
        in_response_to: root.attribute("InResponseTo").map(str::to_string),
    })
}

/// Full validation against one IdP. `expected_request`: the ID of our stored
/// AuthnRequest (SP-initiated) or None (IdP-initiated, refused unless the IdP allows it).
/// MFA is checked here when the IdP requires it. Replay is the caller's (store) job.
pub fn validate(
    xml: &str,
    idp: &Idp,
    sp: &Sp,
    expected_request: Option<&str>,
    now: i64,
) -> Result<Verified, Refusal> {
    validate_received(&xml::receive(xml)?, idp, sp, expected_request, now)
}

/// [`validate`] of a document already received (guarded and parsed once for the request).
pub fn validate_received(
    received: &xml::Received<'_>,
    idp: &Idp,
    sp: &Sp,
    expected_request: Option<&str>,
    now: i64,
) -> Result<Verified, Refusal> {
    // No registered certificate: nothing could ever verify (samael would skip the check).
    if idp.certificates.is_empty() {
        return Err(Refusal::UntrustedSignature);
    }
    let (xml, raw) = (received.xml, &received.doc);
    let root = raw.root_element();
    if !is(root, NS_PROTOCOL, "Response") {
        return Err(Refusal::Malformed);
    }
    if expected_request.is_none() && !idp.allow_idp_initiated {
        return Err(Refusal::UnsolicitedNotAllowed);
    }
    // An IdP's error response is usually unsigned and carries no assertion: say what it is.
    check_status(root)?;

    let signed = verify::check_shape(raw, root)?;
    let assertions = raw
        .descendants()
        .filter(|n| is(*n, NS_ASSERTION, "Assertion"))
        .count();
    let encrypted = raw
        .descendants()
        .filter(|n| is(*n, NS_ASSERTION, "EncryptedAssertion"))
        .count();
    if assertions != 1 || encrypted != 0 {
        return Err(Refusal::AssertionCount);
    }
    let raw_assertion =
        only_child(root, NS_ASSERTION, "Assertion").map_err(|_| Refusal::AssertionCount)?;

    let texts = verify::verified_texts(xml, &idp.certificates)?;
    let verified = verify::verified_document(&texts)?;
    let vroot = verified.root_element();

    // The verified bytes must be the element the shape check expected, and nothing else.
    let (response, assertion) = if signed.response {
        if !is(vroot, NS_PROTOCOL, "Response") || vroot.attribute("ID") != root.attribute("ID") {
            return Err(Refusal::SignatureWrapping);
        }
        let mut all = vroot.descendants().filter(|n| {
            is(*n, NS_ASSERTION, "Assertion") || is(*n, NS_ASSERTION, "EncryptedAssertion")
        });
        let a = match (all.next(), all.next()) {
            (Some(a), None)
                if is(a, NS_ASSERTION, "Assertion") && a.parent_element() == Some(vroot) =>
            {
                a
            }
            _ => return Err(Refusal::AssertionCount),
        };
        (vroot, a)
    } else {
        if !is(vroot, NS_ASSERTION, "Assertion")
            || vroot.attribute("ID") != raw_assertion.attribute("ID")
        {
            return Err(Refusal::SignatureWrapping);
        }
        // The envelope is unsigned: read it only to refuse.
        (root, vroot)
    };

    check_response(response, signed, idp, sp)?;
    check_assertion(response, assertion, idp, sp, expected_request, now)
}

fn check_status(response: Node) -> Result<(), Refusal> {
    let status = only_child(response, NS_PROTOCOL, "Status")?;
    let code = only_child(status, NS_PROTOCOL, "StatusCode")?;
    if code.attribute("Value") == Some(STATUS_SUCCESS) {
        Ok(())
    } else {
        Err(Refusal::StatusNotSuccess)
    }
}

/// The Response envelope: verified when the Response is signed, else read only to refuse.
fn check_response(response: Node, signed: Signed, idp: &Idp, sp: &Sp) -> Result<(), Refusal> {
    check_status(response)?;
    if let Some(issuer) = optional_child(response, NS_ASSERTION, "Issuer")?
        && text(issuer) != idp.entity_id
    {
        return Err(Refusal::WrongIssuer);
    }
    match response.attribute("Destination") {
        Some(d) if d != sp.acs_url => return Err(Refusal::WrongDestination),
        None if signed.response => return Err(Refusal::WrongDestination),
        _ => {}
    }
    Ok(())
}

fn check_assertion(
    response: Node,
    assertion: Node,
    idp: &Idp,
    sp: &Sp,
    expected_request: Option<&str>,
    now: i64,
) -> Result<Verified, Refusal> {
    let assertion_id = assertion
        .attribute("ID")
        .filter(|id| !id.is_empty())
        .ok_or(Refusal::Malformed)?
        .to_string();
    let issuer = only_child(assertion, NS_ASSERTION, "Issuer").map_err(|_| Refusal::WrongIssuer)?;
    if text(issuer) != idp.entity_id {
        return Err(Refusal::WrongIssuer);
    }
    let conditions_until = check_conditions(assertion, sp, now)?;
    let subject = only_child(assertion, NS_ASSERTION, "Subject")?;
    let name_id_node = optional_child(subject, NS_ASSERTION, "NameID")?;
    let (scd_until, scd_in_response_to) = confirm_bearer(subject, sp, expected_request, now)?;

    // Age: the assertion's IssueInstant (verified), and the Response's when it has one
    // (verified when the Response is signed, else read only to refuse).
    let issued = instant(
        assertion
            .attribute("IssueInstant")
            .ok_or(Refusal::Malformed)?,
    )?;
    fresh(issued, now)?;
    if let Some(r) = response.attribute("IssueInstant") {
        fresh(instant(r)?, now)?;
    }
    check_in_response_to(response, idp, expected_request, scd_in_response_to)?;
    let (authn_context, session_index) = check_authn(assertion, idp)?;

    // Who: the NameID when it is an email address, else an email attribute.
    let name_id = name_id_node.map(text).unwrap_or_default();
    let email = email(name_id_node, &name_id, assertion).ok_or(Refusal::NoEmail)?;
    let name_id_attr = |name: &str| {
        name_id_node
            .and_then(|n| n.attribute(name))
            .map(str::to_string)
    };
    Ok(Verified {
        assertion_id,
        valid_until: conditions_until
            .map_or(scd_until, |c| c.min(scd_until))
            .min(issued + MAX_ASSERTION_AGE_SECS + MAX_SKEW_SECS),
        name_id,
        email,
        in_response_to: expected_request.map(str::to_string),
        authn_context,
        name_id_format: name_id_attr("Format"),
        name_qualifier: name_id_attr("NameQualifier"),
        sp_name_qualifier: name_id_attr("SPNameQualifier"),
        session_index,
    })
}

/// Conditions: every AudienceRestriction names us, and `now` is inside the validity window
/// (its end, when it has one).
fn check_conditions(assertion: Node, sp: &Sp, now: i64) -> Result<Option<i64>, Refusal> {
    let conditions =
        optional_child(assertion, NS_ASSERTION, "Conditions")?.ok_or(Refusal::WrongAudience)?;
    let restrictions: Vec<Node> =
        children(conditions, NS_ASSERTION, "AudienceRestriction").collect();
    if restrictions.is_empty()
        || !restrictions
            .iter()
            .all(|r| children(*r, NS_ASSERTION, "Audience").any(|a| text(a) == sp.entity_id))
    {
        return Err(Refusal::WrongAudience);
    }
    window(conditions, now)
}

/// One bearer SubjectConfirmation that satisfies every rule: its NotOnOrAfter and
/// InResponseTo. With none, the first one's refusal.
fn confirm_bearer(
    subject: Node,
    sp: &Sp,
    expected_request: Option<&str>,
    now: i64,
) -> Result<(i64, Option<String>), Refusal> {
    let mut first_error = None;
    for bearer in children(subject, NS_ASSERTION, "SubjectConfirmation")
        .filter(|c| c.attribute("Method") == Some(BEARER))
    {
        match check_bearer(bearer, sp, expected_request, now) {
            Ok(ok) => return Ok(ok),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(Refusal::Malformed))
}

/// InResponseTo: the confirmation's (`scd_in_response_to`) and the Response's agree with
/// the request we sent; an unsolicited response carries none and is accepted only from an
/// IdP that allows it.
fn check_in_response_to(
    response: Node,
    idp: &Idp,
    expected_request: Option<&str>,
    scd_in_response_to: Option<String>,
) -> Result<(), Refusal> {
    let response_in_response_to = response.attribute("InResponseTo");
    match expected_request {
        Some(expected) => {
            if response_in_response_to.is_some_and(|r| r != expected) {
                return Err(Refusal::InResponseToMismatch);
            }
        }
        None => {
            if !idp.allow_idp_initiated {
                return Err(Refusal::UnsolicitedNotAllowed);
            }
            if response_in_response_to.is_some() || scd_in_response_to.is_some() {
                return Err(Refusal::InResponseToMismatch);
            }
        }
    }
    Ok(())
}

/// The authentication context (every statement's must count as MFA when the IdP requires
/// it) and the IdP's session: the first class reference and SessionIndex given.
fn check_authn(assertion: Node, idp: &Idp) -> Result<(Option<String>, Option<String>), Refusal> {
    let statements: Vec<Node> = children(assertion, NS_ASSERTION, "AuthnStatement").collect();
    if statements.is_empty() {
        return Err(Refusal::Malformed);
    }
    let class_refs: Vec<Option<String>> = statements
        .iter()
        .map(|s| {
            optional_child(*s, NS_ASSERTION, "AuthnContext")
                .ok()
                .flatten()
                .and_then(|c| {
                    optional_child(c, NS_ASSERTION, "AuthnContextClassRef")
                        .ok()
                        .flatten()
                })
                .map(text)
        })
        .collect();
    if idp.require_mfa {
        let accepted = |c: &str| {
            if idp.mfa_contexts.is_empty() {
                DEFAULT_MFA_CONTEXTS.contains(&c)
            } else {
                idp.mfa_contexts.iter().any(|m| m == c)
            }
        };
        if !class_refs
            .iter()
            .all(|c| c.as_deref().is_some_and(accepted))
        {
            return Err(Refusal::MfaRequired);
        }
    }
    let session_index = statements
        .iter()
        .find_map(|s| s.attribute("SessionIndex"))
        .map(str::to_string);
    Ok((class_refs.into_iter().flatten().next(), session_index))
}

/// An IssueInstant: not ahead of `now` beyond the skew, and not older than the age bound
/// plus the skew.
pub(crate) fn fresh(issued: i64, now: i64) -> Result<(), Refusal> {
    if issued > now + MAX_SKEW_SECS {
        return Err(Refusal::NotYetValid);
    }
    if now >= issued + MAX_ASSERTION_AGE_SECS + MAX_SKEW_SECS {
        return Err(Refusal::TooOld);
    }
    Ok(())
}

/// NotBefore / NotOnOrAfter of an element, with the skew; returns NotOnOrAfter if any.
fn window(node: Node, now: i64) -> Result<Option<i64>, Refusal> {
    if let Some(nb) = node.attribute("NotBefore")
        && now + MAX_SKEW_SECS < instant(nb)?
    {
        return Err(Refusal::NotYetValid);
    }
    match node.attribute("NotOnOrAfter") {
        Some(na) => {
            let na = instant(na)?;
            if now >= na + MAX_SKEW_SECS {
                return Err(Refusal::Expired);
            }
            Ok(Some(na))
        }
        None => Ok(None),
    }
}

/// One bearer SubjectConfirmation: Recipient, validity window (NotOnOrAfter required) and
/// InResponseTo. Returns (NotOnOrAfter, InResponseTo).
fn check_bearer(
    bearer: Node,
    sp: &Sp,
    expected_request: Option<&str>,
    now: i64,
) -> Result<(i64, Option<String>), Refusal> {
    let data = optional_child(bearer, NS_ASSERTION, "SubjectConfirmationData")?
        .ok_or(Refusal::Malformed)?;
    if data.attribute("Recipient") != Some(sp.acs_url.as_str()) {
        return Err(Refusal::WrongRecipient);
    }
    let until = window(data, now)?.ok_or(Refusal::Malformed)?;
    let in_response_to = data.attribute("InResponseTo");
    if let Some(expected) = expected_request
        && in_response_to != Some(expected)
    {
        return Err(Refusal::InResponseToMismatch);
    }
    Ok((until, in_response_to.map(str::to_string)))
}

fn email(name_id_node: Option<Node>, name_id: &str, assertion: Node) -> Option<String> {
    let format = name_id_node.and_then(|n| n.attribute("Format"));
    if matches!(format, None | Some(NAMEID_EMAIL) | Some(NAMEID_UNSPECIFIED))
        && let Ok(e) = Email::parse(name_id)
    {
        return Some(e.as_str().to_string());
    }
    for statement in children(assertion, NS_ASSERTION, "AttributeStatement") {
        for attribute in children(statement, NS_ASSERTION, "Attribute") {
            let name = attribute.attribute("Name").unwrap_or("");
            if EMAIL_ATTRIBUTES
                .iter()
                .any(|e| e.eq_ignore_ascii_case(name))
            {
                for value in children(attribute, NS_ASSERTION, "AttributeValue") {
                    if let Ok(e) = Email::parse(&text(value)) {
                        return Some(e.as_str().to_string());
                    }
                }
            }
        }
    }
    None
}
