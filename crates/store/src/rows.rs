//! Rows as both engines read them, by column name, and the model types they become.
//!
//! SQLite keeps timestamps as RFC 3339 text and PostgreSQL as `TIMESTAMPTZ`; sqlx decodes
//! both into `DateTime<Utc>`, so one row type per table serves both engines. Text that
//! does not parse back is a backend failure: only this crate writes these columns.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, FromRow, QueryBuilder, Type};
use streamhub_model::api::{AuditEntry, Subscription, Topic, User};
use streamhub_model::traffic::InvalidProfile;

use crate::{
    AuditFilter, Credentials, Result, StoreError, SubscriptionFilter, TopicFilter, UserFilter,
};

/// A row and the model value it stands for.
pub(crate) trait IntoModel {
    type Model;
    fn into_model(self) -> Result<Self::Model>;
}

pub(crate) fn model<R: IntoModel>(row: Option<R>) -> Result<Option<R::Model>> {
    row.map(IntoModel::into_model).transpose()
}

pub(crate) fn models<R: IntoModel>(rows: Vec<R>) -> Result<Vec<R::Model>> {
    rows.into_iter().map(IntoModel::into_model).collect()
}

fn parsed<T: std::str::FromStr<Err = String>>(text: &str) -> Result<T> {
    parsed_with(text, str::parse)
}

fn parsed_with<T>(text: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T> {
    parse(text).map_err(|e| StoreError::Backend(format!("bad value in store: {e}")))
}

/// The columns of [`TopicRow`], for `SELECT {TOPIC_COLUMNS} FROM topics`.
pub(crate) const TOPIC_COLUMNS: &str = "topic_id, name, status, partitions, replication_factor, \
     description, data_type, rate_per_second, traffic_profile, created_by, created_at, updated_at, \
     approved_at, activated_at, deactivated_at, rejection_reason, provisioning_error";

#[derive(FromRow)]
pub(crate) struct TopicRow {
    topic_id: i64,
    name: String,
    status: String,
    partitions: i32,
    replication_factor: i32,
    description: String,
    data_type: String,
    rate_per_second: Option<f64>,
    traffic_profile: Option<String>,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    approved_at: Option<DateTime<Utc>>,
    activated_at: Option<DateTime<Utc>>,
    deactivated_at: Option<DateTime<Utc>>,
    rejection_reason: Option<String>,
    provisioning_error: Option<String>,
}

impl IntoModel for TopicRow {
    type Model = Topic;
    fn into_model(self) -> Result<Topic> {
        Ok(Topic {
            topic_id: self.topic_id,
            topic_name: self.name,
            status: parsed(&self.status)?,
            partitions: self.partitions,
            replication_factor: self.replication_factor,
            description: self.description,
            data_type: parsed(&self.data_type)?,
            rate_per_second: self.rate_per_second,
            traffic_profile: self
                .traffic_profile
                .as_deref()
                .map(|text| {
                    parsed_with(text, |t| {
                        t.parse().map_err(|e: InvalidProfile| e.to_string())
                    })
                })
                .transpose()?,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            approved_at: self.approved_at,
            activated_at: self.activated_at,
            deactivated_at: self.deactivated_at,
            rejection_reason: self.rejection_reason,
            provisioning_error: self.provisioning_error,
        })
    }
}

/// A subscription with its topic's name (`SUBSCRIPTION_SELECT`).
#[derive(FromRow)]
pub(crate) struct SubscriptionRow {
    subscription_id: i64,
    user_id: String,
    topic_name: String,
    subscribed_at: DateTime<Utc>,
    status: String,
}

/// The subscriptions table joined with topics, as [`SubscriptionRow`] reads it.
pub(crate) const SUBSCRIPTION_SELECT: &str = "SELECT s.subscription_id, s.user_id, \
     t.name AS topic_name, s.subscribed_at, s.status \
     FROM subscriptions s JOIN topics t ON t.topic_id = s.topic_id";

impl IntoModel for SubscriptionRow {
    type Model = Subscription;
    fn into_model(self) -> Result<Subscription> {
        Ok(Subscription {
            subscription_id: self.subscription_id,
            user_id: self.user_id,
            topic_name: self.topic_name,
            subscribed_at: self.subscribed_at,
            status: self.status,
        })
    }
}

/// A subscription removed with its user, and the topic its audit row names.
#[derive(FromRow)]
pub(crate) struct GoneSubscriptionRow {
    #[sqlx(flatten)]
    pub subscription: SubscriptionRow,
    pub topic_id: i64,
}

/// The columns of [`UserRow`].
pub(crate) const USER_COLUMNS: &str = "username, role, created_at";

#[derive(FromRow)]
pub(crate) struct UserRow {
    username: String,
    role: String,
    created_at: DateTime<Utc>,
}

impl IntoModel for UserRow {
    type Model = User;
    fn into_model(self) -> Result<User> {
        Ok(User {
            username: self.username,
            role: parsed(&self.role)?,
            created_at: self.created_at,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct CredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

impl IntoModel for CredentialsRow {
    type Model = Credentials;
    fn into_model(self) -> Result<Credentials> {
        Ok(Credentials {
            user: self.user.into_model()?,
            password_hash: self.password_hash,
        })
    }
}

/// The columns of [`AuditRow`].
pub(crate) const AUDIT_COLUMNS: &str =
    "audit_id, at, actor, action, topic_id, target, before, after, detail";

#[derive(FromRow)]
pub(crate) struct AuditRow {
    audit_id: i64,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    topic_id: Option<i64>,
    target: String,
    before: Option<String>,
    after: Option<String>,
    detail: Option<String>,
}

impl IntoModel for AuditRow {
    type Model = AuditEntry;
    fn into_model(self) -> Result<AuditEntry> {
        Ok(AuditEntry {
            audit_id: self.audit_id,
            at: self.at,
            actor: self.actor,
            action: self.action,
            topic_id: self.topic_id,
            target: self.target,
            before: self.before,
            after: self.after,
            detail: self.detail,
        })
    }
}

/// A row of the `counters` table.
#[derive(FromRow)]
pub(crate) struct CounterRow {
    pub name: String,
    pub value: i64,
}

/// The listings both engines answer with the same SQL, built for either: only the given
/// filters go into a query, so the database can use the index that starts with the
/// filtered column.
pub(crate) struct Listings<DB>(PhantomData<DB>);

impl<'a, DB: Database> Listings<DB>
where
    DB::Arguments<'a>: Default,
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    /// Rows of [`TopicRow`], newest first.
    pub fn topics(filter: &TopicFilter) -> QueryBuilder<'a, DB> {
        let mut query = QueryBuilder::new(format!("SELECT {TOPIC_COLUMNS} FROM topics WHERE "));
        match filter.status {
            Some(status) => query.push("status = ").push_bind(status.as_str()),
            None => query.push("status <> 'deleted'"),
        };
        query.push(" ORDER BY topic_id DESC");
        Self::page(query, filter.limit, filter.offset)
    }

    /// Rows of [`SubscriptionRow`], oldest first.
    pub fn subscriptions(filter: &'a SubscriptionFilter) -> QueryBuilder<'a, DB> {
        let mut query = QueryBuilder::new(SUBSCRIPTION_SELECT);
        if let Some(user_id) = &filter.user_id {
            query
                .push(" WHERE s.user_id = ")
                .push_bind(user_id.as_str());
        }
        query.push(" ORDER BY s.subscription_id");
        Self::page(query, filter.limit, filter.offset)
    }

    /// Rows of [`UserRow`], by username.
    pub fn users(filter: &UserFilter) -> QueryBuilder<'a, DB> {
        let query = QueryBuilder::new(format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY username"
        ));
        Self::page(query, filter.limit, filter.offset)
    }

    /// Rows of [`AuditRow`], newest first.
    pub fn audit(filter: &'a AuditFilter) -> QueryBuilder<'a, DB> {
        let mut query = QueryBuilder::new(format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE 1 = 1"));
        if let Some(actor) = &filter.actor {
            query.push(" AND actor = ").push_bind(actor.as_str());
        }
        if let Some(topic_id) = filter.topic_id {
            query.push(" AND topic_id = ").push_bind(topic_id);
        }
        if let Some(name) = &filter.topic_name {
            query
                .push(" AND topic_id IN (SELECT topic_id FROM topics WHERE name = ")
                .push_bind(name.as_str())
                .push(")");
        }
        if let Some(action) = &filter.action {
            query.push(" AND action = ").push_bind(action.as_str());
        }
        query.push(" ORDER BY audit_id DESC");
        Self::page(query, Some(filter.limit), filter.offset)
    }

    /// No limit is the largest, which both engines take (SQLite refuses `LIMIT NULL`).
    fn page(
        mut query: QueryBuilder<'a, DB>,
        limit: Option<i64>,
        offset: i64,
    ) -> QueryBuilder<'a, DB> {
        query.push(" LIMIT ").push_bind(limit.unwrap_or(i64::MAX));
        query.push(" OFFSET ").push_bind(offset);
        query
    }
}
