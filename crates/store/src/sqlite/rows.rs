//! Row ↔ model conversions. Text that does not parse back is a backend failure:
//! only this crate writes these columns.

use chrono::{DateTime, SecondsFormat, Utc};
use libsql::Row;
use streamhub_model::api::{AuditEntry, Subscription, Topic, User};

use crate::{Result, StoreError};

/// The stored form of a timestamp: fixed width, so text order is time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Backend(format!("bad timestamp '{text}' in store: {e}")))
}

fn opt_ts(text: Option<String>) -> Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_ts).transpose()
}

fn parsed<T: std::str::FromStr<Err = String>>(text: &str) -> Result<T> {
    text.parse()
        .map_err(|e: String| StoreError::Backend(format!("bad value in store: {e}")))
}

pub(crate) fn topic_from_row(r: &Row) -> Result<Topic> {
    Ok(Topic {
        topic_id: r.get(0)?,
        topic_name: r.get(1)?,
        status: parsed(&r.get::<String>(2)?)?,
        partitions: r.get(3)?,
        replication_factor: r.get(4)?,
        description: r.get(5)?,
        data_type: parsed(&r.get::<String>(6)?)?,
        rate_per_second: r.get(7)?,
        created_by: r.get(8)?,
        created_at: parse_ts(&r.get::<String>(9)?)?,
        updated_at: parse_ts(&r.get::<String>(10)?)?,
        approved_at: opt_ts(r.get(11)?)?,
        activated_at: opt_ts(r.get(12)?)?,
        deactivated_at: opt_ts(r.get(13)?)?,
        rejection_reason: r.get(14)?,
        provisioning_error: r.get(15)?,
    })
}

pub(crate) fn subscription_from_row(r: &Row) -> Result<Subscription> {
    Ok(Subscription {
        subscription_id: r.get(0)?,
        user_id: r.get(1)?,
        topic_name: r.get(2)?,
        subscribed_at: parse_ts(&r.get::<String>(3)?)?,
        status: r.get(4)?,
    })
}

pub(crate) fn user_from_row(r: &Row) -> Result<User> {
    Ok(User {
        username: r.get(0)?,
        role: parsed(&r.get::<String>(1)?)?,
        created_at: parse_ts(&r.get::<String>(2)?)?,
    })
}

pub(crate) fn audit_from_row(r: &Row) -> Result<AuditEntry> {
    Ok(AuditEntry {
        audit_id: r.get(0)?,
        at: parse_ts(&r.get::<String>(1)?)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        topic_id: r.get(4)?,
        target: r.get(5)?,
        before: r.get(6)?,
        after: r.get(7)?,
        detail: r.get(8)?,
    })
}
