//! Making an assertion, as a CI job does: what `identity admin authorization add` uses to
//! run the grant with the operator's key file. RSA keys sign RS256, EC P-256 keys ES256.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use identity_shared::crypto;
use identity_shared::secret::SecretString;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    #[error("the key file holds no private key (PEM)")]
    NoKey,
    #[error(
        "encrypted private keys are not supported; decrypt it first (openssl pkey -in K -out K.plain)"
    )]
    Encrypted,
    #[error("the private key is neither RSA nor EC P-256")]
    Unsupported,
    #[error("signing failed")]
    Signing,
}

enum Key {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

fn load(key_pem: &SecretString) -> Result<Key, SignError> {
    let blocks = pem::parse_many(key_pem.expose_secret()).map_err(|_| SignError::NoKey)?;
    let block = blocks
        .iter()
        .find(|b| b.tag().ends_with("PRIVATE KEY"))
        .ok_or(SignError::NoKey)?;
    let der = block.contents();
    match block.tag() {
        "ENCRYPTED PRIVATE KEY" => Err(SignError::Encrypted),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(der)
            .map(Key::Rsa)
            .map_err(|_| SignError::Unsupported),
        "EC PRIVATE KEY" => {
            EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .map(Key::Ec)
                .map_err(|_| SignError::Unsupported)
        }
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(der)
            .map(Key::Rsa)
            .or_else(|_| {
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map(Key::Ec)
            })
            .map_err(|_| SignError::Unsupported),
        _ => Err(SignError::Unsupported),
    }
}

/// A compact JWS over `claims`, signed with the PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn sign_assertion(
    key_pem: &SecretString,
    claims: &serde_json::Value,
) -> Result<SecretString, SignError> {
    let key = load(key_pem)?;
    let alg = match key {
        Key::Rsa(_) => "RS256",
        Key::Ec(_) => "ES256",
    };
    let header = serde_json::json!({ "alg": alg, "typ": "JWT" });
    let input = format!(
        "{}.{}",
        crypto::b64url(header.to_string().as_bytes()),
        crypto::b64url(claims.to_string().as_bytes())
    );
    let rng = SystemRandom::new();
    let signature = match key {
        Key::Rsa(pair) => {
            let mut sig = vec![0u8; pair.public_modulus_len()];
            pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                .map_err(|_| SignError::Signing)?;
            sig
        }
        Key::Ec(pair) => pair
            .sign(&rng, input.as_bytes())
            .map_err(|_| SignError::Signing)?
            .as_ref()
            .to_vec(),
    };
    Ok(SecretString::new(format!(
        "{input}.{}",
        crypto::b64url(&signature)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assertion;
    use identity_shared::jwt_clients::Certificate;

    /// Inside rcgen's default validity (1975 to 4096).
    const NOW: i64 = 2_000_000_000;

    fn pair(alg: &'static rcgen::SignatureAlgorithm) -> (SecretString, Certificate) {
        let key = if alg == &rcgen::PKCS_RSA_SHA256 {
            rcgen::KeyPair::generate_rsa_for(alg, rcgen::RsaKeySize::_2048).unwrap()
        } else {
            rcgen::KeyPair::generate_for(alg).unwrap()
        };
        let cert = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (
            SecretString::new(key.serialize_pem()),
            Certificate::from_pem(&cert.pem(), 0).unwrap(),
        )
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({"iss": "jwt_c", "sub": "a@example.com", "aud": "x", "exp": 10})
    }

    #[test]
    fn signed_assertions_verify_with_the_certificate() {
        for alg in [&rcgen::PKCS_RSA_SHA256, &rcgen::PKCS_ECDSA_P256_SHA256] {
            let (key, cert) = pair(alg);
            let token = sign_assertion(&key, &claims()).unwrap();
            let parsed = assertion::parse(token.expose_secret()).unwrap();
            assert!(
                parsed
                    .verify_signature(std::slice::from_ref(&cert), NOW)
                    .is_ok()
            );
            let (_, other) = pair(alg);
            assert!(parsed.verify_signature(&[other], NOW).is_err());
        }
    }

    #[test]
    fn sec1_ec_keys_sign_and_other_files_are_refused() {
        use aws_lc_rs::encoding::AsDer;
        let (key, cert) = pair(&rcgen::PKCS_ECDSA_P256_SHA256);
        let pkcs8 = pem::parse(key.expose_secret()).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.contents()).unwrap();
        let sec1 = pem::encode(&pem::Pem::new(
            "EC PRIVATE KEY",
            pair.private_key().as_der().unwrap().as_ref().to_vec(),
        ));
        let token = sign_assertion(&SecretString::new(sec1), &claims()).unwrap();
        let parsed = assertion::parse(token.expose_secret()).unwrap();
        assert!(
            parsed
                .verify_signature(std::slice::from_ref(&cert), NOW)
                .is_ok()
        );
        assert_eq!(
            sign_assertion(&SecretString::new(cert.pem.clone()), &claims()).err(),
            Some(SignError::NoKey)
        );
        let enc = pem::encode(&pem::Pem::new("ENCRYPTED PRIVATE KEY", vec![1, 2, 3]));
        assert_eq!(
            sign_assertion(&SecretString::new(enc), &claims()).err(),
            Some(SignError::Encrypted)
        );
    }
}
