//! SAML metadata: ours (SP) to publish, the IdP's to read at registration.

use base64::Engine;
use identity_shared::secrets::SamlSpKeys;
use roxmltree::Node;

use super::xml::{self, NS_DSIG, NS_METADATA, children, escape, is};
use super::{IdpMetadata, Sp};

const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";

/// SP metadata XML: entityID, Single Logout (Redirect and POST bindings), ACS (POST
/// binding), signing certificate(s): the current one
/// and, during a rotation, the previous one.
///
/// `AuthnRequestsSigned="false"`: requests are signed only for the IdPs whose own metadata
/// asks for it (`WantAuthnRequestsSigned`); the signing certificates are published so such
/// an IdP can check them.
pub fn sp_metadata(sp: &Sp, keys: &SamlSpKeys) -> String {
    let mut key_descriptors = String::new();
    for key in std::iter::once(&keys.current).chain(keys.previous.as_ref()) {
        key_descriptors.push_str(&format!(
            concat!(
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>"#,
                r#"<ds:X509Certificate>{}</ds:X509Certificate>"#,
                r#"</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
            ),
            key.certificate_base64()
        ));
    }
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" "#,
            r#"xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}">"#,
            r#"<md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" "#,
            r#"protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            "{keys}",
            r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{slo}"/>"#,
            r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{slo}"/>"#,
            r#"<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>"#,
            r#"<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" "#,
            r#"Location="{acs}" index="0" isDefault="true"/>"#,
            r#"</md:SPSSODescriptor></md:EntityDescriptor>"#
        ),
        entity_id = escape(&sp.entity_id),
        keys = key_descriptors,
        acs = escape(&sp.acs_url),
        slo = escape(&sp.slo_url),
    )
}

/// What `identity admin idp add --metadata FILE` reads: the entityID, the HTTP-Redirect
/// SingleSignOnService and SingleLogoutService, every signing certificate (`use="signing"` or no `use`) and
/// WantAuthnRequestsSigned. An `EntitiesDescriptor` holding exactly one IdP is accepted.
pub fn parse_idp_metadata(xml: &str) -> Result<IdpMetadata, String> {
    let xml = xml::guard(xml).map_err(|r| format!("metadata refused: {}", r.reason()))?;
    let doc =
        xml::parse(xml).map_err(|r| format!("metadata is not readable XML: {}", r.reason()))?;
    let root = doc.root_element();

    let entity = the_idp_entity(root)?;

    let entity_id = entity
        .attribute("entityID")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or("the EntityDescriptor has no entityID")?
        .to_string();
    let descriptor = idp_descriptor(entity).ok_or("no IDPSSODescriptor for SAML 2.0")?;

    let slo_url = redirect_location(descriptor, "SingleLogoutService");
    let sso_url = redirect_location(descriptor, "SingleSignOnService")
        .ok_or("no SingleSignOnService with the HTTP-Redirect binding")?;
    let certificates = signing_certificates(descriptor)?;

    let want_authn_requests_signed = matches!(
        descriptor
            .attribute("WantAuthnRequestsSigned")
            .map(str::trim),
        Some("true") | Some("1")
    );
    Ok(IdpMetadata {
        entity_id,
        sso_url,
        slo_url,
        certificates,
        want_authn_requests_signed,
    })
}

/// The one entity that is an IdP: the root EntityDescriptor, or the only IdP of an
/// EntitiesDescriptor.
fn the_idp_entity<'a, 'i>(root: Node<'a, 'i>) -> Result<Node<'a, 'i>, String> {
    if is(root, NS_METADATA, "EntityDescriptor") {
        Ok(root)
    } else if is(root, NS_METADATA, "EntitiesDescriptor") {
        let idps: Vec<Node> = root
            .descendants()
            .filter(|n| is(*n, NS_METADATA, "EntityDescriptor") && idp_descriptor(*n).is_some())
            .collect();
        match idps.as_slice() {
            [one] => Ok(*one),
            [] => Err("the metadata describes no identity provider".into()),
            _ => Err(
                "the metadata describes several identity providers; give the one to register"
                    .into(),
            ),
        }
    } else {
        Err("not SAML metadata (no md:EntityDescriptor)".into())
    }
}

/// The http(s) Location of the descriptor's `service` for the HTTP-Redirect binding.
fn redirect_location(descriptor: Node, service: &str) -> Option<String> {
    children(descriptor, NS_METADATA, service)
        .find(|s| s.attribute("Binding") == Some(REDIRECT_BINDING))
        .and_then(|s| s.attribute("Location"))
        .map(str::trim)
        .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
        .map(str::to_string)
}

/// Every signing certificate (`use="signing"` or no `use`), base64 DER, once each; at least
/// one, and each a real X.509 certificate.
fn signing_certificates(descriptor: Node) -> Result<Vec<String>, String> {
    let mut certificates = Vec::new();
    for kd in children(descriptor, NS_METADATA, "KeyDescriptor") {
        if !matches!(kd.attribute("use"), None | Some("signing")) {
            continue;
        }
        for cert in kd
            .descendants()
            .filter(|n| is(*n, NS_DSIG, "X509Certificate"))
        {
            let b64: String = xml::text(cert)
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(&b64)
                .map_err(|_| "a signing certificate is not base64".to_string())?;
            x509_parser::parse_x509_certificate(&der)
                .map_err(|_| "a signing certificate is not an X.509 certificate".to_string())?;
            let canonical = base64::engine::general_purpose::STANDARD.encode(&der);
            if !certificates.contains(&canonical) {
                certificates.push(canonical);
            }
        }
    }
    if certificates.is_empty() {
        return Err("no signing certificate in the IDPSSODescriptor".into());
    }

    Ok(certificates)
}

/// The entity's IDPSSODescriptor that supports SAML 2.0.
fn idp_descriptor<'a, 'i>(entity: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    children(entity, NS_METADATA, "IDPSSODescriptor").find(|d| {
        d.attribute("protocolSupportEnumeration").is_some_and(|p| {
            p.split_whitespace()
                .any(|x| x == "urn:oasis:names:tc:SAML:2.0:protocol")
        })
    })
}
