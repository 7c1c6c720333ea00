//! One connection's authentication, as Kafka's `SaslServerAuthenticator` runs it:
//! ApiVersions and SaslHandshake, then the mechanism's tokens in SaslAuthenticate requests
//! (handshake v1) or as bare length-prefixed frames (handshake v0). Until it succeeds no
//! other request is answered; a failure is answered, then the connection closes.

use std::net::SocketAddr;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::acl::Caller;
use super::scram::{ClientFirst, ScramServer};
use super::{ANONYMOUS, Authorizer, SaslMechanism, user_principal};

enum Phase {
    /// The broker does not use SASL.
    Open,
    /// Waiting for SaslHandshake.
    Handshake,
    /// Mechanism chosen; exchanging its tokens.
    Authenticate {
        mech: SaslMechanism,
        /// Handshake v0: tokens come as bare frames, not in SaslAuthenticate.
        raw: bool,
        scram: Option<Box<ScramServer>>,
    },
    Done,
}

/// The state of one connection: who it is and how far its authentication got.
pub struct Session {
    pub peer: SocketAddr,
    pub caller: Caller,
    phase: Phase,
    /// Set when the answer just made must be the connection's last.
    pub close_after: bool,
}

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

impl Session {
    pub fn new(peer: SocketAddr, sasl: bool) -> Session {
        Session {
            peer,
            caller: Caller {
                principal: ANONYMOUS.into(),
                // An IPv4 client on a dual-stack listener is its IPv4 address, as in Java.
                host: peer.ip().to_canonical().to_string(),
            },
            phase: if sasl { Phase::Handshake } else { Phase::Open },
            close_after: false,
        }
    }

    /// Whether the next frame is a bare SASL token (after a v0 handshake).
    pub fn expects_raw_token(&self) -> bool {
        matches!(self.phase, Phase::Authenticate { raw: true, .. })
    }

    /// Whether `key` may come now; anything else closes the connection, as Kafka does.
    pub fn allows(&self, key: ApiKey) -> bool {
        match self.phase {
            Phase::Open | Phase::Done => true,
            Phase::Handshake => matches!(key, ApiKey::ApiVersions | ApiKey::SaslHandshake),
            Phase::Authenticate { .. } => key == ApiKey::SaslAuthenticate,
        }
    }

    pub fn handshake(
        &mut self,
        auth: &Authorizer,
        req: &SaslHandshakeRequest,
        version: i16,
    ) -> SaslHandshakeResponse {
        let enabled = auth.mechanisms.iter().map(|m| s(m.name())).collect();
        let resp = SaslHandshakeResponse::default().with_mechanisms(enabled);
        if !matches!(self.phase, Phase::Handshake) {
            // After authentication: KafkaApis' answer (re-authentication is not offered).
            return resp.with_error_code(ResponseError::IllegalSaslState.code());
        }
        match SaslMechanism::from_name(req.mechanism.as_str())
            .filter(|m| auth.mechanisms.contains(m))
        {
            Some(mech) => {
                self.phase = Phase::Authenticate {
                    mech,
                    raw: version == 0,
                    scram: mech.scram().map(|m| Box::new(ScramServer::new(m))),
                };
                resp
            }
            None => {
                tracing::info!(peer = %self.peer, mechanism = %req.mechanism.as_str(), "unsupported SASL mechanism requested");
                self.close_after = true;
                resp.with_error_code(ResponseError::UnsupportedSaslMechanism.code())
            }
        }
    }

    /// A SaslAuthenticate request.
    pub async fn authenticate(
        &mut self,
        auth: &Arc<Authorizer>,
        req: SaslAuthenticateRequest,
    ) -> SaslAuthenticateResponse {
        if matches!(self.phase, Phase::Done) {
            return SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::IllegalSaslState.code())
                .with_error_message(Some(s(
                    "SaslAuthenticate request received after successful authentication",
                )));
        }
        match self.token(auth, &req.auth_bytes).await {
            Ok(bytes) => SaslAuthenticateResponse::default().with_auth_bytes(bytes.into()),
            Err(message) => {
                self.close_after = true;
                SaslAuthenticateResponse::default()
                    .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                    .with_error_message(Some(s(message)))
            }
        }
    }

    /// A bare token (handshake v0); `None` on failure: the connection closes unanswered,
    /// as there is no way to say why in this framing.
    pub async fn raw_token(&mut self, auth: &Arc<Authorizer>, token: &[u8]) -> Option<Vec<u8>> {
        self.token(auth, token).await.ok()
    }

    /// Runs one token through the mechanism: the answer token, or the message for the
    /// client, which never says whether the user exists.
    async fn token(&mut self, auth: &Arc<Authorizer>, token: &[u8]) -> Result<Vec<u8>, String> {
        let Phase::Authenticate { mech, scram, .. } = &mut self.phase else {
            return Err("SaslAuthenticate request before SaslHandshake".into());
        };
        let mech = *mech;
        let failed = |peer: SocketAddr, user: &str, why: &str| {
            tracing::info!(%peer, mechanism = mech.name(), user, reason = why, "SASL authentication failed");
            format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                mech.name()
            )
        };
        let peer = self.peer;
        let Some(server) = scram else {
            let (user, password) = match parse_plain(token) {
                Ok(v) => v,
                Err(why) => return Err(failed(peer, "", why)),
            };
            let check = {
                let auth = auth.clone();
                let user = user.clone();
                tokio::task::spawn_blocking(move || auth.verify_plain(&user, &password))
            };
            if check.await.unwrap_or(false) {
                self.done(&user);
                return Ok(Vec::new());
            }
            return Err(failed(peer, &user, "invalid credentials"));
        };
        match &mut **server {
            ScramServer::Start { .. } => {
                let first = ClientFirst::parse(token).map_err(|e| failed(peer, "", e.0))?;
                let user = first.user.clone();
                let mech = mech.scram().expect("a SCRAM mechanism");
                let credential = auth.scram_credential(&user, mech);
                let decoy = auth.decoy_salt(&user);
                server
                    .server_first(first, credential, decoy)
                    .map_err(|e| failed(peer, &user, e.0))
            }
            ScramServer::Challenged { user, .. } => {
                let user = user.clone();
                match server.client_final(token) {
                    Ok((user, server_final)) => {
                        self.done(&user);
                        Ok(server_final)
                    }
                    Err(e) => Err(failed(peer, &user, e.0)),
                }
            }
            ScramServer::Done => Err(failed(peer, "", "exchange already over")),
        }
    }

    fn done(&mut self, user: &str) {
        tracing::debug!(peer = %self.peer, user, "SASL authentication succeeded");
        self.caller.principal = user_principal(user);
        self.phase = Phase::Done;
    }
}

/// RFC 4616: `[authzid] NUL authcid NUL passwd`; an authorization id other than the user
/// is refused, as Kafka's `PlainSaslServer` does.
fn parse_plain(token: &[u8]) -> Result<(String, String), &'static str> {
    let text = std::str::from_utf8(token).map_err(|_| "PLAIN token is not UTF-8")?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("PLAIN token is not authzid NUL user NUL password");
    };
    if user.is_empty() || password.is_empty() {
        return Err("PLAIN user or password is empty");
    }
    if !authzid.is_empty() && authzid != user {
        return Err("authorization id differs from the user");
    }
    Ok((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tokens() {
        assert_eq!(
            parse_plain(b"\0alice\0pw"),
            Ok(("alice".into(), "pw".into()))
        );
        assert!(parse_plain(b"alice\0alice\0pw").is_ok());
        for bad in [
            &b"bob\0alice\0pw"[..],
            b"\0alice",
            b"\0\0pw",
            b"\0a\0",
            b"\0a\0b\0c",
        ] {
            assert!(parse_plain(bad).is_err());
        }
    }
}
