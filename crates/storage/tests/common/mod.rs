//! What the storage test binaries share: a migrated database per test on both backends (a
//! temp-file SQLite database always, PostgreSQL when `TEST_DATABASE_URL` is set), the macro that
//! runs one test body on each, and the helpers that make tenants, hubs and integrations.
//!
//! The PostgreSQL database may be shared with other runs, so every test makes its own tenants
//! (unique names) and never drops anything.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::{json, Map, Value};
use switchboard_domain::channel::{Channel, IntegrationType};
use switchboard_domain::hub::{HubDraft, HubStatus};
use switchboard_domain::ids::TenantId;
use switchboard_domain::integration::{IntegrationDraft, IntegrationStatus};
use switchboard_storage::{EncryptionKey, Store};
use uuid::Uuid;

/// One key for every run: the PostgreSQL test database keeps one token-signing seed, sealed
/// under the key of whichever run made it first.
pub const TEST_KEY: [u8; 32] = *b"switchboard-storage-test-key-32b";

pub fn key() -> EncryptionKey {
    EncryptionKey(TEST_KEY)
}

/// A migrated database for one test; a SQLite one is deleted afterwards.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    pub dir: Option<PathBuf>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("switchboard-storage-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("test.db").display());
        let store = Store::connect(&url, key()).await.unwrap();
        store.migrate().await.unwrap();
        TestDb {
            store,
            url,
            dir: Some(dir),
        }
    }

    /// The shared PostgreSQL test database, or `None` when `TEST_DATABASE_URL` is unset; then a
    /// line names `test` as skipped, so a reader of `cargo test` sees how many did not run.
    pub async fn postgres(test: &str) -> Option<TestDb> {
        let url = match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => url,
            _ => {
                note_skipped(
                    test,
                    "PostgreSQL",
                    "TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test",
                );
                return None;
            }
        };
        let store = Store::connect(&url, key()).await.unwrap();
        assert!(store.is_postgres());
        store.migrate().await.unwrap();
        Some(TestDb {
            store,
            url,
            dir: None,
        })
    }

    /// A second, independent handle on the same database (another node).
    pub async fn reopen(&self, key: EncryptionKey) -> Store {
        Store::connect(&self.url, key).await.unwrap()
    }

    /// The SQLite database file and its WAL.
    pub fn sqlite_files(&self) -> Vec<PathBuf> {
        let dir = self.dir.as_ref().unwrap();
        vec![dir.join("test.db"), dir.join("test.db-wal")]
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs each test body `async fn name(db: &TestDb)` of the invoking file on SQLite
/// (`sqlite::name`) and PostgreSQL (`postgres::name`). An optional leading attribute replaces
/// `#[tokio::test]` (e.g. a multi-threaded runtime).
macro_rules! on_both_backends {
    (#[$test:meta] $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[$test]
                async fn $name() {
                    let db = $crate::common::TestDb::sqlite().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[$test]
                async fn $name() {
                    let test = concat!(module_path!(), "::", stringify!($name));
                    let Some(db) = $crate::common::TestDb::postgres(test).await else { return };
                    super::$name(&db).await;
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::common::on_both_backends!(#[tokio::test] $($name),*);
    };
}
pub(crate) use on_both_backends;

/// Says, past the test harness's capture, that `test` did not run on `service`, and how to run it.
/// One line per test, `SKIPPED <test> …`, which `.ci/run` counts.
pub fn note_skipped(test: &str, service: &str, variable: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test} on {service}: set {variable} to run it"
    );
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4())
}

/// A new tenant with a unique name.
pub async fn tenant(store: &Store) -> TenantId {
    store
        .create_tenant(&unique("tenant"))
        .await
        .unwrap()
        .tenant_id
}

pub fn hub_draft(name: &str) -> HubDraft {
    HubDraft {
        name: name.to_owned(),
        description: "Main support hub".to_owned(),
        close_dormant_conversation: 30,
        status: HubStatus::Active,
    }
}

/// A Direct Agent integration with a webhook and `secret` as its private signing key.
pub fn direct(name: &str, secret: &str) -> IntegrationDraft {
    let mut configuration = Map::new();
    configuration.insert("integrationType".into(), json!("Agent"));
    configuration.insert("echo".into(), json!(false));
    configuration.insert("webhookUrl".into(), json!("https://example.com/hook"));
    configuration.insert("privateSigningKey".into(), json!(secret));
    IntegrationDraft {
        name: name.to_owned(),
        channel: Channel::Direct,
        integration_type: IntegrationType::Agent,
        inbound_id: None,
        status: IntegrationStatus::Active,
        configuration,
        slack_oauth: None,
    }
}

pub fn telegram(name: &str) -> IntegrationDraft {
    let mut configuration = Map::new();
    configuration.insert("token".into(), Value::String("12345:abcdef".into()));
    IntegrationDraft {
        name: name.to_owned(),
        channel: Channel::Telegram,
        integration_type: IntegrationType::Customer,
        inbound_id: Some("12345".into()),
        status: IntegrationStatus::Active,
        configuration,
        slack_oauth: None,
    }
}
