//! Lists of topics kept as the JSON they were sent as, with the store's count of topic
//! changes they were read at. A request reads that one counter: while it has not moved,
//! the copy is sent again without querying the topics or encoding them, and a client
//! that sends back the list's ETag gets 304. The database keeps the count in the
//! transaction of each write, so a write by another instance or process is seen too.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use serde::Serialize;
use streamhub_store::TopicFilter;

use crate::conditional::{if_none_match, respond};
use crate::error::ApiError;
use crate::state::AppState;

/// The copies together stay under this many bytes (and lists), so that pages of ten
/// thousand topics cannot grow the service's memory.
const MAX_BYTES: usize = 4 << 20;
const MAX_LISTS: usize = 64;

/// One list as its request names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ListKey {
    pub endpoint: &'static str,
    pub filter: TopicFilter,
}

struct Copy {
    changes: i64,
    body: Bytes,
}

pub(crate) struct TopicLists {
    /// Part of each ETag, so that a count from an earlier database (a data directory
    /// started afresh) is never taken for the same list.
    instance: u32,
    copies: Mutex<HashMap<ListKey, Copy>>,
}

impl Default for TopicLists {
    fn default() -> Self {
        TopicLists {
            instance: rand::random(),
            copies: Mutex::default(),
        }
    }
}

impl TopicLists {
    /// Answers with the list `key` names: 304 when `headers` hold its current ETag, the
    /// copy while the store's count of topic changes has not moved, else what `read` gives.
    pub(crate) async fn serve<T, F>(
        state: &AppState,
        key: ListKey,
        headers: &HeaderMap,
        read: F,
    ) -> Result<Response, ApiError>
    where
        T: Serialize,
        F: AsyncFnOnce() -> Result<Vec<T>, ApiError>,
    {
        let lists = &state.inner.topic_lists;
        // Read before the topics: a copy is then never newer-labelled than its content.
        let changes = state.store().topic_changes().await?;
        let etag = HeaderValue::try_from(format!("\"{:08x}.{changes}\"", lists.instance))
            .map_err(ApiError::internal)?;
        let body = if if_none_match(headers, &etag) {
            Bytes::new() // 304: nothing is sent
        } else if let Some(copy) = lists.copy(key, changes) {
            copy
        } else {
            let body = Bytes::from(serde_json::to_vec(&read().await?).map_err(ApiError::internal)?);
            lists.keep(key, changes, body.clone());
            body
        };
        // A browser may keep the list but asks each time whether it is still current.
        let cache = HeaderValue::from_static("no-cache");
        Ok(respond(headers, &etag, "application/json", cache, body))
    }

    fn copy(&self, key: ListKey, changes: i64) -> Option<Bytes> {
        let copies = self.copies.lock().unwrap_or_else(|e| e.into_inner());
        copies
            .get(&key)
            .filter(|c| c.changes == changes)
            .map(|c| c.body.clone())
    }

    fn keep(&self, key: ListKey, changes: i64, body: Bytes) {
        if body.len() > MAX_BYTES / 4 {
            return;
        }
        let mut copies = self.copies.lock().unwrap_or_else(|e| e.into_inner());
        // Older copies will never be sent again.
        copies.retain(|_, c| c.changes >= changes);
        let held: usize = copies.values().map(|c| c.body.len()).sum();
        if copies.len() >= MAX_LISTS || held + body.len() > MAX_BYTES {
            copies.clear();
        }
        copies.insert(key, Copy { changes, body });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(offset: i64) -> ListKey {
        ListKey {
            endpoint: "topics",
            filter: TopicFilter {
                status: None,
                limit: Some(100),
                offset,
            },
        }
    }

    #[test]
    fn a_copy_serves_only_its_own_count_and_memory_stays_bounded() {
        let lists = TopicLists::default();
        lists.keep(key(0), 5, Bytes::from_static(b"[1]"));
        assert_eq!(lists.copy(key(0), 5).as_deref(), Some(&b"[1]"[..]));
        assert_eq!(lists.copy(key(0), 6), None);
        assert_eq!(lists.copy(key(1), 5), None);

        // A newer count drops the older copies.
        lists.keep(key(1), 6, Bytes::from_static(b"[2]"));
        assert_eq!(lists.copy(key(0), 5), None);

        let big = Bytes::from(vec![b' '; MAX_BYTES / 4]);
        for offset in 0..(2 * MAX_LISTS as i64) {
            lists.keep(key(offset), 6, big.clone());
            let copies = lists.copies.lock().unwrap();
            let held: usize = copies.values().map(|c| c.body.len()).sum();
            assert!(held <= MAX_BYTES && copies.len() <= MAX_LISTS);
        }
        lists.keep(key(0), 6, Bytes::from(vec![b' '; MAX_BYTES / 4 + 1]));
        assert_eq!(lists.copy(key(0), 6), None, "a list too large is not kept");
    }
}
