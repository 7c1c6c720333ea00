use streamhub_model::TransitionError;

/// What can go wrong in the store. The admin service maps the variants to
/// 404, 409, 409, 422 and 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    /// A uniqueness rule or a precondition (subscribers, topic state) refused the change.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("{0}")]
    Invalid(String),
    /// The engine failed; the message is for logs, not for clients.
    #[error("metadata store failure: {0}")]
    Backend(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// A unique index or key refused the write, on either engine.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}
