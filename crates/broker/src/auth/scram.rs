//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka's `ScramSaslServer` runs
//! them, and the stored form of a credential (salt, StoredKey, ServerKey, iterations: never
//! the password).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Kafka's bounds on SCRAM iterations (`ScramMechanism.minIterations()`, and the 16384 upper
/// bound of `AlterUserScramCredentials`).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;
/// Iterations of credentials made here (bootstrap users): Kafka's default.
pub const DEFAULT_ITERATIONS: i32 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The code of Kafka's `ScramMechanism` enum in the admin API (0 is UNKNOWN).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi(password, salt, i)`: PBKDF2 with this mechanism's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// What the broker keeps of one user's password for one mechanism.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    #[serde(with = "b64")]
    pub stored_key: Vec<u8>,
    #[serde(with = "b64")]
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl ScramCredential {
    /// From `SaltedPassword`, as AlterUserScramCredentials sends it.
    pub fn from_salted(
        mech: ScramMechanism,
        salted: &[u8],
        salt: Vec<u8>,
        iterations: i32,
    ) -> ScramCredential {
        let client_key = mech.hmac(salted, b"Client Key");
        ScramCredential {
            salt,
            stored_key: mech.hash(&client_key),
            server_key: mech.hmac(salted, b"Server Key"),
            iterations,
        }
    }

    /// A new credential for `password` with a random salt.
    pub fn new(mech: ScramMechanism, password: &str, iterations: i32) -> ScramCredential {
        let mut salt = vec![0u8; 32];
        rand::thread_rng().fill(&mut salt[..]);
        let salted = mech.salted_password(password.as_bytes(), &salt, iterations as u32);
        ScramCredential::from_salted(mech, &salted, salt, iterations)
    }

    /// Whether `password` is this credential's password (SASL/PLAIN): derives the keys
    /// again, as a SCRAM client would, and compares the StoredKey in constant time.
    pub fn verify_password(&self, mech: ScramMechanism, password: &str) -> bool {
        let Ok(iterations) = u32::try_from(self.iterations) else {
            return false;
        };
        let salted = mech.salted_password(password.as_bytes(), &self.salt, iterations);
        let client_key = mech.hmac(&salted, b"Client Key");
        bool::from(mech.hash(&client_key).ct_eq(&self.stored_key))
    }
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

/// Why an exchange failed; the client only ever sees one generic message.
#[derive(Debug)]
pub struct ScramError(pub &'static str);

/// The server side of one SCRAM exchange.
pub enum ScramServer {
    /// Waiting for client-first.
    Start {
        mech: ScramMechanism,
    },
    /// server-first sent; waiting for client-final.
    Challenged {
        mech: ScramMechanism,
        user: String,
        /// `None` for an unknown user: the exchange goes on with a made-up salt and fails
        /// at the proof, so that the answers do not tell whether the user exists.
        credential: Option<ScramCredential>,
        gs2_header: String,
        nonce: String,
        client_first_bare: String,
        server_first: String,
    },
    Done,
}

/// After client-first: the user whose credential to look up.
pub struct ClientFirst {
    pub user: String,
    gs2_header: String,
    client_nonce: String,
    bare: String,
}

impl ClientFirst {
    /// `gs2-header client-first-message-bare`: `n,[a=authzid],n=user,r=nonce[,ext...]`.
    pub fn parse(raw: &[u8]) -> Result<ClientFirst, ScramError> {
        let text = std::str::from_utf8(raw).map_err(|_| ScramError("client-first is not UTF-8"))?;
        let mut parts = text.splitn(3, ',');
        let cbind = parts.next().unwrap_or_default();
        let authzid = parts
            .next()
            .ok_or(ScramError("client-first is truncated"))?;
        let bare = parts
            .next()
            .ok_or(ScramError("client-first is truncated"))?;
        // Kafka has no channel binding: "n" (client does not support it) or "y".
        if cbind != "n" && cbind != "y" {
            return Err(ScramError("channel binding is not supported"));
        }
        let mut user = None;
        let mut nonce = None;
        for attr in bare.split(',') {
            if let Some(v) = attr.strip_prefix("n=") {
                user = Some(decode_saslname(v)?);
            } else if let Some(v) = attr.strip_prefix("r=") {
                nonce = Some(v.to_string());
            } else if attr.starts_with("m=") {
                return Err(ScramError("mandatory extension is not supported"));
            } else if attr.starts_with("tokenauth=") {
                // Delegation tokens (KIP-48) are not supported.
                return Err(ScramError("token authentication is not supported"));
            }
        }
        let user = user.ok_or(ScramError("client-first has no user"))?;
        let client_nonce = nonce.ok_or(ScramError("client-first has no nonce"))?;
        if client_nonce.is_empty()
            || !client_nonce
                .chars()
                .all(|c| c.is_ascii_graphic() && c != ',')
        {
            return Err(ScramError("client nonce is not printable"));
        }
        // As Kafka: an authorization id other than the user is refused.
        if !authzid.is_empty() {
            let a = authzid
                .strip_prefix("a=")
                .ok_or(ScramError("bad authorization id"))?;
            if decode_saslname(a)? != user {
                return Err(ScramError("authorization id differs from the user"));
            }
        }
        Ok(ClientFirst {
            user,
            gs2_header: format!("{cbind},{authzid},"),
            client_nonce,
            bare: bare.to_string(),
        })
    }
}

/// `=2C` is ',' and `=3D` is '=' in a SCRAM user name; any other '=' is an error.
fn decode_saslname(v: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError("bad user name encoding")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn random_nonce() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..32)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

impl ScramServer {
    pub fn new(mech: ScramMechanism) -> ScramServer {
        ScramServer::Start { mech }
    }

    /// Answers client-first with server-first. `credential` is the user's, or `None`
    /// with `decoy_salt` standing in for an unknown user's salt.
    pub fn server_first(
        &mut self,
        first: ClientFirst,
        credential: Option<ScramCredential>,
        decoy_salt: Vec<u8>,
    ) -> Result<Vec<u8>, ScramError> {
        let ScramServer::Start { mech } = *self else {
            return Err(ScramError("unexpected client-first"));
        };
        let nonce = format!("{}{}", first.client_nonce, random_nonce());
        let (salt, iterations) = match &credential {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (decoy_salt, DEFAULT_ITERATIONS),
        };
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(salt));
        let out = server_first.clone().into_bytes();
        *self = ScramServer::Challenged {
            mech,
            user: first.user,
            credential,
            gs2_header: first.gs2_header,
            nonce,
            client_first_bare: first.bare,
            server_first,
        };
        Ok(out)
    }

    /// Checks client-final; on success the authenticated user and server-final.
    pub fn client_final(&mut self, raw: &[u8]) -> Result<(String, Vec<u8>), ScramError> {
        let ScramServer::Challenged {
            mech,
            user,
            credential,
            gs2_header,
            nonce,
            client_first_bare,
            server_first,
        } = std::mem::replace(self, ScramServer::Done)
        else {
            return Err(ScramError("unexpected client-final"));
        };
        let text = std::str::from_utf8(raw).map_err(|_| ScramError("client-final is not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError("client-final has no proof"))?;
        let mut channel = None;
        let mut final_nonce = None;
        for attr in without_proof.split(',') {
            if let Some(v) = attr.strip_prefix("c=") {
                channel = Some(v);
            } else if let Some(v) = attr.strip_prefix("r=") {
                final_nonce = Some(v);
            }
        }
        if channel != Some(B64.encode(gs2_header.as_bytes()).as_str()) {
            return Err(ScramError("channel binding differs from client-first"));
        }
        if final_nonce != Some(nonce.as_str()) {
            return Err(ScramError("nonce differs from server-first"));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError("proof is not base64"))?;
        let credential = credential.ok_or(ScramError("invalid credentials"))?;
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = mech.hmac(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(ScramError("invalid credentials"));
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        if !bool::from(mech.hash(&client_key).ct_eq(&credential.stored_key)) {
            return Err(ScramError("invalid credentials"));
        }
        let server_signature = mech.hmac(&credential.server_key, auth_message.as_bytes());
        Ok((
            user,
            format!("v={}", B64.encode(server_signature)).into_bytes(),
        ))
    }

    /// A salt for an unknown user, the same on every attempt: `HMAC(secret, user)`.
    pub fn decoy_salt(secret: &[u8], user: &str) -> Vec<u8> {
        ScramMechanism::Sha256.hmac(secret, user.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SCRAM client, as RFC 5802 describes it.
    fn client_proof(
        mech: ScramMechanism,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, Vec<u8>) {
        let mut salt = None;
        let mut iterations = 0;
        let mut nonce = "";
        for attr in server_first.split(',') {
            if let Some(v) = attr.strip_prefix("s=") {
                salt = Some(B64.decode(v).unwrap());
            } else if let Some(v) = attr.strip_prefix("i=") {
                iterations = v.parse().unwrap();
            } else if let Some(v) = attr.strip_prefix("r=") {
                nonce = v;
            }
        }
        let salted = mech.salted_password(password.as_bytes(), &salt.unwrap(), iterations);
        let client_key = mech.hmac(&salted, b"Client Key");
        let stored_key = mech.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let sig = mech.hmac(&stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let server_key = mech.hmac(&salted, b"Server Key");
        let expected = format!("v={}", B64.encode(mech.hmac(&server_key, auth.as_bytes())));
        (
            format!("{without_proof},p={}", B64.encode(proof)),
            expected.into_bytes(),
        )
    }

    fn exchange(mech: ScramMechanism, stored: &ScramCredential, password: &str) -> bool {
        let mut server = ScramServer::new(mech);
        let bare = "n=alice,r=fyko+d2lbbFgONRv9qkxdawL";
        let first = ClientFirst::parse(format!("n,,{bare}").as_bytes()).unwrap();
        assert_eq!(first.user, "alice");
        let sf = server
            .server_first(first, Some(stored.clone()), Vec::new())
            .unwrap();
        let sf = String::from_utf8(sf).unwrap();
        assert!(sf.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"));
        let (cf, expected) = client_proof(mech, password, bare, &sf);
        match server.client_final(cf.as_bytes()) {
            Ok((user, server_final)) => {
                assert_eq!(user, "alice");
                assert_eq!(server_final, expected);
                true
            }
            Err(_) => false,
        }
    }

    #[test]
    fn both_mechanisms_accept_the_right_password_only() {
        for mech in ScramMechanism::ALL {
            let stored = ScramCredential::new(mech, "s3cret", MIN_ITERATIONS);
            assert!(exchange(mech, &stored, "s3cret"), "{mech:?}");
            assert!(!exchange(mech, &stored, "wrong"), "{mech:?}");
            assert!(stored.verify_password(mech, "s3cret"));
            assert!(!stored.verify_password(mech, "s3cret "));
        }
    }

    /// RFC 7677's SCRAM-SHA-256 example: the salted password of "pencil".
    #[test]
    fn rfc7677_keys() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = ScramMechanism::Sha256.salted_password(b"pencil", &salt, 4096);
        let c = ScramCredential::from_salted(ScramMechanism::Sha256, &salted, salt, 4096);
        // server-final of the RFC's exchange, recomputed from the stored keys.
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let v = ScramMechanism::Sha256.hmac(&c.server_key, auth.as_bytes());
        assert_eq!(
            B64.encode(v),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn odd_client_first_messages_are_refused() {
        for bad in [
            &b"p=tls-unique,,n=a,r=x"[..],
            b"n,,n=a",
            b"n,,r=x",
            b"n,a=bob,n=alice,r=x",
            b"n,,n=a=xx,r=x",
            b"n,,n=a,r=x,tokenauth=true",
            b"\xff",
        ] {
            assert!(
                ClientFirst::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let ok = ClientFirst::parse(b"n,a=a=2Cb,n=a=2Cb,r=x").unwrap();
        assert_eq!(ok.user, "a,b");
    }
}
