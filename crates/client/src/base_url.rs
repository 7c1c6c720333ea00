//! Where the admin API lives. A reverse proxy may serve it under a path
//! (`https://host/streamhub/`), so every endpoint is joined below the base's path, never
//! at the host's root.

use url::Url;

use crate::Error;

/// An `http(s)://` URL whose path ends in `/`, so that joining keeps its path prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl(Url);

impl BaseUrl {
    /// Drops any query or fragment; a missing final `/` is added (`http://h/prefix` means
    /// the directory `prefix`, not a file `prefix` to be replaced by the endpoint).
    pub fn new(mut url: Url) -> Result<Self, Error> {
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(Error::Config(format!(
                "the admin URL {url} is not an http:// or https:// URL"
            )));
        }
        url.set_query(None);
        url.set_fragment(None);
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(BaseUrl(url))
    }

    /// `endpoint` below the base: `api/topics` and `/api/topics` both give
    /// `<base>api/topics`. The endpoint may carry a query (`api/x?a=b`).
    pub fn join(&self, endpoint: &str) -> Result<Url, Error> {
        // A leading `/` would make the endpoint absolute and drop the prefix; `//` would even
        // name another host.
        let relative = endpoint.trim_start_matches('/');
        self.0.join(relative).map_err(|e| {
            Error::Config(format!(
                "cannot join {endpoint:?} to the admin URL {}: {e}",
                self.0
            ))
        })
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(base: &str, endpoint: &str) -> String {
        BaseUrl::new(base.parse().unwrap())
            .unwrap()
            .join(endpoint)
            .unwrap()
            .to_string()
    }

    #[test]
    fn keeps_the_path_prefix_with_or_without_slashes() {
        for base in ["http://h:5000/prefix/", "http://h:5000/prefix"] {
            for endpoint in ["api/topics", "/api/topics", "//api/topics"] {
                assert_eq!(
                    join(base, endpoint),
                    "http://h:5000/prefix/api/topics",
                    "{base} + {endpoint}"
                );
            }
        }
        assert_eq!(
            join("https://h/a/b/", "api/subscriptions?user_id=x%20y"),
            "https://h/a/b/api/subscriptions?user_id=x%20y"
        );
    }

    #[test]
    fn a_root_base_joins_at_the_root() {
        assert_eq!(
            join("http://h:5000", "/api/topics"),
            "http://h:5000/api/topics"
        );
        assert_eq!(
            join("http://h:5000/", "api/topics"),
            "http://h:5000/api/topics"
        );
    }

    #[test]
    fn the_base_query_and_fragment_are_dropped() {
        assert_eq!(
            join("http://h/p/?x=1#f", "api/topics"),
            "http://h/p/api/topics"
        );
    }

    #[test]
    fn other_schemes_are_refused_in_one_line() {
        for base in ["ftp://h/", "mailto:a@b"] {
            let err = BaseUrl::new(base.parse().unwrap()).unwrap_err().to_string();
            assert!(err.contains("not an http:// or https:// URL"), "{err}");
            assert!(!err.contains('\n'));
        }
    }
}
