//! A small client of the admin service's REST API: what a consumer needs and nothing more.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use streamhub_model::Secret;
use streamhub_model::api::{
    ActiveTopic, ErrorBody, Login, LoginResponse, Me, Message, Subscription, SubscriptionRequest,
};
use url::Url;

/// What can go wrong talking to the admin service. Each variant displays as one line a
/// person can act on.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot reach the admin service at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The service answered with an error body; `message` is its reason, verbatim.
    #[error("{message}")]
    Api {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("unexpected answer from the admin service at {url}: {reason}")]
    Protocol { url: String, reason: String },
    #[error("not signed in to the admin service")]
    NotSignedIn,
}

impl AdminError {
    /// True when the service could not be reached at all, so retrying later may help.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, AdminError::Unreachable { .. })
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            AdminError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A signed-in (or not yet signed-in) client of one admin service.
#[derive(Clone, Debug)]
pub struct AdminClient {
    http: reqwest::Client,
    base: Url,
    token: Option<Secret>,
}

impl AdminClient {
    pub fn new(base: Url) -> Result<Self, AdminError> {
        Self::with_ca_cert(base, None)
    }

    /// [`Self::new`], also trusting the CA certificates (PEM) in `ca_cert` for an
    /// `https://` admin URL whose certificate the system's trust store does not know.
    pub fn with_ca_cert(base: Url, ca_cert: Option<&std::path::Path>) -> Result<Self, AdminError> {
        let mut http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15));
        if let Some(path) = ca_cert {
            let unusable = |reason: String| AdminError::Protocol {
                url: base.to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| {
                unusable(format!("cannot read the CA file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| unusable(format!("no PEM certificate in {}: {e}", path.display())))?;
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http.build().map_err(|e| AdminError::Protocol {
            url: base.to_string(),
            reason: format!("cannot build an HTTP client: {e}"),
        })?;
        Ok(Self {
            http,
            base,
            token: None,
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Uses a bearer token obtained elsewhere (`STREAMHUB_TOKEN`).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Secret::new(token));
        self
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_ref().map(Secret::expose)
    }

    /// `POST /api/auth/login`; keeps the token for the following calls.
    pub async fn login(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<LoginResponse, AdminError> {
        let body = Login {
            username: username.to_owned(),
            password: password.to_owned(),
        };
        let response: LoginResponse = self
            .send(Method::POST, "/api/auth/login", Some(&body), false)
            .await?;
        self.token = Some(Secret::new(response.token.clone()));
        Ok(response)
    }

    /// `GET /api/auth/me`: who the token belongs to.
    pub async fn me(&self) -> Result<Me, AdminError> {
        self.send::<(), _>(Method::GET, "/api/auth/me", None, true)
            .await
    }

    /// `GET /api/topics/active`.
    pub async fn active_topics(&self) -> Result<Vec<ActiveTopic>, AdminError> {
        self.send::<(), _>(Method::GET, "/api/topics/active", None, true)
            .await
    }

    /// `GET /api/subscriptions?user_id=<user>`.
    pub async fn subscriptions(&self, user: &str) -> Result<Vec<Subscription>, AdminError> {
        let mut path = String::from("/api/subscriptions?");
        path.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .append_pair("user_id", user)
                .finish(),
        );
        let all: Vec<Subscription> = self.send::<(), _>(Method::GET, &path, None, true).await?;
        // Only the caller's own rows matter, whatever the service chooses to return.
        Ok(all.into_iter().filter(|s| s.user_id == user).collect())
    }

    /// `POST /api/subscriptions` for the signed-in user.
    pub async fn subscribe(&self, topic: &str) -> Result<Message, AdminError> {
        let body = SubscriptionRequest {
            user_id: None,
            topic_name: topic.to_owned(),
        };
        self.send(Method::POST, "/api/subscriptions", Some(&body), true)
            .await
    }

    /// `DELETE /api/subscriptions` for the signed-in user.
    pub async fn unsubscribe(&self, topic: &str) -> Result<Message, AdminError> {
        let body = SubscriptionRequest {
            user_id: None,
            topic_name: topic.to_owned(),
        };
        self.send(Method::DELETE, "/api/subscriptions", Some(&body), true)
            .await
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&B>,
        authenticated: bool,
    ) -> Result<T, AdminError> {
        let url = self
            .base
            .join(path_and_query)
            .map_err(|e| AdminError::Protocol {
                url: self.base.to_string(),
                reason: format!("bad path {path_and_query}: {e}"),
            })?;
        let mut request = self.http.request(method, url.clone());
        if authenticated {
            let token = self.token().ok_or(AdminError::NotSignedIn)?;
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| AdminError::Unreachable {
            url: self.base.to_string(),
            reason: describe_transport_error(&e),
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| AdminError::Unreachable {
                url: self.base.to_string(),
                reason: describe_transport_error(&e),
            })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| AdminError::Protocol {
                url: url.to_string(),
                reason: format!("{status} with a body that does not parse: {e}"),
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(AdminError::Api {
                status,
                code: body.code,
                message: body.error,
            }),
            Err(_) => Err(AdminError::Api {
                status,
                code: status.as_u16().to_string(),
                message: format!(
                    "the admin service answered {status} to {} {}",
                    url.path(),
                    String::from_utf8_lossy(&bytes).trim()
                ),
            }),
        }
    }
}

/// reqwest's own message hides the cause ("error sending request"); the innermost source
/// ("Connection refused") is what a person needs.
fn describe_transport_error(e: &reqwest::Error) -> String {
    let mut reason = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        e.to_string()
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut innermost = None;
    while let Some(s) = source {
        innermost = Some(s.to_string());
        source = s.source();
    }
    if let Some(inner) = innermost {
        reason.push_str(": ");
        reason.push_str(&inner);
    }
    reason
}
