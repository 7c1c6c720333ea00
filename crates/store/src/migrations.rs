//! Migrations are embedded with `sqlx::migrate!` and applied at open; sqlx records them in
//! `_sqlx_migrations` with each file's checksum.
//!
//! Stores written before that kept their own record, `schema_version` (version and time),
//! for the same files. Each engine hands that record over once, before its migrator runs:
//! the versions it lists go into `_sqlx_migrations` with the checksums of the embedded
//! files, and `schema_version` is dropped, in one transaction.

use sqlx::migrate::{MigrateError, Migration, Migrator};

use crate::{Result, StoreError};

/// The table the earlier hand-written runner kept.
pub(crate) const LEGACY_TABLE: &str = "schema_version";

/// The migrations `applied` (versions from `schema_version`) records, refusing a store
/// that a newer build migrated.
pub(crate) fn legacy_applied<'m>(
    migrator: &'m Migrator,
    applied: &[i64],
) -> Result<Vec<&'m Migration>> {
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(newest) = applied.iter().copied().max().filter(|v| *v > known) {
        return Err(StoreError::Backend(format!(
            "the database has schema version {newest}, newer than this build knows ({known}); upgrade streamhub"
        )));
    }
    Ok(migrator
        .iter()
        .filter(|m| applied.contains(&m.version))
        .collect())
}

pub(crate) fn failed(e: MigrateError) -> StoreError {
    match e {
        MigrateError::VersionMissing(version) => StoreError::Backend(format!(
            "the database has migration {version}, which this build does not know; upgrade streamhub"
        )),
        e => StoreError::Backend(format!("migrating the metadata store failed: {e}")),
    }
}
