//! Who is calling, in one place: the [`Principal`] extractor, role checks, CSRF,
//! password hashing, tokens, and the `/api/auth/*` endpoints.
//!
//! A request proves who it is with, in this order: `Authorization: Bearer <token>`,
//! `X-Producer-Key: <PRODUCER_SECRET>` (the seed's producer header), or the session
//! cookie. Cookie-authenticated requests that change something must also send
//! `X-CSRF-Token` equal to the `streamhub_csrf` cookie, which is derived from the session
//! token (a cross-site page can make the browser send the cookie but cannot read it to
//! copy it into a header), and an `Origin`, when present, naming this service.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{AppendHeaders, IntoResponse};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use streamhub_model::Role;
use streamhub_model::api::{ErrorBody, Login, LoginResponse, Me, Message};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, Json};
use crate::log_value::{Untrusted, refused_username};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "streamhub_session";
pub const CSRF_COOKIE: &str = "streamhub_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const PRODUCER_KEY_HEADER: &str = "x-producer-key";
/// The principal name of requests authenticated by the producer key.
pub const PRODUCER_PRINCIPAL: &str = "producer";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    Bearer,
    SessionCookie,
    ProducerKey,
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Principal {
    pub username: String,
    pub role: Role,
    pub credential: Credential,
    /// SHA-256 of the bearer token or session cookie, for logout.
    token_hash: Option<String>,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        let wanted: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "this needs the {} role; '{}' is {}",
            wanted.join(" or "),
            self.username,
            self.role
        )))
    }

    /// SHA-256 of the bearer token or session cookie; `None` for the producer key.
    pub(crate) fn token_hash(&self) -> Option<&str> {
        self.token_hash.as_deref()
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        self.require(&[Role::Admin])
    }

    /// Which user a subscription request acts for: the caller by default; another user
    /// only for admins. Producers do not subscribe.
    pub fn acting_for(&self, user_id: Option<String>) -> Result<String, ApiError> {
        self.require(&[Role::Admin, Role::User])?;
        let user_id = user_id.unwrap_or_else(|| self.username.clone());
        if user_id != self.username && !self.is_admin() {
            return Err(ApiError::forbidden(format!(
                "'{}' may manage only their own subscriptions, not those of '{user_id}'",
                self.username
            )));
        }
        Ok(user_id)
    }
}

/// SHA-256, hex: how tokens are stored and secrets compared.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Equal in constant time; hashing first hides the length too.
pub(crate) fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}

pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A random password for the first admin: 20 characters from 62 (about 119 bits).
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789abcdef";
    let mut buf = [0u8; 20];
    OsRng.fill_bytes(&mut buf);
    buf.iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl AppState {
    async fn principal_for_token(
        &self,
        token: &str,
        credential: Credential,
    ) -> Result<Principal, ApiError> {
        let token_hash = sha256_hex(token.as_bytes());
        let user = self
            .store()
            .token_user(&token_hash, Utc::now())
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized("the token is unknown or expired; sign in again")
            })?;
        Ok(Principal {
            username: user.username,
            role: user.role,
            credential,
            token_hash: Some(token_hash),
        })
    }

    /// Hashes a password with Argon2id off the async threads.
    pub(crate) async fn hash_password(&self, password: String) -> Result<String, ApiError> {
        self.hashing(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await?
        .map_err(ApiError::internal)
    }

    async fn verify_password(&self, password: String, hash: String) -> Result<bool, ApiError> {
        self.hashing(move || {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return false;
            };
            // The hash names its own parameters: older hashes verify as they were made.
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .await
    }

    /// Runs Argon2 work off the async threads, a few at a time: each takes about 19 MiB.
    async fn hashing<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, ApiError> {
        let _slot = self
            .inner
            .hashing
            .acquire()
            .await
            .map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(ApiError::internal)
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    let (scheme, token) = v.split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
                })
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    ApiError::unauthorized("the Authorization header must be 'Bearer <token>'")
                })?;
            return state.principal_for_token(token, Credential::Bearer).await;
        }
        if let Some(key) = parts.headers.get(PRODUCER_KEY_HEADER) {
            let Some(secret) = &state.inner.producer_secret else {
                return Err(ApiError::unauthorized(
                    "X-Producer-Key is not accepted: the admin service was started without PRODUCER_SECRET",
                ));
            };
            if !secrets_equal(key.as_bytes(), secret.expose().as_bytes()) {
                return Err(ApiError::unauthorized("wrong X-Producer-Key"));
            }
            return Ok(Principal {
                username: PRODUCER_PRINCIPAL.into(),
                role: Role::Producer,
                credential: Credential::ProducerKey,
                token_hash: None,
            });
        }
        if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
            let principal = state
                .principal_for_token(token, Credential::SessionCookie)
                .await?;
            if !is_safe_method(&parts.method) {
                if !same_origin(&parts.headers) {
                    return Err(ApiError::forbidden(
                        "cross-origin request refused: Origin is not this service's",
                    ));
                }
                let expected = csrf_token(token);
                let sent = parts.headers.get(CSRF_HEADER).map(HeaderValue::as_bytes);
                if !sent.is_some_and(|s| secrets_equal(expected.as_bytes(), s)) {
                    return Err(ApiError::forbidden(
                        "missing or wrong X-CSRF-Token: send the value of the streamhub_csrf cookie",
                    ));
                }
            }
            return Ok(principal);
        }
        Err(ApiError::unauthorized(
            "sign in first: POST /api/auth/login, then send 'Authorization: Bearer <token>'",
        ))
    }
}

/// The CSRF token of a session: derived from the session token, so that it holds for
/// that session only (a token planted from elsewhere fails) and every instance sharing
/// the database computes the same. The session token is secret and HttpOnly, so nobody
/// without it can derive its CSRF token.
pub(crate) fn csrf_token(session_token: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"streamhub csrf token\0");
    hash.update(session_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&hash.finalize()[..16])
}

/// Whether a cookie-authenticated write comes from the service's own pages: an `Origin`,
/// when the browser sends one, must name the host the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true; // Not sent by every browser on same-origin requests.
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|o| {
        o.strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"))
    });
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// Argon2id with OWASP's m = 7 MiB, t = 5, p = 1: rated as strong as its m = 19 MiB, t = 2
/// (the crate's default) for about the same time, with a third of the memory per hash,
/// which is what sign-ins in parallel add to the service's resident memory.
fn argon2() -> Argon2<'static> {
    let params = Params::new(7 * 1024, 5, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// glibc raises its mmap threshold to the size of the largest block freed, so after the
/// first hash each 7 MiB block would come from the heap and stay resident once freed.
/// A fixed threshold keeps large blocks mapped on their own and unmapped when freed.
pub(crate) fn give_large_blocks_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; any value is valid for it.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// A valid Argon2 hash of nothing useful: verifying unknown users against it makes
/// their sign-in as slow as a known user's.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(b"streamhub-no-such-user", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
});

fn session_cookies(
    state: &AppState,
    token: &str,
    csrf: &str,
    max_age: u64,
) -> [(header::HeaderName, String); 2] {
    let secure = if state.inner.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    [
        (
            header::SET_COOKIE,
            format!(
                "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
            ),
        ),
        (
            header::SET_COOKIE,
            format!("{CSRF_COOKIE}={csrf}; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"),
        ),
    ]
}

/// `POST /api/auth/login`.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "Signed in: the token, and the session and CSRF cookies", body = LoginResponse),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 429, description = "Too many sign-in attempts for this user or address; retry after Retry-After seconds", body = ErrorBody),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    Json(body): Json<Login>,
) -> Result<impl IntoResponse, ApiError> {
    let credentials = state.store().credentials(&body.username).await?;
    let hash = match &credentials {
        Some(c) => c.password_hash.clone(),
        None => {
            // Computed once; off the async threads because it is a full Argon2 hash.
            tokio::task::spawn_blocking(|| DUMMY_HASH.clone())
                .await
                .map_err(ApiError::internal)?
        }
    };
    let verified = state.verify_password(body.password, hash).await?;
    let account_exists = credentials.is_some();
    let Some(credentials) = credentials.filter(|_| verified) else {
        let username = refused_username(&body.username, account_exists);
        tracing::info!(%username, "sign-in refused");
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    let now = Utc::now();
    // Expired tokens are removed at sign-in time, which bounds the table.
    state.store().purge_expired_tokens(now).await?;
    let token = random_token(32);
    let ttl = state.inner.token_ttl;
    let expires_at = now + chrono::Duration::from_std(ttl).map_err(ApiError::internal)?;
    state
        .store()
        .create_token(
            &credentials.user.username,
            &sha256_hex(token.as_bytes()),
            expires_at,
        )
        .await?;
    tracing::info!(
        username = %Untrusted(&credentials.user.username),
        role = %credentials.user.role,
        "signed in"
    );
    let cookies = session_cookies(&state, &token, &csrf_token(&token), ttl.as_secs());
    Ok((
        // The answer carries the token: no cache may keep it.
        [(header::CACHE_CONTROL, "no-store")],
        AppendHeaders(cookies),
        axum::Json(LoginResponse {
            token,
            role: credentials.user.role,
            expires_at,
        }),
    ))
}

/// `POST /api/auth/logout`: ends the token or session used, and clears the cookies.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("producer_key" = [])),
    responses((status = 200, description = "The token or session used is ended and the cookies cleared", body = Message)),
)]
pub async fn logout(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(hash) = &principal.token_hash {
        state.store().delete_token(hash).await?;
    }
    Ok((
        AppendHeaders(session_cookies(&state, "", "", 0)),
        axum::Json(Message {
            message: "Signed out".into(),
            topic_id: None,
        }),
    ))
}

/// `GET /api/auth/me`.
#[utoipa::path(
    get,
    path = "/auth/me",
    tag = "auth",
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses((status = 200, description = "The caller", body = Me)),
)]
pub async fn me(principal: Principal) -> axum::Json<Me> {
    axum::Json(Me {
        username: principal.username,
        role: principal.role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_hashes_take_7_mib_and_hashes_made_with_the_default_still_verify() {
        let salt = SaltString::generate(&mut OsRng);
        let new = argon2().hash_password(b"pw", &salt).unwrap().to_string();
        assert!(new.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{new}");
        let old = Argon2::default()
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        for hash in [&new, &old] {
            let parsed = PasswordHash::new(hash).unwrap();
            assert!(argon2().verify_password(b"pw", &parsed).is_ok(), "{hash}");
            assert!(argon2().verify_password(b"pv", &parsed).is_err(), "{hash}");
        }
    }
}
