//! The admin service as the producer sees it: topic listings, activation and the
//! server-sent event stream, every request authenticated with `X-Producer-Key`.

use std::time::Duration;

use futures::{Stream, StreamExt};
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use streamhub_kafka::Secret;
use streamhub_model::api::{
    ActivateByName, ErrorBody, Event, MAX_PAGE, ProvisioningFailure, Topic,
};

pub const PRODUCER_KEY_HEADER: &str = "x-producer-key";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("the admin service refused the producer key (401){}", detail(.0))]
    Unauthorized(String),
    #[error("the admin service at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the admin service answered {status}: {message}")]
    Status { status: StatusCode, message: String },
    #[error("unexpected answer from the admin service: {0}")]
    Decode(String),
}

fn detail(message: &str) -> String {
    // The server's wording adds nothing when it only repeats that the key is wrong.
    if message.is_empty() || message == "wrong X-Producer-Key" {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl AdminError {
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, AdminError::Unauthorized(_))
    }
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

/// A client of the admin service's API for the producer.
#[derive(Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: Url,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl AdminClient {
    pub fn new(base: Url, producer_key: &Secret) -> Result<Self, AdminError> {
        Self::with_ca_cert(base, producer_key, None)
    }

    /// [`Self::new`], also trusting the CA certificates (PEM) in `ca_cert` for an
    /// `https://` admin URL whose certificate the system's trust store does not know.
    pub fn with_ca_cert(
        base: Url,
        producer_key: &Secret,
        ca_cert: Option<&std::path::Path>,
    ) -> Result<Self, AdminError> {
        let mut headers = HeaderMap::new();
        let mut key = HeaderValue::from_str(producer_key.expose()).map_err(|_| {
            AdminError::Unauthorized(
                "the producer key contains characters a header cannot carry".into(),
            )
        })?;
        key.set_sensitive(true);
        headers.insert(PRODUCER_KEY_HEADER, key);
        let mut http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT);
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                AdminError::Decode(format!("cannot read the CA file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                AdminError::Decode(format!("no PEM certificate in {}: {e}", path.display()))
            })?;
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http
            .build()
            .map_err(|e| AdminError::Decode(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, base })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}{path}"));
        url
    }

    fn unreachable(&self, e: &reqwest::Error) -> AdminError {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        AdminError::Unreachable {
            url: self.base.to_string(),
            reason,
        }
    }

    async fn check(&self, response: reqwest::Response) -> Result<reqwest::Response, AdminError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or_else(|_| text.chars().take(200).collect());
        Err(if status == StatusCode::UNAUTHORIZED {
            AdminError::Unauthorized(message)
        } else {
            AdminError::Status { status, message }
        })
    }

    /// Every topic but deleted ones (`GET /api/topics`, page after page: one answers at
    /// most `MAX_PAGE`). A topic created meanwhile shifts the pages (newest first), so a
    /// topic may come twice; it is kept once.
    pub async fn topics(&self) -> Result<Vec<Topic>, AdminError> {
        let mut topics: Vec<Topic> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut offset = 0;
        loop {
            let page = self.topics_page(offset).await?;
            let last = (page.len() as i64) < MAX_PAGE;
            offset += page.len() as i64;
            topics.extend(page.into_iter().filter(|t| seen.insert(t.topic_id)));
            if last {
                return Ok(topics);
            }
        }
    }

    async fn topics_page(&self, offset: i64) -> Result<Vec<Topic>, AdminError> {
        let mut url = self.url("/api/topics");
        url.query_pairs_mut()
            .append_pair("limit", &MAX_PAGE.to_string())
            .append_pair("offset", &offset.to_string());
        let response = self
            .http
            .get(url)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        self.check(response)
            .await?
            .json()
            .await
            .map_err(|e| AdminError::Decode(format!("topic list: {e}")))
    }

    /// `POST /api/topics/activate_by_name`. Repeating it is harmless.
    pub async fn activate(&self, topic_name: &str) -> Result<Activation, AdminError> {
        let response = self
            .http
            .post(self.url("/api/topics/activate_by_name"))
            .timeout(REQUEST_TIMEOUT)
            .json(&ActivateByName {
                topic_name: topic_name.to_owned(),
            })
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        match self.check(response).await {
            Ok(_) => Ok(Activation::Active),
            Err(AdminError::Status { status, message }) if status == StatusCode::CONFLICT => {
                Ok(Activation::Refused(message))
            }
            Err(AdminError::Status { status, .. }) if status == StatusCode::NOT_FOUND => {
                Ok(Activation::Unknown)
            }
            Err(e) => Err(e),
        }
    }

    /// `POST /api/topics/provisioning_failure`: records on the approved topic why it cannot
    /// be created in Kafka (cut to the length the API takes). Repeating it is harmless.
    pub async fn provisioning_failure(
        &self,
        topic_name: &str,
        error: &str,
    ) -> Result<(), AdminError> {
        let error: String = error
            .chars()
            .take(ProvisioningFailure::MAX_ERROR_CHARS)
            .collect();
        let response = self
            .http
            .post(self.url("/api/topics/provisioning_failure"))
            .timeout(REQUEST_TIMEOUT)
            .json(&ProvisioningFailure {
                topic_name: topic_name.to_owned(),
                error,
            })
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        self.check(response).await.map(|_| ())
    }

    /// Opens `GET /api/events`; the stream yields the events until the connection ends,
    /// and [`ServerEvent::KeepAlive`] for the server's comments, so that a quiet but live
    /// stream is seen as live.
    pub async fn events(
        &self,
    ) -> Result<impl Stream<Item = Result<ServerEvent, AdminError>> + use<>, AdminError> {
        let response = self
            .http
            .get(self.url("/api/events"))
            .header(ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let response = self.check(response).await?;
        let base = self.base.to_string();
        let mut parser = SseParser::default();
        Ok(response
            .bytes_stream()
            .map(move |chunk| match chunk {
                Ok(bytes) => Ok(parser.push(&bytes)),
                Err(e) => Err(AdminError::Unreachable {
                    url: base.clone(),
                    reason: format!("event stream interrupted: {e}"),
                }),
            })
            .flat_map(|batch| {
                futures::stream::iter(match batch {
                    Ok(items) => items
                        .into_iter()
                        .map(|item| match item {
                            SseItem::Message(m) => ServerEvent::from(m),
                            SseItem::Comment => ServerEvent::KeepAlive,
                        })
                        .map(Ok)
                        .collect(),
                    Err(e) => vec![Err(e)],
                })
            }))
    }
}

/// An event of `GET /api/events`, as the producer understands it.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// A topic was created or changed state.
    Topic(Box<Topic>),
    /// The server dropped events for this client: reload everything.
    Resync,
    /// A comment line: the server's keep-alive (every 15 s) or its greeting.
    KeepAlive,
    /// Subscriptions and what this version does not know.
    Other,
}

impl From<SseMessage> for ServerEvent {
    fn from(m: SseMessage) -> Self {
        match m.event.as_str() {
            "topic" => match serde_json::from_str::<Event>(&m.data) {
                Ok(Event::Topic { topic, .. }) => ServerEvent::Topic(Box::new(topic)),
                Ok(_) => ServerEvent::Other,
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable topic event; reloading topics");
                    ServerEvent::Resync
                }
            },
            "resync" => ServerEvent::Resync,
            _ => ServerEvent::Other,
        }
    }
}

/// One dispatched server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseMessage {
    /// `message` when the server named none.
    pub event: String,
    pub data: String,
}

/// What the parser completed: an event, or a comment line (`:` ...), which carries nothing
/// but shows the connection is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    Message(SseMessage),
    Comment,
}

/// Incremental parser of the `text/event-stream` format (fields `event` and `data`;
/// `id` and `retry` are ignored: the producer re-lists topics after reconnecting).
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// Feeds bytes as they arrive; returns the events and comments completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseItem> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.line_done(&line, &mut out);
                // Reuse the allocation for the next line.
                line.clear();
                self.line = line;
            } else {
                self.line.push(b);
            }
        }
        out
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseItem>) {
        if line.is_empty() {
            if self.has_data || !self.event.is_empty() {
                let event = std::mem::take(&mut self.event);
                out.push(SseItem::Message(SseMessage {
                    event: if event.is_empty() {
                        "message".into()
                    } else {
                        event
                    },
                    data: std::mem::take(&mut self.data),
                }));
            }
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            out.push(SseItem::Comment);
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_chunks() {
        let mut p = SseParser::default();
        assert_eq!(p.push(b": connected\n\nevent: top"), vec![SseItem::Comment]);
        let got = p.push(b"ic\r\ndata: {\"a\":1}\r\n\r\nevent: resync\ndata: {}\n\n");
        assert_eq!(
            got,
            vec![
                SseItem::Message(SseMessage {
                    event: "topic".into(),
                    data: "{\"a\":1}".into()
                }),
                SseItem::Message(SseMessage {
                    event: "resync".into(),
                    data: "{}".into()
                })
            ]
        );
    }

    /// The server's keep-alive is a bare comment (`:`): the stream must show it, or a quiet
    /// stream looks dead and is dropped.
    #[test]
    fn keep_alive_comments_are_reported() {
        let mut p = SseParser::default();
        assert_eq!(p.push(b":\n\n"), vec![SseItem::Comment]);
        assert_eq!(p.push(b": keep-alive\r\n\r\n"), vec![SseItem::Comment]);
    }

    #[test]
    fn joins_multi_line_data_and_defaults_the_event_name() {
        let mut p = SseParser::default();
        let got = p.push(b"data: one\ndata:two\n\n");
        assert_eq!(
            got,
            vec![SseItem::Message(SseMessage {
                event: "message".into(),
                data: "one\ntwo".into()
            })]
        );
    }

    #[test]
    fn unreadable_topic_data_asks_for_a_reload() {
        let m = SseMessage {
            event: "topic".into(),
            data: "{not json".into(),
        };
        assert_eq!(ServerEvent::from(m), ServerEvent::Resync);
    }

    #[test]
    fn joins_paths_under_a_prefix() {
        let c = AdminClient::new(
            "http://h:5000/streamhub/".parse().unwrap(),
            &Secret::new("k"),
        )
        .unwrap();
        assert_eq!(
            c.url("/api/topics").as_str(),
            "http://h:5000/streamhub/api/topics"
        );
    }
}
