//! One error type for every endpoint, rendered as `{"error": "...", "code": "..."}`,
//! and the pieces that make axum's own rejections speak the same JSON.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use streamhub_model::api::ErrorBody;
use streamhub_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// Seconds for the `Retry-After` header of 429 and 503 answers.
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
    /// Tells the client when to try again (`Retry-After: <seconds>`).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
    /// Logs `detail` and answers 500 without it: internals stay out of responses.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the admin service log has the details",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// The machine-readable `code` of a status.
pub fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "invalid",
        429 => "too_many_requests",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "error",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            code: code_of(self.status).to_owned(),
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"streamhub\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Transition(t) => ApiError::conflict(t.to_string()),
            StoreError::Invalid(m) => ApiError::invalid(m),
            e @ StoreError::Backend(_) => ApiError::internal(e),
        }
    }
}

/// A JSON body with streamhub's error classes: malformed JSON or a wrong type → 400,
/// missing or unknown fields and invalid values → 422, too large → 413, a content type
/// other than JSON → 415. A request without a content type is read as JSON.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or_default().trim();
            if !(essence == "application/json" || essence.ends_with("+json")) {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "expected a JSON body (Content-Type: application/json), got '{essence}'"
                    ),
                ));
            }
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(status, "request body is larger than 64 KiB")
                } else {
                    ApiError::new(status, rejection.body_text())
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "request body is empty; expected JSON",
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::bad_request("expected a JSON object"));
        }
        serde_path_to_error::deserialize(value)
            .map(Json)
            .map_err(|e| body_error(&e.path().to_string(), &e.inner().to_string()))
    }
}

/// The answer to a body that does not deserialize, naming the field at `path` (serde's
/// own message does not: `invalid type: string, expected f64` about which field?).
fn body_error(path: &str, message: &str) -> ApiError {
    let (type_error, message) = if message.starts_with("invalid type") {
        (true, without_value(message))
    } else {
        (false, message.to_owned())
    };
    // "." is the body itself: a missing or unknown field names itself in the message.
    let message = if path.is_empty() || path == "." {
        message
    } else {
        format!("{path}: {message}")
    };
    if type_error {
        ApiError::bad_request(message)
    } else {
        ApiError::invalid(message)
    }
}

/// `invalid type: string "hunter2", expected u32` → `invalid type: string, expected u32`:
/// a value of the wrong type may be a secret sent in the wrong field, and error bodies
/// never repeat secrets.
fn without_value(message: &str) -> String {
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return message.to_owned();
    };
    let kind = rest
        .split(['`', '"', ','])
        .next()
        .unwrap_or_default()
        .trim();
    match rest.rsplit_once(", expected ") {
        Some((_, expected)) => format!("invalid type: {kind}, expected {expected}"),
        None => format!("invalid type: {kind}"),
    }
}

/// Rewrites any error response that is not JSON yet (axum's plain-text rejections of
/// paths and queries, 405, ...) into `{"error", "code"}`. Server errors lose their text.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if status.is_server_error() {
        if !text.is_empty() {
            tracing::error!(%status, body = %crate::log_value::Untrusted(&text), "request failed");
        }
        "internal error; the admin service log has the details".to_owned()
    } else if text.is_empty() {
        match status {
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this endpoint".to_owned(),
            StatusCode::NOT_FOUND => "no such endpoint".to_owned(),
            _ => status
                .canonical_reason()
                .unwrap_or("request refused")
                .to_owned(),
        }
    } else {
        text
    };
    let body = serde_json::to_vec(&ErrorBody {
        error: message,
        code: code_of(status).to_owned(),
    })
    .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

pub async fn api_not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

#[cfg(test)]
mod tests {
    use super::{Json, body_error, without_value};
    use axum::extract::FromRequest;
    use axum::http::StatusCode;

    #[test]
    fn type_errors_do_not_repeat_the_value() {
        assert_eq!(
            without_value("invalid type: string \"hunter2, expected\", expected u32"),
            "invalid type: string, expected u32"
        );
        assert_eq!(
            without_value("invalid type: integer `12345678`, expected a string"),
            "invalid type: integer, expected a string"
        );
        assert_eq!(
            without_value("invalid type: map, expected a string"),
            "invalid type: map, expected a string"
        );
        assert_eq!(
            without_value("invalid type: floating point `1.5`, expected u32"),
            "invalid type: floating point, expected u32"
        );
    }

    #[test]
    fn body_errors_name_the_field_at_fault() {
        let e = body_error(
            "rate_per_second",
            "invalid type: string \"fast\", expected f64",
        );
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "rate_per_second: invalid type: string, expected f64"
        );
        let e = body_error(".", "missing field `name`");
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.message, "missing field `name`");
    }

    #[tokio::test]
    async fn type_errors_in_request_bodies_name_the_field() {
        let request = |body: &'static str| {
            axum::http::Request::builder()
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap()
        };
        let Err(e) = Json::<streamhub_model::api::CreateTopic>::from_request(
            request(r#"{"name": "t", "rate_per_second": "fast"}"#),
            &(),
        )
        .await
        else {
            panic!("a string rate was accepted");
        };
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "rate_per_second: invalid type: string, expected f64"
        );
        let Err(e) = Json::<streamhub_model::api::CreateTopic>::from_request(
            request(r#"{"name": "__consumer_offsets"}"#),
            &(),
        )
        .await
        else {
            panic!("an internal topic name was accepted");
        };
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message.starts_with("name: "), "{}", e.message);
    }
}
