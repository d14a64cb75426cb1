//! Reaching PostgreSQL: [`PgConfig`], the pool (statement timeout and `application_name` on every connection, an
//! optional schema of its own), the embedded migrations run at start, and shutdown. Nothing here reads or writes
//! HQ's data.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::PgStore;
use crate::hq::rows::HqError;

/// The migrations of the PostgreSQL store, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/hq");

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `postgres://user@host:port/database` (any libpq-style URL sqlx accepts).
    pub url: String,
    /// A schema to use instead of the default search path (created when missing). Tests give each run its own.
    pub schema: Option<String>,
    /// Largest number of pooled connections of this process.
    pub max_connections: u32,
    /// Statement timeout set on every connection.
    pub statement_timeout: Duration,
    /// How long a request waits for a pooled connection before HQ answers 503.
    pub acquire_timeout: Duration,
    /// `application_name` of HQ's sessions (shown in `pg_stat_activity`).
    pub application_name: String,
}

impl PgConfig {
    /// Defaults for a URL: 8 connections, 30 s statement timeout, 5 s acquire timeout, default schema.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            schema: None,
            max_connections: 8,
            statement_timeout: Duration::from_secs(30),
            acquire_timeout: Duration::from_secs(5),
            application_name: "guidedesk-hq".into(),
        }
    }
}
fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}
impl PgStore {
    /// Connects (with a pool), creates the schema when one is named, and runs the embedded migrations.
    pub fn connect(cfg: &PgConfig) -> Result<PgStore, HqError> {
        if let Some(s) = &cfg.schema
            && !valid_schema(s)
        {
            return Err(HqError::Refused(format!(
                "database schema {s:?} is not valid: use lower-case letters, digits and _, starting with a letter"
            )));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hq-pg")
            .enable_all()
            .build()
            .map_err(|e| HqError::Refused(format!("cannot start the database runtime: {e}")))?;
        let handle = rt.handle().clone();
        let pool = handle.block_on(Self::open_pool(cfg))?;
        Ok(PgStore { pool, rt: Some(rt), handle, screens: Arc::default() })
    }

    async fn open_pool(cfg: &PgConfig) -> Result<PgPool, HqError> {
        let base = PgConnectOptions::from_str(&cfg.url)
            .map_err(|e| HqError::Refused(format!("database URL is not valid: {e}")))?;
        if let Some(schema) = &cfg.schema {
            let mut c = sqlx::ConnectOptions::connect(&base).await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).execute(&mut c).await?;
            sqlx::Connection::close(c).await?;
        }
        let mut opts: Vec<(&str, String)> =
            vec![("statement_timeout", format!("{}", cfg.statement_timeout.as_millis()))];
        if let Some(schema) = &cfg.schema {
            opts.push(("search_path", schema.clone()));
        }
        let connect = base.options(opts.iter().map(|(k, v)| (*k, v.as_str()))).application_name(&cfg.application_name);
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections.max(1))
            .acquire_timeout(cfg.acquire_timeout)
            .connect_with(connect)
            .await?;
        MIGRATOR.run(&pool).await.map_err(|e| HqError::Migrate(e.to_string()))?;
        Ok(pool)
    }

    /// Closes the pool: waits for connections in use to come back, then closes them all.
    pub fn close(&self) {
        if tokio::runtime::Handle::try_current().is_err() {
            self.handle.block_on(self.pool.close());
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.close();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
