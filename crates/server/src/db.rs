//! Connecting to the database and applying migrations.

use std::time::Duration;

use mcpgate_migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use secrecy::ExposeSecret;

use crate::config::Config;

/// Name of the default SQLite file inside the data dir.
pub const SQLITE_FILE_NAME: &str = "mcpgate.db";

/// Which database a config points at, without exposing credentials.
pub fn describe(config: &Config) -> String {
    match &config.database_url {
        Some(url) if url.expose_secret().starts_with("sqlite:") => "sqlite (DATABASE_URL)".into(),
        Some(_) => "postgres (DATABASE_URL)".into(),
        None => format!(
            "sqlite {}",
            config.data_dir.join(SQLITE_FILE_NAME).display()
        ),
    }
}

/// Open the pool. SQLite gets WAL, foreign keys and a busy timeout; the data
/// dir is created when the default SQLite file is used.
pub async fn connect(config: &Config) -> Result<DatabaseConnection, DbErr> {
    // The default SQLite file is set as a path, not spliced into a URL, so a
    // data dir with spaces, `?` or `#` in its name works.
    let (url, sqlite_file) = match &config.database_url {
        Some(url) => (url.expose_secret().to_owned(), None),
        None => {
            crate::master_key::create_private_dir(&config.data_dir).map_err(|e| {
                DbErr::Custom(format!(
                    "cannot create data dir {}: {e}",
                    config.data_dir.display()
                ))
            })?;
            let path = config.data_dir.join(SQLITE_FILE_NAME);
            // A placeholder URL: the real path is set on the options below.
            ("sqlite://mcpgate.db".to_owned(), Some(path))
        }
    };
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(config.database_max_connections)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |o| {
            let o = match &sqlite_file {
                Some(path) => o.filename(path).create_if_missing(true),
                None => o,
            };
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
    Database::connect(options).await
}

/// Apply every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Begin a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`:
/// the write lock is taken (waiting up to the busy timeout) before any read,
/// so a concurrent writer makes it wait instead of failing with "database is
/// locked" when a read snapshot would have to be upgraded. Postgres ignores
/// the mode.
pub async fn begin_write(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// The pool's size and idle connections, for `/metrics`.
pub fn pool_stats(db: &DatabaseConnection) -> Option<(u32, u32)> {
    use sea_orm::DbBackend;
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let p = db.get_sqlite_connection_pool();
            Some((p.size(), p.num_idle() as u32))
        }
        DbBackend::Postgres => {
            let p = db.get_postgres_connection_pool();
            Some((p.size(), p.num_idle() as u32))
        }
        _ => None,
    }
}
