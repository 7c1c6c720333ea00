//! The one client of the admin service's REST API, used by the producer, the consumer and
//! the test kit: typed calls on the API's own types (`streamhub_model::api`), a bearer
//! token or the producer key, one [`Error`], backoff with jitter ([`retry`]) and the
//! server-sent event stream ([`ServerEvent`]).
//!
//! The base URL may carry a path prefix (a reverse proxy serving the API under
//! `https://host/streamhub/`): every endpoint is joined below it ([`BaseUrl`]).

mod base_url;
mod error;
mod events;
pub mod retry;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use futures::Stream;
use reqwest::header::{ACCEPT, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use streamhub_model::api::{
    ActivateByName, ActiveTopic, AuditEntry, Login, LoginResponse, MAX_PAGE, Me, Message,
    ProvisioningFailure, Subscription, SubscriptionRequest, Topic,
};
use streamhub_model::generation::Generation;
use streamhub_model::{Action, Secret};

pub use base_url::BaseUrl;
pub use error::Error;
pub use events::ServerEvent;
pub use reqwest::{Method, StatusCode, Url};
pub use retry::{Backoff, retry};

/// The header that authenticates the producer.
pub const PRODUCER_KEY_HEADER: &str = "x-producer-key";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// For every call but the event stream, which stays open.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Who the calls are made as.
#[derive(Clone, Debug)]
pub enum Auth {
    /// Nobody yet: only sign-in works.
    None,
    /// A user's token from `POST /api/auth/login` (or `STREAMHUB_TOKEN`).
    Bearer(Secret),
    /// The producer's shared key, sent as `X-Producer-Key`.
    ProducerKey(Secret),
}

/// What `activate_by_name` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// The topic is active (now, or already was).
    Active,
    /// The topic's state forbids activation (deactivated by an admin, deleted ...).
    Refused(String),
    /// No such topic.
    Unknown,
}

/// A client of one admin service. Cloning is cheap and shares the connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: BaseUrl,
    auth: Auth,
}

impl Client {
    /// A client that is not signed in yet.
    pub fn new(base: Url) -> Result<Self, Error> {
        Self::with_ca_cert(base, None)
    }

    /// [`Self::new`], also trusting the CA certificates (PEM) in `ca_cert` for an
    /// `https://` admin URL whose certificate the system's trust store does not know.
    pub fn with_ca_cert(base: Url, ca_cert: Option<&Path>) -> Result<Self, Error> {
        let base = BaseUrl::new(base)?;
        let mut http = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT);
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                Error::Config(format!("cannot read the CA file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::Config(format!("no PEM certificate in {}: {e}", path.display()))
            })?;
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http
            .build()
            .map_err(|e| Error::Config(format!("cannot build an HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            auth: Auth::None,
        })
    }

    /// Calls as the producer, with its key.
    pub fn with_producer_key(mut self, key: &Secret) -> Result<Self, Error> {
        // Checked now: a key a header cannot carry would otherwise fail every call.
        key_header(key)?;
        self.auth = Auth::ProducerKey(key.clone());
        Ok(self)
    }

    /// Calls with a bearer token obtained elsewhere (`STREAMHUB_TOKEN`).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Bearer(Secret::new(token));
        self
    }

    pub fn base_url(&self) -> &Url {
        self.base.as_url()
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The bearer token, once signed in.
    pub fn token(&self) -> Option<&str> {
        match &self.auth {
            Auth::Bearer(token) => Some(token.expose()),
            _ => None,
        }
    }

    // ----- users -----

    /// `POST /api/auth/login`; the token is used for the following calls.
    pub async fn login(&mut self, username: &str, password: &str) -> Result<LoginResponse, Error> {
        let body = Login {
            username: username.to_owned(),
            password: password.to_owned(),
        };
        let response: LoginResponse = self
            .send(Method::POST, "api/auth/login", Some(&body), false)
            .await?;
        self.auth = Auth::Bearer(Secret::new(response.token.clone()));
        Ok(response)
    }

    /// `GET /api/auth/me`: who the token belongs to.
    pub async fn me(&self) -> Result<Me, Error> {
        self.call::<(), _>(Method::GET, "api/auth/me", None).await
    }

    /// `GET /api/topics/active`.
    pub async fn active_topics(&self) -> Result<Vec<ActiveTopic>, Error> {
        self.call::<(), _>(Method::GET, "api/topics/active", None)
            .await
    }

    /// `GET /api/subscriptions?user_id=<user>`: only `user`'s rows, whatever the service
    /// chooses to return.
    pub async fn subscriptions(&self, user: &str) -> Result<Vec<Subscription>, Error> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("user_id", user)
            .finish();
        let all: Vec<Subscription> = self
            .call::<(), _>(Method::GET, &format!("api/subscriptions?{query}"), None)
            .await?;
        Ok(all.into_iter().filter(|s| s.user_id == user).collect())
    }

    /// `POST /api/subscriptions` for the signed-in user. Repeating it is harmless.
    pub async fn subscribe(&self, topic: &str) -> Result<Message, Error> {
        let body = SubscriptionRequest {
            user_id: None,
            topic_name: topic.to_owned(),
        };
        self.call(Method::POST, "api/subscriptions", Some(&body))
            .await
    }

    /// `DELETE /api/subscriptions` for the signed-in user.
    pub async fn unsubscribe(&self, topic: &str) -> Result<Message, Error> {
        let body = SubscriptionRequest {
            user_id: None,
            topic_name: topic.to_owned(),
        };
        self.call(Method::DELETE, "api/subscriptions", Some(&body))
            .await
    }

    // ----- the producer -----

    /// Every topic but deleted ones (`GET /api/topics`, page after page: one answers at
    /// most `MAX_PAGE`). A topic created meanwhile shifts the pages (newest first), so a
    /// topic may come twice; it is kept once.
    pub async fn topics(&self) -> Result<Vec<Topic>, Error> {
        let mut topics: Vec<Topic> = Vec::new();
        let mut seen = HashSet::new();
        let mut offset = 0;
        loop {
            let page: Vec<Topic> = self
                .call::<(), _>(
                    Method::GET,
                    &format!("api/topics?limit={MAX_PAGE}&offset={offset}"),
                    None,
                )
                .await?;
            let last = (page.len() as i64) < MAX_PAGE;
            offset += page.len() as i64;
            topics.extend(page.into_iter().filter(|t| seen.insert(t.topic_id)));
            if last {
                return Ok(topics);
            }
        }
    }

    /// `POST /api/topics/activate_by_name`, with how the topic will be generated for the
    /// audit log. Repeating it is harmless.
    pub async fn activate(
        &self,
        topic_name: &str,
        generation: Option<&Generation>,
    ) -> Result<Activation, Error> {
        let body = ActivateByName {
            topic_name: topic_name.to_owned(),
            generation: generation.cloned(),
        };
        match self
            .call::<_, serde_json::Value>(Method::POST, "api/topics/activate_by_name", Some(&body))
            .await
        {
            Ok(_) => Ok(Activation::Active),
            Err(Error::Api {
                status: StatusCode::CONFLICT,
                message,
                ..
            }) => Ok(Activation::Refused(message)),
            Err(Error::Api {
                status: StatusCode::NOT_FOUND,
                ..
            }) => Ok(Activation::Unknown),
            Err(e) => Err(e),
        }
    }

    /// The generation record of the topic named `topic_name`'s latest activation, read from
    /// the audit log (admins only); `None` when no activation recorded one.
    pub async fn generation_of(&self, topic_name: &str) -> Result<Option<Generation>, Error> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("topic", topic_name)
            .append_pair("action", Action::Activate.as_str())
            .append_pair("limit", &MAX_PAGE.to_string())
            .finish();
        let entries: Vec<AuditEntry> = self
            .call::<(), _>(Method::GET, &format!("api/audit?{query}"), None)
            .await?;
        // Newest first.
        Ok(entries
            .iter()
            .find_map(|e| e.detail.as_deref().and_then(Generation::from_detail)))
    }

    /// `POST /api/topics/provisioning_failure`: records on the approved topic why it cannot
    /// be created in Kafka (cut to the length the API takes). Repeating it is harmless.
    pub async fn provisioning_failure(&self, topic_name: &str, error: &str) -> Result<(), Error> {
        let body = ProvisioningFailure {
            topic_name: topic_name.to_owned(),
            error: error
                .chars()
                .take(ProvisioningFailure::MAX_ERROR_CHARS)
                .collect(),
        };
        self.call::<_, serde_json::Value>(
            Method::POST,
            "api/topics/provisioning_failure",
            Some(&body),
        )
        .await
        .map(|_| ())
    }

    /// Opens `GET /api/events`. The stream yields events until the connection ends, and
    /// [`ServerEvent::KeepAlive`] for the server's comments.
    pub async fn events(
        &self,
    ) -> Result<impl Stream<Item = Result<ServerEvent, Error>> + Send + use<>, Error> {
        let url = self.base.join("api/events")?;
        let request = self
            .authorize(self.http.get(url.clone()), true)?
            .header(ACCEPT, "text/event-stream");
        let response = request
            .send()
            .await
            .map_err(|e| Error::unreachable(&self.base, &e))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.bytes().await.unwrap_or_default();
            return Err(Error::from_answer(status, url.path(), &body));
        }
        Ok(events::Events::new(response, self.base.to_string()))
    }

    // ----- any endpoint -----

    /// Any endpoint, authenticated: `endpoint` is below the base URL (`api/users`, with a
    /// query if need be); `body` goes as JSON. An empty answer reads as JSON `null`. For
    /// what has no typed call yet (the test kit's admin actions).
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &str,
        body: Option<&B>,
    ) -> Result<T, Error> {
        self.send(method, endpoint, body, true).await
    }

    fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        authenticated: bool,
    ) -> Result<reqwest::RequestBuilder, Error> {
        if !authenticated {
            return Ok(request);
        }
        match &self.auth {
            Auth::None => Err(Error::NotSignedIn),
            Auth::Bearer(token) => Ok(request.bearer_auth(token.expose())),
            Auth::ProducerKey(key) => Ok(request.header(PRODUCER_KEY_HEADER, key_header(key)?)),
        }
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &str,
        body: Option<&B>,
        authenticated: bool,
    ) -> Result<T, Error> {
        let url = self.base.join(endpoint)?;
        let mut request = self.authorize(
            self.http
                .request(method, url.clone())
                .timeout(REQUEST_TIMEOUT),
            authenticated,
        )?;
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::unreachable(&self.base, &e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::unreachable(&self.base, &e))?;
        if !status.is_success() {
            return Err(Error::from_answer(status, url.path(), &bytes));
        }
        let json: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(json).map_err(|e| Error::Protocol {
            url: url.to_string(),
            reason: format!("{status} with a body that does not parse: {e}"),
        })
    }
}

/// The `X-Producer-Key` value, marked sensitive so that it stays out of debug output.
fn key_header(key: &Secret) -> Result<HeaderValue, Error> {
    let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
        Error::Config("the producer key contains characters a header cannot carry".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}
