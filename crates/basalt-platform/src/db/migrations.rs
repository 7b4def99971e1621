//! Schema migrations, registered by each module.
//!
//! A module keeps two folders, `migrations/sqlite/` and `migrations/postgres/`,
//! and lists each migration once as a [`MigrationFile`] holding both texts.
//! The two histories therefore cannot drift apart: a migration without its
//! twin does not compile. Versions are global across modules (a module
//! reserves a range, e.g. platform 1xxx, identity 2xxx), checked at start-up.
//!
//! Migrations must be backward compatible (expand, then contract in a later
//! release), because a node of the previous build may start on the newer
//! schema during a rolling deploy; applied migrations that this build does
//! not know are therefore tolerated, while an edited one is refused.
//!
//! Migrations run through sqlx's migrator (checksums, one transaction per
//! migration, an advisory lock on PostgreSQL so that several nodes starting at
//! once apply each migration exactly once) into the table
//! [`MIGRATIONS_TABLE`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migrate, MigrateError, Migration, MigrationType, Migrator};

use super::{Backend, Conn, Db};

/// Table that records applied migrations.
pub const MIGRATIONS_TABLE: &str = "basalt_schema_migrations";

/// One migration, in both dialects.
#[derive(Debug, Clone, Copy)]
pub struct MigrationFile {
    /// Global version; must be unique across all modules and increasing.
    pub version: i64,
    /// Short description, e.g. `create_users`.
    pub description: &'static str,
    /// SQL for SQLite.
    pub sqlite: &'static str,
    /// SQL for PostgreSQL.
    pub postgres: &'static str,
}

/// The migrations of one module.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    /// Module name, for messages.
    pub module: &'static str,
    /// The module's migrations in version order.
    pub files: &'static [MigrationFile],
}

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// Two modules claim the same version.
    #[error("migration version {version} is claimed by both `{first}` and `{second}`")]
    DuplicateVersion {
        /// The version.
        version: i64,
        /// First module claiming it.
        first: &'static str,
        /// Second module claiming it.
        second: &'static str,
    },
    /// The database refused or the history does not match.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// The database could not be reached.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What [`apply_migrations`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this call, in order.
    pub applied: Vec<i64>,
    /// Total migrations known to this build.
    pub known: usize,
}

/// Applies every pending migration of every module, in version order.
/// Running it again applies nothing.
pub async fn apply_migrations(
    db: &Db,
    modules: &[Migrations],
) -> Result<MigrationReport, MigrationError> {
    let mut by_version: BTreeMap<i64, (&'static str, &MigrationFile)> = BTreeMap::new();
    for module in modules {
        for file in module.files {
            if let Some((first, _)) = by_version.insert(file.version, (module.module, file)) {
                return Err(MigrationError::DuplicateVersion {
                    version: file.version,
                    first,
                    second: module.module,
                });
            }
        }
    }
    let migrations: Vec<Migration> = by_version
        .values()
        .map(|(_, file)| {
            let sql = match db.backend() {
                Backend::Sqlite => file.sqlite,
                Backend::Postgres => file.postgres,
            };
            Migration::new(
                file.version,
                Cow::Borrowed(file.description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    let known = migrations.len();
    let mut migrator = Migrator::with_migrations(migrations);
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    // Rolling deploys: a node still on the previous build may restart after a
    // newer node migrated. Migrations are written expand-then-contract, so
    // the old code runs on the newer schema; refusing to start would turn a
    // deploy into an outage.
    migrator.set_ignore_missing(true);

    let before = applied_versions(db).await?;
    match db.acquire().await? {
        Conn::Sqlite(mut conn) => migrator.run(&mut *conn).await?,
        Conn::Postgres(mut conn) => migrator.run(&mut *conn).await?,
    }
    let after = applied_versions(db).await?;
    Ok(MigrationReport {
        applied: after.into_iter().filter(|v| !before.contains(v)).collect(),
        known,
    })
}

async fn applied_versions(db: &Db) -> Result<Vec<i64>, MigrationError> {
    let applied = match db.acquire().await? {
        Conn::Sqlite(mut conn) => {
            conn.ensure_migrations_table(MIGRATIONS_TABLE).await?;
            conn.list_applied_migrations(MIGRATIONS_TABLE).await?
        }
        Conn::Postgres(mut conn) => {
            conn.ensure_migrations_table(MIGRATIONS_TABLE).await?;
            conn.list_applied_migrations(MIGRATIONS_TABLE).await?
        }
    };
    Ok(applied.into_iter().map(|m| m.version).collect())
}
