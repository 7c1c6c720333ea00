//! Conditional GET (RFC 9110): answers carry an `ETag`; a request that sends it back in
//! `If-None-Match` gets 304 without the body. Used by the dashboard's assets and the
//! lists of topics.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// 304 when `headers` name `etag`, else 200 with `body`; both with `etag` and `cache`.
pub(crate) fn respond(
    headers: &HeaderMap,
    etag: &HeaderValue,
    content_type: &'static str,
    cache: HeaderValue,
    body: impl IntoResponse,
) -> Response {
    let common = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, cache),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if if_none_match(headers, etag) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        StatusCode::OK,
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// Whether `If-None-Match` names `etag` (or `*`). Weak validators match by their opaque
/// part, as RFC 9110 asks for this weak comparison.
pub(crate) fn if_none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(want) = etag.to_str() else {
        return false;
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(if_none_match: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in if_none_match {
            h.append(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists() {
        let etag = HeaderValue::from_static("\"0000abcd.7\"");
        for yes in [
            &["\"0000abcd.7\""][..],
            &["W/\"0000abcd.7\""],
            &["\"x\", \"0000abcd.7\""],
            &["\"x\"", "\"0000abcd.7\""],
            &["*"],
        ] {
            assert!(if_none_match(&headers(yes), &etag), "{yes:?}");
        }
        for no in [
            &[][..],
            &["\"0000abcd.8\""],
            &["0000abcd.7"],
            &["\"0000abcd.7"],
            &["W/W/\"0000abcd.7\""],
            &[""],
        ] {
            assert!(!if_none_match(&headers(no), &etag), "{no:?}");
        }
    }
}
