//! The web dashboard: hand-written static assets embedded in the binary, served at `/`
//! and `/assets/<file>`. Nothing is fetched from a CDN, so it works offline.
//!
//! Caching: `index.html` links every asset as `/assets/<file>?v=<version>`, where the
//! version is a hash of all assets. A request carrying the current version may be cached
//! for a year (`immutable`); any other request revalidates with the strong `ETag`, so a
//! new binary never serves a stale script next to a new page. The page loads `app.js` as an
//! ES module; the modules it imports are fetched without the version and revalidated.

use std::sync::LazyLock;

use axum::{
    Router,
    extract::{Path, Query},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use streamhub_model::RatePerSecond;

use crate::conditional::respond;

/// The placeholder in `index.html` replaced by the asset version.
const VERSION_PLACEHOLDER: &str = "__ASSET_VERSION__";

/// Placeholders of the "New topic" form's bounds, filled from the model's rule.
const RATE_MIN_PLACEHOLDER: &str = "__RATE_PER_SECOND_MIN__";
const RATE_MAX_PLACEHOLDER: &str = "__RATE_PER_SECOND_MAX__";

const INDEX_HTML: &str = include_str!("../dashboard/index.html");

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

// Every file of the dashboard folder but the page, listed by `build.rs`.
include!(concat!(env!("OUT_DIR"), "/dashboard_assets.rs"));

/// Hashes and the rendered page, computed once on first use.
struct Built {
    version: String,
    index: Vec<u8>,
    index_etag: HeaderValue,
    asset_etags: Vec<HeaderValue>,
}

static BUILT: LazyLock<Built> = LazyLock::new(|| {
    let mut all = Sha256::new();
    let asset_etags = ASSETS
        .iter()
        .map(|a| {
            all.update(a.name.as_bytes());
            all.update(a.body);
            etag_of(a.body)
        })
        .collect();
    let version = hex::encode(&all.finalize()[..8]);
    let index = INDEX_HTML
        .replace(VERSION_PLACEHOLDER, &version)
        .replace(RATE_MIN_PLACEHOLDER, &RatePerSecond::MIN.to_string())
        .replace(RATE_MAX_PLACEHOLDER, &RatePerSecond::MAX.to_string())
        .into_bytes();
    let index_etag = etag_of(&index);
    Built {
        version,
        index,
        index_etag,
        asset_etags,
    }
});

fn etag_of(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..16])))
        .expect("a quoted hex string is a valid header value")
}

/// The dashboard's routes: `/`, `/index.html` and `/assets/<file>`. Security headers
/// (CSP and friends) are the application's, set around every response.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{file}", get(asset))
}

/// The version string the page puts on asset URLs.
pub fn asset_version() -> &'static str {
    &BUILT.version
}

async fn index(headers: HeaderMap) -> Response {
    let built = &*BUILT;
    respond(
        &headers,
        &built.index_etag,
        "text/html; charset=utf-8",
        HeaderValue::from_static("no-cache"),
        built.index.clone(),
    )
}

#[derive(Deserialize)]
struct AssetQuery {
    v: Option<String>,
}

async fn asset(
    Path(file): Path<String>,
    Query(q): Query<AssetQuery>,
    headers: HeaderMap,
) -> Response {
    let built = &*BUILT;
    let Some(i) = ASSETS.iter().position(|a| a.name == file) else {
        return not_found();
    };
    let cache = if q.v.as_deref() == Some(built.version.as_str()) {
        HeaderValue::from_static("public, max-age=31536000, immutable")
    } else {
        HeaderValue::from_static("no-cache")
    };
    let a = &ASSETS[i];
    respond(
        &headers,
        &built.asset_etags[i],
        a.content_type,
        cache,
        a.body.to_vec(),
    )
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({
            "error": "no such dashboard asset",
            "code": "not_found",
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, header};
    use tower::ServiceExt;

    async fn get_with(uri: &str, if_none_match: Option<&str>) -> Response {
        let mut req = Request::get(uri);
        if let Some(tag) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        routes::<()>()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body_text(res: Response) -> String {
        String::from_utf8(to_bytes(res.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn index_links_versioned_assets_and_revalidates() {
        let res = get_with("/", None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
        let etag = res.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "strong ETag: {etag}"
        );
        let html = body_text(res).await;
        assert!(!html.contains(VERSION_PLACEHOLDER));
        assert!(html.contains(&format!("/assets/app.js?v={}", asset_version())));

        let again = get_with("/", Some(&etag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(body_text(again).await.is_empty());
    }

    /// The form refuses what the API would (a rate of 0 was accepted, then refused).
    #[tokio::test]
    async fn new_topic_form_allows_only_the_rates_the_api_accepts() {
        let html = body_text(get_with("/", None).await).await;
        let start = html
            .find("<input name=\"rate_per_second\"")
            .expect("rate input");
        let input = &html[start..start + html[start..].find('>').unwrap()];
        let attr = |name: &str| -> f64 {
            let at = input
                .find(&format!(" {name}=\""))
                .unwrap_or_else(|| panic!("{name} in {input}"));
            let value = &input[at + name.len() + 3..];
            value[..value.find('"').unwrap()].parse().expect(name)
        };
        assert_eq!(attr("min"), RatePerSecond::MIN, "{input}");
        assert_eq!(attr("max"), RatePerSecond::MAX, "{input}");
    }

    #[tokio::test]
    async fn every_asset_has_its_content_type_and_etag() {
        assert!(ASSETS.len() >= 4, "the dashboard folder is embedded");
        for (file, ty) in [
            ("app.js", "text/javascript; charset=utf-8"),
            ("charts.js", "text/javascript; charset=utf-8"),
            ("app.css", "text/css; charset=utf-8"),
            ("favicon.svg", "image/svg+xml"),
        ] {
            let res = get_with(&format!("/assets/{file}"), None).await;
            assert_eq!(res.status(), StatusCode::OK, "{file}");
            assert_eq!(res.headers()[header::CONTENT_TYPE], ty, "{file}");
            assert_eq!(res.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            let etag = res.headers()[header::ETAG].to_str().unwrap().to_owned();
            let cached = get_with(
                &format!("/assets/{file}"),
                Some(&format!("W/{etag}, \"x\"")),
            )
            .await;
            assert_eq!(cached.status(), StatusCode::NOT_MODIFIED, "{file}");
        }
    }

    #[tokio::test]
    async fn only_the_current_version_is_cached_for_long() {
        let current = get_with(&format!("/assets/app.css?v={}", asset_version()), None).await;
        assert_eq!(
            current.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        let stale = get_with("/assets/app.css?v=0000", None).await;
        assert_eq!(stale.headers()[header::CACHE_CONTROL], "no-cache");
    }

    #[tokio::test]
    async fn unknown_assets_are_json_404s() {
        for uri in ["/assets/nope.js", "/assets/..%2Fdashboard.rs", "/assets/"] {
            let res = get_with(uri, None).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{uri}");
        }
        let body = body_text(get_with("/assets/nope.js", None).await).await;
        assert!(body.contains("\"code\":\"not_found\""), "{body}");
    }

    /// The page loads one module; every module it reaches imports only files the asset
    /// route serves, and every script of the folder is reached (none is left unused).
    #[tokio::test]
    async fn the_page_loads_the_app_as_a_module_whose_imports_are_served() {
        let html = body_text(get_with("/", None).await).await;
        assert!(
            html.contains("<script type=\"module\" src=\"/assets/app.js?v="),
            "{html}"
        );
        let mut reached = vec!["app.js".to_owned()];
        let mut i = 0;
        while i < reached.len() {
            let res = get_with(&format!("/assets/{}", reached[i]), None).await;
            assert_eq!(res.status(), StatusCode::OK, "{} is imported", reached[i]);
            let src = body_text(res).await;
            for import in src.split(" from '").skip(1) {
                let file = import.split('\'').next().unwrap();
                let file = file
                    .strip_prefix("./")
                    .unwrap_or_else(|| panic!("{file}: relative"));
                if !reached.iter().any(|r| r == file) {
                    reached.push(file.to_owned());
                }
            }
            i += 1;
        }
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            assert!(
                reached.iter().any(|r| r == a.name),
                "{} is imported by no module",
                a.name
            );
        }
        assert!(reached.len() > 2, "{reached:?}");
    }

    /// The CSP allows scripts and styles from files only; the page must not need more.
    #[test]
    fn page_has_no_inline_script_style_or_handlers() {
        let lower = INDEX_HTML.to_ascii_lowercase();
        for (i, _) in lower.match_indices("<script") {
            let tag_end = i + lower[i..].find('>').unwrap();
            assert!(
                lower[i..tag_end].contains(" src="),
                "inline <script> at byte {i}"
            );
        }
        assert!(!lower.contains("<style"), "inline <style>");
        assert!(!lower.contains(" style="), "style attribute");
        assert!(!lower.contains("javascript:"), "javascript: URL");
        for attr in [
            " onclick=",
            " onload=",
            " onerror=",
            " onsubmit=",
            " onchange=",
        ] {
            assert!(!lower.contains(attr), "inline handler {attr}");
        }
        assert!(
            !lower.contains("http://") && !lower.contains("https://"),
            "external URL"
        );
    }

    /// Data reaches the page only as text: no HTML parsing sinks, no code from strings.
    #[test]
    fn scripts_use_no_html_or_eval_sinks() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let src = std::str::from_utf8(a.body).unwrap();
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "setAttribute('style'",
                "DOMParser",
                "createContextualFragment",
            ] {
                assert!(!src.contains(sink), "{} uses {sink}", a.name);
            }
        }
    }
}
