//! The two store backends every store-level suite runs against: SQLite in a temp dir, and a
//! database of its own on the shared PostgreSQL server started by the harness (a suite fails,
//! not skips, without it).

use std::sync::Arc;

use anyhow::{Context, Result};
use sallyport_gateway::control::Control;
use sallyport_gateway::store::Store;

use crate::postgres::PgServer;

/// A database URL under test; keeps its temp dir alive.
#[derive(Debug)]
pub struct Backend {
    /// `sqlite://…` or `postgres://…`.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    /// A fresh SQLite file in a temp dir.
    pub fn sqlite() -> Result<Self> {
        let dir = tempfile::tempdir().context("creating a temp dir")?;
        Ok(Self {
            url: format!("sqlite://{}", dir.path().join("t.db").display()),
            _dir: Some(dir),
        })
    }

    /// A fresh database on the shared PostgreSQL server.
    pub fn postgres() -> Result<Self> {
        let server = PgServer::shared().context("PostgreSQL is required for this suite")?;
        Ok(Self {
            url: server.fresh_database()?,
            _dir: None,
        })
    }

    /// A store on this backend, migrated, with its control plane.
    pub async fn control(&self) -> Result<Arc<Control>> {
        let store = Store::connect(&self.url).await?;
        store.migrate().await?;
        Ok(Control::open(store).await?)
    }
}

/// Runs each named `async fn(Backend)` scenario of the calling test file once on SQLite and once
/// on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $( #[tokio::test] async fn $name() {
                super::$name($crate::backends::Backend::sqlite().unwrap()).await
            } )*
        }
        mod postgres_backend {
            $( #[tokio::test] async fn $name() {
                super::$name($crate::backends::Backend::postgres().unwrap_or_else(|e| panic!("{e:#}"))).await
            } )*
        }
    };
}
