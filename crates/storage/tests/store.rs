//! Storage behaviour, the same test bodies on both backends: a temp-file SQLite database always,
//! and PostgreSQL when `TEST_DATABASE_URL` is set (the harness is in `common`). The PostgreSQL
//! database may be shared with other runs, so every test makes its own tenants (unique names)
//! and never drops anything.

#![allow(clippy::unwrap_used)] // a failing unwrap is a failing test

mod common;

use common::{direct, hub_draft, key, on_both_backends, telegram, tenant, unique, TestDb};
use switchboard_domain::channel::{Channel, IntegrationType};
use switchboard_domain::hub::{HubDraft, HubStatus};
use switchboard_domain::identity::{hash_secret, Scope};
use switchboard_domain::ids::{ClientId, HubId, IntegrationId, SecretId};
use switchboard_domain::integration::IntegrationStatus;
use switchboard_domain::paging::PageRequest;
use switchboard_domain::time::now_millis;
use switchboard_storage::{EncryptionKey, Error, Store};

on_both_backends!(
    migrations_are_idempotent,
    ping_answers,
    new_tenant_logs_in_by_secret_hash,
    duplicate_tenant_name_is_conflict,
    expired_secret_is_refused,
    revoked_secret_is_inactive,
    clients_are_isolated,
    token_seed_is_stable_across_stores,
    hub_crud,
    duplicate_hub_name_is_conflict,
    hubs_of_another_tenant_are_not_found,
    hubs_page_oldest_first_with_total,
    integration_crud,
    duplicate_integration_name_is_conflict,
    integrations_of_another_tenant_are_not_found,
    integrations_page_oldest_first_with_total,
    delete_hub_removes_its_integrations,
    configuration_needs_the_right_key,
    another_handle_reads_at_once_what_was_committed,
);

/// Reads outside a transaction run inline on a SQLite file, on connections of their own (see
/// the storage crate's `sqlite::reads` module): they must see every write committed before them,
/// through any handle, with every column type and NULL as the pool reads them.
async fn another_handle_reads_at_once_what_was_committed(db: &TestDb) {
    let other = db.reopen(key()).await;
    let t = tenant(&db.store).await;
    let hub = db.store.create_hub(t, &hub_draft("Support")).await.unwrap();
    assert_eq!(other.get_hub(t, hub.id).await.unwrap(), hub);
    for round in 0..20 {
        let draft = if round % 2 == 0 {
            direct(&format!("Desk {round}"), "AB".repeat(32).as_str())
        } else {
            telegram(&format!("Telegram {round}"))
        };
        let created = db
            .store
            .create_integration(t, hub.id, &draft)
            .await
            .unwrap();
        assert_eq!(other.get_integration(t, created.id).await.unwrap(), created);
        assert_eq!(
            other.find_integration_by_id(created.id).await.unwrap(),
            Some(created.clone())
        );
        let mut paused = draft.clone();
        paused.status = IntegrationStatus::Paused;
        let updated = db
            .store
            .update_integration(t, created.id, &paused)
            .await
            .unwrap();
        assert_eq!(other.get_integration(t, created.id).await.unwrap(), updated);
        db.store.delete_integration(t, created.id).await.unwrap();
        assert_eq!(other.find_integration(t, created.id).await.unwrap(), None);
    }
    // Another tenant's id reads as absent on every path.
    let stranger = tenant(&db.store).await;
    assert!(matches!(
        other.get_hub(stranger, hub.id).await,
        Err(Error::NotFound)
    ));
}

fn page(number: u64, size: u64) -> PageRequest {
    PageRequest { number, size }
}

async fn migrations_are_idempotent(db: &TestDb) {
    db.store.migrate().await.unwrap();
    // Two nodes starting at once: on PostgreSQL they take turns on the advisory lock.
    let other = db.reopen(key()).await;
    let (a, b) = tokio::join!(db.store.migrate(), other.migrate());
    a.unwrap();
    b.unwrap();
    tenant(&db.store).await;
}

async fn ping_answers(db: &TestDb) {
    db.store.ping().await.unwrap();
}

/// `/readyz` relies on `ping` failing when the database is gone: a PostgreSQL database dropped
/// under a live store (its connections terminated) makes `ping` an error, not a hang.
#[tokio::test]
async fn ping_fails_once_the_postgres_database_is_gone() {
    use sea_orm::ConnectionTrait;
    let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
        return common::note_skipped(
            "ping_fails_once_the_postgres_database_is_gone",
            "PostgreSQL",
            "TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test",
        );
    };
    let name = format!("sb_ping_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(&admin).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = std::env::var("TEST_DATABASE_URL").unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    let store = Store::connect(&format!("{base}/{name}"), key())
        .await
        .unwrap();
    store
        .ping()
        .await
        .expect("ping while the database is there");

    admin
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();

    let result = tokio::time::timeout(std::time::Duration::from_secs(60), store.ping())
        .await
        .expect("ping must fail, not hang");
    assert!(
        matches!(result, Err(Error::Db(_))),
        "ping answered {result:?} with its database dropped"
    );
}

async fn new_tenant_logs_in_by_secret_hash(db: &TestDb) {
    let new = db.store.create_tenant(&unique("tenant")).await.unwrap();
    assert!(db.store.count_tenants().await.unwrap() >= 1);
    let now = now_millis();

    let portal = db
        .store
        .find_login(
            new.portal.client_id,
            &hash_secret(&new.portal.client_secret),
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(portal.tenant_id, new.tenant_id);
    assert_eq!(portal.client_id, new.portal.client_id);
    assert_eq!(portal.scope, Scope::Portal);
    assert!(db
        .store
        .secret_is_active(portal.secret_id, now)
        .await
        .unwrap());

    let engine = db
        .store
        .find_login(
            new.engine.client_id,
            &hash_secret(&new.engine.client_secret),
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(engine.scope, Scope::Engine);
    assert_eq!(engine.tenant_id, new.tenant_id);

    // A wrong secret, or a right secret with the other client's id, is no login.
    let wrong = hash_secret("not the secret");
    assert_eq!(
        db.store
            .find_login(new.portal.client_id, &wrong, now)
            .await
            .unwrap(),
        None
    );
    let crossed = hash_secret(&new.engine.client_secret);
    assert_eq!(
        db.store
            .find_login(new.portal.client_id, &crossed, now)
            .await
            .unwrap(),
        None
    );

    let client = db
        .store
        .get_client(new.tenant_id, new.portal.client_id)
        .await
        .unwrap();
    assert_eq!(client.tenant_id, new.tenant_id);
    assert_eq!(client.name, "portal");
    assert!(client.enabled);
    assert_eq!(client.allowed_scopes, vec![Scope::Portal]);
    assert_eq!(client.secrets.len(), 1);
    assert_eq!(client.secrets[0].id, portal.secret_id);
    assert_eq!(client.secrets[0].name, "default");
    assert_eq!(
        client.secrets[0].preview,
        format!("{}...", &new.portal.client_secret[..6])
    );
    assert_eq!(client.secrets[0].expiration, None);
    let engine_client = db
        .store
        .get_client(new.tenant_id, new.engine.client_id)
        .await
        .unwrap();
    assert_eq!(
        (engine_client.name.as_str(), engine_client.allowed_scopes),
        ("engine", vec![Scope::Engine])
    );
}

async fn duplicate_tenant_name_is_conflict(db: &TestDb) {
    let name = unique("tenant");
    let before = db.store.count_tenants().await.unwrap();
    db.store.create_tenant(&name).await.unwrap();
    assert!(matches!(
        db.store.create_tenant(&name).await,
        Err(Error::Conflict)
    ));
    if !db.store.is_postgres() {
        // Alone on its database: the refused tenant left nothing behind.
        assert_eq!(db.store.count_tenants().await.unwrap(), before + 1);
    }
}

async fn expired_secret_is_refused(db: &TestDb) {
    let new = db.store.create_tenant(&unique("tenant")).await.unwrap();
    let now = now_millis();
    let client = new.portal.client_id;

    let (info, secret) = db
        .store
        .add_secret(new.tenant_id, client, "short-lived", Some(now + 60_000))
        .await
        .unwrap();
    assert_eq!(info.expiration, Some(now + 60_000));
    assert_eq!(info.preview, format!("{}...", &secret[..6]));
    let hash = hash_secret(&secret);
    assert!(db
        .store
        .find_login(client, &hash, now)
        .await
        .unwrap()
        .is_some());
    assert!(db.store.secret_is_active(info.id, now).await.unwrap());
    // From its expiration on, it is refused.
    assert_eq!(
        db.store
            .find_login(client, &hash, now + 60_000)
            .await
            .unwrap(),
        None
    );
    assert!(!db
        .store
        .secret_is_active(info.id, now + 60_000)
        .await
        .unwrap());

    let (past, old) = db
        .store
        .add_secret(new.tenant_id, client, "already-expired", Some(now - 1))
        .await
        .unwrap();
    assert_eq!(
        db.store
            .find_login(client, &hash_secret(&old), now)
            .await
            .unwrap(),
        None
    );
    assert!(!db.store.secret_is_active(past.id, now).await.unwrap());

    let names: Vec<_> = db
        .store
        .get_client(new.tenant_id, client)
        .await
        .unwrap()
        .secrets
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["default", "short-lived", "already-expired"]);
}

async fn revoked_secret_is_inactive(db: &TestDb) {
    let new = db.store.create_tenant(&unique("tenant")).await.unwrap();
    let client = new.engine.client_id;
    let now = now_millis();
    let (info, secret) = db
        .store
        .add_secret(new.tenant_id, client, "ci", None)
        .await
        .unwrap();
    let login = db
        .store
        .find_login(client, &hash_secret(&secret), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(login.secret_id, info.id);

    db.store
        .revoke_secret(new.tenant_id, client, info.id)
        .await
        .unwrap();
    assert!(!db.store.secret_is_active(info.id, now).await.unwrap());
    assert_eq!(
        db.store
            .find_login(client, &hash_secret(&secret), now)
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        db.store.revoke_secret(new.tenant_id, client, info.id).await,
        Err(Error::NotFound)
    ));
    // The other secret is untouched.
    let client_out = db.store.get_client(new.tenant_id, client).await.unwrap();
    assert_eq!(client_out.secrets.len(), 1);
    assert_eq!(client_out.secrets[0].name, "default");
    // A secret of another client of the same tenant is not found through this one.
    let default_id = client_out.secrets[0].id;
    assert!(matches!(
        db.store
            .revoke_secret(new.tenant_id, new.portal.client_id, default_id)
            .await,
        Err(Error::NotFound)
    ));
    assert!(db.store.secret_is_active(default_id, now).await.unwrap());
    assert!(!db
        .store
        .secret_is_active(SecretId::new(), now)
        .await
        .unwrap());
}

async fn clients_are_isolated(db: &TestDb) {
    let a = db.store.create_tenant(&unique("tenant")).await.unwrap();
    let b = tenant(&db.store).await;
    let client = a.portal.client_id;
    assert!(matches!(
        db.store.get_client(b, client).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        db.store.add_secret(b, client, "x", None).await,
        Err(Error::NotFound)
    ));
    let secret = db
        .store
        .get_client(a.tenant_id, client)
        .await
        .unwrap()
        .secrets[0]
        .id;
    assert!(matches!(
        db.store.revoke_secret(b, client, secret).await,
        Err(Error::NotFound)
    ));
    assert!(db
        .store
        .secret_is_active(secret, now_millis())
        .await
        .unwrap());
    assert!(matches!(
        db.store.get_client(a.tenant_id, ClientId::new()).await,
        Err(Error::NotFound)
    ));
}

async fn token_seed_is_stable_across_stores(db: &TestDb) {
    // Two nodes asking at once (the first time, on a fresh SQLite database) agree.
    let other = db.reopen(key()).await;
    let (a, b) = tokio::join!(db.store.token_signing_seed(), other.token_signing_seed());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert_ne!(a, [0u8; 32]);
    // And again later, from yet another handle (a restart).
    let restarted = db.reopen(key()).await;
    assert_eq!(restarted.token_signing_seed().await.unwrap(), a);
    assert_eq!(db.store.token_signing_seed().await.unwrap(), a);
}

async fn hub_crud(db: &TestDb) {
    let t = tenant(&db.store).await;
    let created = db.store.create_hub(t, &hub_draft("Support")).await.unwrap();
    assert_eq!(created.tenant_id, t);
    assert_eq!(created.name, "Support");
    assert_eq!(created.close_dormant_conversation, 30);
    assert_eq!(created.status, HubStatus::Active);
    assert_eq!(created.created, created.modified);
    assert_eq!(db.store.get_hub(t, created.id).await.unwrap(), created);
    assert_eq!(
        db.store.find_hub(t, created.id).await.unwrap(),
        Some(created.clone())
    );

    let draft = HubDraft {
        name: "Sales".into(),
        description: String::new(),
        close_dormant_conversation: 0,
        status: HubStatus::Paused,
    };
    let updated = db.store.update_hub(t, created.id, &draft).await.unwrap();
    assert_eq!((updated.id, updated.created), (created.id, created.created));
    assert_eq!(updated.name, "Sales");
    assert_eq!(updated.description, "");
    assert_eq!(updated.status, HubStatus::Paused);
    assert!(updated.modified >= created.modified);
    assert_eq!(db.store.get_hub(t, created.id).await.unwrap(), updated);
    // Keeping its own name is no conflict.
    let again = db.store.update_hub(t, created.id, &draft).await.unwrap();
    assert!(again.modified >= updated.modified);

    let listed = db.store.list_hubs(t, page(0, 50)).await.unwrap();
    assert_eq!(listed.total, 1);
    assert_eq!(listed.results, vec![again]);

    db.store.delete_hub(t, created.id).await.unwrap();
    assert_eq!(db.store.find_hub(t, created.id).await.unwrap(), None);
    assert!(matches!(
        db.store.get_hub(t, created.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        db.store.delete_hub(t, created.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        db.store.update_hub(t, created.id, &draft).await,
        Err(Error::NotFound)
    ));
    assert_eq!(db.store.list_hubs(t, page(0, 50)).await.unwrap().total, 0);
}

async fn duplicate_hub_name_is_conflict(db: &TestDb) {
    let t = tenant(&db.store).await;
    db.store.create_hub(t, &hub_draft("Support")).await.unwrap();
    assert!(matches!(
        db.store.create_hub(t, &hub_draft("Support")).await,
        Err(Error::Conflict)
    ));
    let sales = db.store.create_hub(t, &hub_draft("Sales")).await.unwrap();
    assert!(matches!(
        db.store
            .update_hub(t, sales.id, &hub_draft("Support"))
            .await,
        Err(Error::Conflict)
    ));
    assert_eq!(db.store.get_hub(t, sales.id).await.unwrap().name, "Sales");
    assert_eq!(db.store.list_hubs(t, page(0, 50)).await.unwrap().total, 2);
    // Names are unique per tenant only.
    let other = tenant(&db.store).await;
    db.store
        .create_hub(other, &hub_draft("Support"))
        .await
        .unwrap();
}

async fn hubs_of_another_tenant_are_not_found(db: &TestDb) {
    let a = tenant(&db.store).await;
    let b = tenant(&db.store).await;
    let hub = db.store.create_hub(a, &hub_draft("Support")).await.unwrap();
    let own = db.store.create_hub(b, &hub_draft("Own")).await.unwrap();

    assert_eq!(db.store.find_hub(b, hub.id).await.unwrap(), None);
    assert!(matches!(
        db.store.get_hub(b, hub.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        db.store.update_hub(b, hub.id, &hub_draft("Taken")).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        db.store.delete_hub(b, hub.id).await,
        Err(Error::NotFound)
    ));
    let listed = db.store.list_hubs(b, page(0, 50)).await.unwrap();
    assert_eq!(listed.total, 1);
    assert_eq!(listed.results, vec![own]);
    // Untouched for its owner.
    assert_eq!(db.store.get_hub(a, hub.id).await.unwrap(), hub);
}

async fn hubs_page_oldest_first_with_total(db: &TestDb) {
    let t = tenant(&db.store).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            db.store
                .create_hub(t, &hub_draft(&format!("hub {i}")))
                .await
                .unwrap()
                .id,
        );
    }
    let mut seen: Vec<HubId> = Vec::new();
    for (number, expected) in [(0, 2), (1, 2), (2, 1), (3, 0)] {
        let p = db.store.list_hubs(t, page(number, 2)).await.unwrap();
        assert_eq!((p.number, p.size, p.total), (number, 2, 5));
        assert_eq!(p.results.len(), expected);
        seen.extend(p.results.iter().map(|h| h.id));
    }
    assert_eq!(seen, ids);
    let all = db.store.list_hubs(t, page(0, 100)).await.unwrap();
    let names: Vec<_> = all.results.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["hub 0", "hub 1", "hub 2", "hub 3", "hub 4"]);
}

async fn integration_crud(db: &TestDb) {
    let t = tenant(&db.store).await;
    let hub = db.store.create_hub(t, &hub_draft("Support")).await.unwrap();
    let draft = direct("Agent desk", "AA".repeat(32).as_str());
    let created = db
        .store
        .create_integration(t, hub.id, &draft)
        .await
        .unwrap();
    assert_eq!((created.tenant_id, created.hub_id), (t, hub.id));
    assert_eq!(created.channel, Channel::Direct);
    assert_eq!(created.integration_type, IntegrationType::Agent);
    assert_eq!(created.configuration, draft.configuration);
    assert_eq!(
        db.store.get_integration(t, created.id).await.unwrap(),
        created
    );
    assert_eq!(
        db.store.find_integration(t, created.id).await.unwrap(),
        Some(created.clone())
    );

    // The channel never changes, whatever the draft says; everything else is replaced.
    let mut change = telegram("Bot desk");
    change.integration_type = IntegrationType::Bot;
    change.status = IntegrationStatus::Paused;
    let updated = db
        .store
        .update_integration(t, created.id, &change)
        .await
        .unwrap();
    assert_eq!(updated.channel, Channel::Direct);
    assert_eq!(updated.name, "Bot desk");
    assert_eq!(updated.integration_type, IntegrationType::Bot);
    assert_eq!(updated.inbound_id.as_deref(), Some("12345"));
    assert_eq!(updated.status, IntegrationStatus::Paused);
    assert_eq!(updated.configuration, change.configuration);
    assert_eq!(updated.created, created.created);
    assert!(updated.modified >= created.modified);
    assert_eq!(
        db.store.get_integration(t, created.id).await.unwrap(),
        updated
    );

    let tg = db
        .store
        .create_integration(t, hub.id, &telegram("Telegram"))
        .await
        .unwrap();
    let all = db
        .store
        .list_hub_integrations(t, hub.id, None)
        .await
        .unwrap();
    assert_eq!(all, vec![updated.clone(), tg.clone()]);
    let only_tg = db
        .store
        .list_hub_integrations(t, hub.id, Some(Channel::Telegram))
        .await
        .unwrap();
    assert_eq!(only_tg, vec![tg.clone()]);
    assert!(db
        .store
        .list_hub_integrations(t, hub.id, Some(Channel::Slack))
        .await
        .unwrap()
        .is_empty());

    db.store.delete_integration(t, created.id).await.unwrap();
    assert_eq!(
        db.store.find_integration(t, created.id).await.unwrap(),
        None
    );
    assert!(matches!(
        db.store.get_integration(t, created.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        db.store.delete_integration(t, created.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        db.store.update_integration(t, created.id, &change).await,
        Err(Error::NotFound)
    ));
    assert_eq!(
        db.store
            .list_hub_integrations(t, hub.id, None)
            .await
            .unwrap(),
        vec![tg]
    );
    assert!(matches!(
        db.store
            .create_integration(t, HubId::new(), &telegram("nowhere"))
            .await,
        Err(Error::NotFound)
    ));
}

async fn duplicate_integration_name_is_conflict(db: &TestDb) {
    let t = tenant(&db.store).await;
    let hub = db.store.create_hub(t, &hub_draft("Support")).await.unwrap();
    let other_hub = db.store.create_hub(t, &hub_draft("Sales")).await.unwrap();
    db.store
        .create_integration(t, hub.id, &telegram("Telegram"))
        .await
        .unwrap();
    assert!(matches!(
        db.store
            .create_integration(t, hub.id, &direct("Telegram", "x"))
            .await,
        Err(Error::Conflict)
    ));
    // Names are unique per hub only.
    db.store
        .create_integration(t, other_hub.id, &telegram("Telegram"))
        .await
        .unwrap();
    let desk = db
        .store
        .create_integration(t, hub.id, &direct("Desk", "x"))
        .await
        .unwrap();
    assert!(matches!(
        db.store
            .update_integration(t, desk.id, &direct("Telegram", "y"))
            .await,
        Err(Error::Conflict)
    ));
    assert_eq!(db.store.get_integration(t, desk.id).await.unwrap(), desk);
}

async fn integrations_of_another_tenant_are_not_found(db: &TestDb) {
    let a = tenant(&db.store).await;
    let b = tenant(&db.store).await;
    let hub = db.store.create_hub(a, &hub_draft("Support")).await.unwrap();
    let i = db
        .store
        .create_integration(a, hub.id, &direct("Desk", "x"))
        .await
        .unwrap();

    assert_eq!(db.store.find_integration(b, i.id).await.unwrap(), None);
    assert!(matches!(
        db.store.get_integration(b, i.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        db.store
            .update_integration(b, i.id, &direct("Mine", "y"))
            .await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        db.store.delete_integration(b, i.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        db.store
            .create_integration(b, hub.id, &direct("Intruder", "z"))
            .await,
        Err(Error::NotFound)
    ));
    assert_eq!(
        db.store
            .list_integrations(b, None, page(0, 50))
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        db.store
            .list_integrations(b, Some(hub.id), page(0, 50))
            .await
            .unwrap()
            .total,
        0
    );
    assert!(db
        .store
        .list_hub_integrations(b, hub.id, None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(db.store.get_integration(a, i.id).await.unwrap(), i);
    assert_eq!(
        db.store
            .list_hub_integrations(a, hub.id, None)
            .await
            .unwrap(),
        vec![i]
    );
}

async fn integrations_page_oldest_first_with_total(db: &TestDb) {
    let t = tenant(&db.store).await;
    let first = db.store.create_hub(t, &hub_draft("First")).await.unwrap();
    let second = db.store.create_hub(t, &hub_draft("Second")).await.unwrap();
    let mut ids: Vec<IntegrationId> = Vec::new();
    for i in 0..4 {
        let hub = if i % 2 == 0 { first.id } else { second.id };
        ids.push(
            db.store
                .create_integration(t, hub, &telegram(&format!("tg {i}")))
                .await
                .unwrap()
                .id,
        );
    }
    let p0 = db
        .store
        .list_integrations(t, None, page(0, 3))
        .await
        .unwrap();
    let p1 = db
        .store
        .list_integrations(t, None, page(1, 3))
        .await
        .unwrap();
    assert_eq!(
        (p0.total, p0.results.len(), p1.total, p1.results.len()),
        (4, 3, 4, 1)
    );
    let seen: Vec<_> = p0.results.iter().chain(&p1.results).map(|i| i.id).collect();
    assert_eq!(seen, ids);

    let of_second = db
        .store
        .list_integrations(t, Some(second.id), page(0, 50))
        .await
        .unwrap();
    assert_eq!(of_second.total, 2);
    let seen: Vec<_> = of_second.results.iter().map(|i| i.id).collect();
    assert_eq!(seen, vec![ids[1], ids[3]]);
}

async fn delete_hub_removes_its_integrations(db: &TestDb) {
    let t = tenant(&db.store).await;
    let doomed = db.store.create_hub(t, &hub_draft("Doomed")).await.unwrap();
    let kept = db.store.create_hub(t, &hub_draft("Kept")).await.unwrap();
    let gone1 = db
        .store
        .create_integration(t, doomed.id, &direct("Desk", "x"))
        .await
        .unwrap();
    let gone2 = db
        .store
        .create_integration(t, doomed.id, &telegram("Telegram"))
        .await
        .unwrap();
    let stays = db
        .store
        .create_integration(t, kept.id, &telegram("Telegram"))
        .await
        .unwrap();

    db.store.delete_hub(t, doomed.id).await.unwrap();
    for gone in [gone1.id, gone2.id] {
        assert!(matches!(
            db.store.get_integration(t, gone).await,
            Err(Error::NotFound)
        ));
    }
    let left = db
        .store
        .list_integrations(t, None, page(0, 50))
        .await
        .unwrap();
    assert_eq!(left.total, 1);
    assert_eq!(left.results, vec![stays]);
    // The name is free again once the hub is gone.
    let again = db.store.create_hub(t, &hub_draft("Doomed")).await.unwrap();
    db.store
        .create_integration(t, again.id, &direct("Desk", "x"))
        .await
        .unwrap();
}

async fn configuration_needs_the_right_key(db: &TestDb) {
    let t = tenant(&db.store).await;
    let hub = db.store.create_hub(t, &hub_draft("Support")).await.unwrap();
    let i = db
        .store
        .create_integration(t, hub.id, &direct("Desk", "x"))
        .await
        .unwrap();
    let wrong = db.reopen(EncryptionKey::generate()).await;
    assert!(matches!(
        wrong.get_integration(t, i.id).await,
        Err(Error::Db(_))
    ));
    // The rows themselves are still there for the right key.
    assert_eq!(wrong.get_hub(t, hub.id).await.unwrap(), hub);
    assert_eq!(db.store.get_integration(t, i.id).await.unwrap(), i);
}

/// SPEC 3 "Credentials at rest": the database files alone reveal no channel secret and no client
/// secret, while plain columns are there to be found (so the search itself works).
#[tokio::test]
async fn sqlite_files_reveal_no_secrets() {
    let db = TestDb::sqlite().await;
    let new = db.store.create_tenant(&unique("tenant")).await.unwrap();
    let hub = db
        .store
        .create_hub(new.tenant_id, &hub_draft("Support"))
        .await
        .unwrap();
    db.store
        .create_integration(
            new.tenant_id,
            hub.id,
            &direct("PLAINNAMEMARKER", "SUPERSECRETVALUE123"),
        )
        .await
        .unwrap();
    db.store.token_signing_seed().await.unwrap();

    assert!(db.sqlite_files()[1].exists(), "WAL journal mode");
    let mut bytes = Vec::new();
    for file in db.sqlite_files() {
        if let Ok(content) = std::fs::read(&file) {
            bytes.extend(content);
        }
    }
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(b"PLAINNAMEMARKER"),
        "the search should see plain columns"
    );
    assert!(
        !contains(b"SUPERSECRETVALUE123"),
        "a channel secret is readable in the file"
    );
    assert!(
        !contains(b"privateSigningKey"),
        "configuration keys are readable in the file"
    );
    assert!(
        !contains(new.portal.client_secret.as_bytes()),
        "a client secret is in the file"
    );
    assert!(
        !contains(new.engine.client_secret.as_bytes()),
        "a client secret is in the file"
    );
}

/// An in-memory database keeps its rows across calls (one connection, never recycled).
#[tokio::test]
async fn in_memory_sqlite_keeps_its_rows() {
    let store = Store::connect("sqlite::memory:", key()).await.unwrap();
    assert!(!store.is_postgres());
    store.migrate().await.unwrap();
    assert_eq!(store.count_tenants().await.unwrap(), 0);
    let new = store.create_tenant("default").await.unwrap();
    assert_eq!(store.count_tenants().await.unwrap(), 1);
    let t = new.tenant_id;
    let hub = store.create_hub(t, &hub_draft("Support")).await.unwrap();
    assert_eq!(store.get_hub(t, hub.id).await.unwrap(), hub);
    let integration = store
        .create_integration(t, hub.id, &telegram("Telegram"))
        .await
        .unwrap();
    assert_eq!(
        store.get_integration(t, integration.id).await.unwrap(),
        integration
    );
    assert!(matches!(
        store.create_tenant("default").await,
        Err(Error::Conflict)
    ));
}

#[tokio::test]
async fn unsupported_url_is_an_error() {
    assert!(matches!(
        Store::connect("mysql://localhost/x", key()).await,
        Err(Error::Db(_))
    ));
}
