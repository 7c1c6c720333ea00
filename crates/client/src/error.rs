//! One error for every call: transport failures, the API's JSON error body
//! (`{"error": "...", "code": "..."}`), and answers this client cannot read. Each displays
//! as one line a person can act on.

use reqwest::StatusCode;
use streamhub_model::api::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No answer: connection refused or reset, DNS, TLS, a timeout, a body cut short.
    #[error("cannot reach the admin service at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The service (or a proxy in front of it) answered with an error status. `message`
    /// is the service's reason, verbatim: it is written for people.
    #[error("{message}")]
    Api {
        status: StatusCode,
        code: String,
        message: String,
    },
    /// A success whose body is not what the API documents.
    #[error("unexpected answer from the admin service at {url}: {reason}")]
    Protocol { url: String, reason: String },
    /// An endpoint that needs a bearer token was called before signing in.
    #[error("not signed in to the admin service")]
    NotSignedIn,
    /// The client cannot be set up (an unusable URL, CA file or producer key).
    #[error("{0}")]
    Config(String),
}

/// The longest part of a non-JSON error body shown (a proxy's HTML page, say).
const BODY_EXCERPT_CHARS: usize = 200;

impl Error {
    /// The status the service answered, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the service could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Unreachable { .. })
    }

    /// The credential was refused (401).
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(StatusCode::UNAUTHORIZED)
    }

    /// Worth retrying later: no answer, or a server-side failure (5xx, which is also what a
    /// reverse proxy answers while the service behind it is down).
    pub fn is_transient(&self) -> bool {
        self.is_unreachable() || self.status().is_some_and(|s| s.is_server_error())
    }

    pub(crate) fn unreachable(base: &impl std::fmt::Display, e: &reqwest::Error) -> Self {
        Error::Unreachable {
            url: base.to_string(),
            reason: describe_transport_error(e),
        }
    }

    /// Decodes an error answer: the API's JSON body, else whatever the body says (a proxy's
    /// page), on one line.
    pub(crate) fn from_answer(status: StatusCode, path: &str, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(body) => Error::Api {
                status,
                code: body.code,
                message: one_line(&body.error),
            },
            Err(_) => {
                let text = one_line(&String::from_utf8_lossy(body));
                let excerpt: String = text.chars().take(BODY_EXCERPT_CHARS).collect();
                let mut message = format!("the admin service answered {status} to {path}");
                if !excerpt.is_empty() {
                    message.push_str(": ");
                    message.push_str(&excerpt);
                }
                Error::Api {
                    status,
                    code: status.as_u16().to_string(),
                    message,
                }
            }
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
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
    one_line(&reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apis_error_body_is_the_message() {
        let err = Error::from_answer(
            StatusCode::CONFLICT,
            "/api/subscriptions",
            br#"{"error":"topic 'x' is pending approval","code":"conflict"}"#,
        );
        assert_eq!(err.to_string(), "topic 'x' is pending approval");
        assert_eq!(err.status(), Some(StatusCode::CONFLICT));
        assert!(matches!(&err, Error::Api { code, .. } if code == "conflict"));
        assert!(!err.is_transient());
    }

    #[test]
    fn another_body_is_shown_on_one_line_and_cut() {
        let page = format!(
            "<html>\n<h1>502 Bad Gateway</h1>\n{}</html>",
            "x".repeat(500)
        );
        let err = Error::from_answer(StatusCode::BAD_GATEWAY, "/p/api/topics", page.as_bytes());
        let text = err.to_string();
        assert!(
            text.starts_with(
                "the admin service answered 502 Bad Gateway to /p/api/topics: <html> <h1>502"
            ),
            "{text}"
        );
        assert!(!text.contains('\n'));
        assert!(text.len() < 300, "{text}");
        assert!(err.is_transient());

        let empty = Error::from_answer(StatusCode::NOT_FOUND, "/api/x", b"");
        assert_eq!(
            empty.to_string(),
            "the admin service answered 404 Not Found to /api/x"
        );
    }

    #[test]
    fn unauthorized_is_told_apart() {
        let err = Error::from_answer(
            StatusCode::UNAUTHORIZED,
            "/api/topics",
            br#"{"error":"wrong X-Producer-Key","code":"unauthorized"}"#,
        );
        assert!(err.is_unauthorized() && !err.is_transient());
    }
}
