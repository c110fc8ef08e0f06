//! Hubs (SPEC 3): create, get, update, list, delete, duplicates, isolation.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn hub_round_trip_on_every_backend() {
    for backend in backends("hub_round_trip_on_every_backend") {
        let s = TestServer::start_on(backend).await;
        let (status, hub) = s.post("/api/v1/hubs", &s.a.portal, json!({ "name": "Support", "description": "Main support hub", "closeDormantConversation": 30 })).await;
        assert_eq!(status, StatusCode::OK, "{hub}");
        assert_eq!(hub["name"], "Support");
        assert_eq!(hub["closeDormantConversation"], 30);
        assert_eq!(hub["statusId"], 2000);
        assert_eq!(hub["tenantId"], s.a.id());
        let id = hub["hubId"].as_str().unwrap();
        let (status, got) = s.get(&format!("/api/v1/hubs/{id}"), &s.a.portal).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got, hub);
        let (status, body) = s.get(&format!("/api/v1/hubs/{id}"), &s.b.portal).await;
        assert_error(status, &body, 404, "PRT", &[105]);
        s.stop().await;
    }
}

const HUBS: &str = "/api/v1/hubs";

fn hub_path(id: &str) -> String {
    format!("{HUBS}/{id}")
}

fn agent_body(name: &str) -> serde_json::Value {
    json!({ "channelId": "Direct", "name": name, "configuration": { "integrationType": "Agent" } })
}

/// Whether `s` is an RFC 3339 UTC time such as `2026-11-21T03:14:42.123Z`.
fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() >= 20
        && s.ends_with('Z')
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
}

#[tokio::test]
async fn create_hub_applies_defaults_and_answers_every_key() {
    let s = TestServer::start().await;
    let (status, hub) = s
        .post(
            HUBS,
            &s.a.portal,
            json!({ "name": "Support", "description": "Main support hub" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hub}");
    let id = hub["hubId"].as_str().unwrap();
    let uuid = uuid::Uuid::parse_str(id).unwrap();
    assert_eq!(uuid.get_version_num(), 7, "ids are UUID v7");
    let created = hub["created"].as_str().unwrap();
    assert!(is_rfc3339_utc(created), "{created}");
    assert_eq!(
        hub,
        json!({ "hubId": id, "tenantId": s.a.id(), "name": "Support", "description": "Main support hub",
                "closeDormantConversation": 0, "statusId": 2000, "created": created, "modified": created })
    );
    // Paused on create, and an empty description, are fine; null counts as absent.
    let (status, paused) =
        s.post(HUBS, &s.a.portal, json!({ "name": "Night", "description": "", "statusId": 2002, "closeDormantConversation": null })).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(
        (
            paused["statusId"].as_i64(),
            paused["closeDormantConversation"].as_i64(),
            paused["description"].as_str()
        ),
        (Some(2002), Some(0), Some(""))
    );
    let (status, body) = s
        .post(
            HUBS,
            &s.a.portal,
            json!({ "name": "Other", "description": "d", "statusId": 2001 }),
        )
        .await;
    assert_error(status, &body, 400, "PRT", &[206]);
    let (status, body) = s
        .post(
            HUBS,
            &s.a.portal,
            json!({ "name": "Other", "description": "d", "closeDormantConversation": -1 }),
        )
        .await;
    assert_error(status, &body, 400, "PRT", &[206]);
    // Read-only keys in the body are ignored.
    let (status, body) = s
        .post(HUBS, &s.a.portal, json!({ "name": "Ro", "description": "d", "hubId": id, "tenantId": s.b.id(), "created": "2000-01-01T00:00:00Z" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(body["hubId"], id);
    assert_eq!(body["tenantId"], s.a.id());
    assert_ne!(body["created"], "2000-01-01T00:00:00Z");
    s.stop().await;
}

#[tokio::test]
async fn description_is_required_on_create() {
    let s = TestServer::start().await;
    let (status, body) = s
        .post(HUBS, &s.a.portal, json!({ "name": "Support" }))
        .await;
    assert_error(status, &body, 400, "PRT", &[301]);
    assert!(
        body["errors"][0]["description"]
            .as_str()
            .unwrap()
            .contains("'description'"),
        "{body}"
    );
    let (status, body) = s
        .post(
            HUBS,
            &s.a.portal,
            json!({ "name": "Support", "description": null }),
        )
        .await;
    assert_error(status, &body, 400, "PRT", &[301]);
    let (status, body) = s
        .post(HUBS, &s.a.portal, json!({ "description": "d" }))
        .await;
    assert_error(status, &body, 400, "PRT", &[301]);
    assert!(
        body["errors"][0]["description"]
            .as_str()
            .unwrap()
            .contains("'name'"),
        "{body}"
    );
    let (_, list) = s.get(HUBS, &s.a.portal).await;
    assert_eq!(list["total"], 0, "{list}");
    s.stop().await;
}

#[tokio::test]
async fn hub_name_is_1_to_200_characters() {
    let s = TestServer::start().await;
    let (status, body) = s
        .post(
            HUBS,
            &s.a.portal,
            json!({ "name": "a".repeat(200), "description": "d" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "a".repeat(200));
    let id = body["hubId"].as_str().unwrap().to_owned();
    for bad in ["b".repeat(201), String::new(), "   ".to_owned()] {
        let (status, body) = s
            .post(
                HUBS,
                &s.a.portal,
                json!({ "name": bad, "description": "d" }),
            )
            .await;
        assert_error(status, &body, 400, "PRT", &[206]);
        let (status, body) = s
            .put(&hub_path(&id), &s.a.portal, json!({ "name": bad }))
            .await;
        assert_error(status, &body, 400, "PRT", &[206]);
    }
    let (_, got) = s.get(&hub_path(&id), &s.a.portal).await;
    assert_eq!(
        got["name"],
        "a".repeat(200),
        "a refused rename changes nothing"
    );
    s.stop().await;
}

#[tokio::test]
async fn put_hub_changes_only_the_given_keys() {
    let s = TestServer::start().await;
    let (_, original) = s
        .post(
            HUBS,
            &s.a.portal,
            json!({ "name": "Support", "description": "Main", "closeDormantConversation": 7 }),
        )
        .await;
    let id = original["hubId"].as_str().unwrap().to_owned();
    // The update comes once the clock has moved past `modified` (millisecond times).
    let modified = switchboard_domain::time::parse_rfc3339(original["modified"].as_str().unwrap())
        .expect("modified is RFC 3339");
    until_system_time(
        std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(modified).unwrap() + 1),
    )
    .await;

    let (status, updated) = s
        .put(
            &hub_path(&id),
            &s.a.portal,
            json!({ "description": "Second line" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let mut want = original.clone();
    want["description"] = json!("Second line");
    want["modified"] = updated["modified"].clone();
    assert_eq!(updated, want, "only description and modified change");
    assert_ne!(
        updated["modified"], original["modified"],
        "modified moves on update"
    );
    assert!(updated["modified"].as_str().unwrap() > original["modified"].as_str().unwrap());
    assert_eq!(updated["created"], original["created"]);
    let (_, got) = s.get(&hub_path(&id), &s.a.portal).await;
    assert_eq!(got, updated, "the update is stored");

    // Pause it; then a bad status changes nothing.
    let (status, paused) = s
        .put(&hub_path(&id), &s.a.portal, json!({ "statusId": 2002 }))
        .await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["statusId"], 2002);
    assert_eq!(paused["name"], "Support");
    assert_eq!(paused["closeDormantConversation"], 7);
    let (status, body) = s
        .put(
            &hub_path(&id),
            &s.a.portal,
            json!({ "statusId": 2001, "description": "never stored" }),
        )
        .await;
    assert_error(status, &body, 400, "PRT", &[206]);
    let (_, got) = s.get(&hub_path(&id), &s.a.portal).await;
    assert_eq!(got, paused, "a refused update changes nothing");

    // Rename, and every writable key at once; the same name again is not a duplicate.
    let all = json!({ "name": "Sales", "description": "All", "closeDormantConversation": 0, "statusId": 2000 });
    let (status, renamed) = s.put(&hub_path(&id), &s.a.portal, all).await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(
        (renamed["name"].as_str(), renamed["description"].as_str()),
        (Some("Sales"), Some("All"))
    );
    assert_eq!(
        (
            renamed["closeDormantConversation"].as_i64(),
            renamed["statusId"].as_i64()
        ),
        (Some(0), Some(2000))
    );
    let (status, same) = s
        .put(&hub_path(&id), &s.a.portal, json!({ "name": "Sales" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["name"], "Sales");

    // An empty body and nulls change nothing but `modified`; read-only keys are ignored.
    let (status, empty) = s.put(&hub_path(&id), &s.a.portal, json!({ "name": null, "description": null, "hubId": uuid::Uuid::new_v4(), "tenantId": s.b.id() })).await;
    assert_eq!(status, StatusCode::OK, "{empty}");
    assert_eq!(
        (empty["hubId"].as_str(), empty["tenantId"].as_str()),
        (Some(id.as_str()), Some(s.a.id().as_str()))
    );
    assert_eq!(
        (empty["name"].as_str(), empty["description"].as_str()),
        (Some("Sales"), Some("All"))
    );

    // An unknown hub.
    let (status, body) = s
        .put(
            &hub_path(&uuid::Uuid::new_v4().to_string()),
            &s.a.portal,
            json!({ "name": "x" }),
        )
        .await;
    assert_error(status, &body, 404, "PRT", &[105]);
    s.stop().await;
}

#[tokio::test]
async fn list_hubs_is_paginated_oldest_first_on_every_backend() {
    for backend in backends("list_hubs_is_paginated_oldest_first_on_every_backend") {
        let s = TestServer::start_on(backend).await;
        let (status, empty) = s.get(HUBS, &s.a.portal).await;
        assert_eq!(status, StatusCode::OK, "{empty}");
        assert_eq!(
            empty,
            json!({ "pageNumber": 0, "pageSize": 50, "total": 0, "results": [] })
        );
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(s.hub(&s.a.portal, &format!("Hub {i}")).await);
        }
        // Tenant B's hubs never show in A's list.
        s.hub(&s.b.portal, "Hub of B").await;
        for (page, want) in [
            (0, &ids[0..2]),
            (1, &ids[2..4]),
            (2, &ids[4..5]),
            (3, &ids[5..5]),
        ] {
            let (status, body) = s
                .get(&format!("{HUBS}?pageNumber={page}&pageSize=2"), &s.a.portal)
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(
                (
                    body["pageNumber"].as_u64(),
                    body["pageSize"].as_u64(),
                    body["total"].as_u64()
                ),
                (Some(page), Some(2), Some(5)),
                "{body}"
            );
            let got: Vec<&str> = body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["hubId"].as_str().unwrap())
                .collect();
            assert_eq!(got, want, "page {page}");
            assert_eq!(body.as_object().unwrap().len(), 4, "{body}");
        }
        // The defaults: page 0 of 50, whole hubs, oldest first.
        let (_, all) = s.get(HUBS, &s.a.portal).await;
        assert_eq!(
            (
                all["pageNumber"].as_u64(),
                all["pageSize"].as_u64(),
                all["total"].as_u64()
            ),
            (Some(0), Some(50), Some(5))
        );
        let names: Vec<&str> = all["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Hub 0", "Hub 1", "Hub 2", "Hub 3", "Hub 4"]);
        let (_, first) = s.get(&hub_path(&ids[0]), &s.a.portal).await;
        assert_eq!(all["results"][0], first, "list items are whole hubs");
        // An update does not reorder.
        s.put(
            &hub_path(&ids[0]),
            &s.a.portal,
            json!({ "description": "touched" }),
        )
        .await;
        let (_, again) = s.get(&format!("{HUBS}?pageSize=1"), &s.a.portal).await;
        assert_eq!(again["results"][0]["hubId"], ids[0].as_str());
        s.stop().await;
    }
}

#[tokio::test]
async fn duplicate_hub_name_is_409() {
    let s = TestServer::start().await;
    let first = s.hub(&s.a.portal, "Support").await;
    let (status, body) = s
        .post(
            HUBS,
            &s.a.portal,
            json!({ "name": "Support", "description": "again" }),
        )
        .await;
    assert_error(status, &body, 409, "PRT", &[106]);
    // Renaming another hub onto the name.
    let second = s.hub(&s.a.portal, "Sales").await;
    let (status, body) = s
        .put(
            &hub_path(&second),
            &s.a.portal,
            json!({ "name": "Support", "description": "lost" }),
        )
        .await;
    assert_error(status, &body, 409, "PRT", &[106]);
    let (_, got) = s.get(&hub_path(&second), &s.a.portal).await;
    assert_eq!(
        (got["name"].as_str(), got["description"].as_str()),
        (Some("Sales"), Some("test hub")),
        "a refused rename changes nothing"
    );
    // Another tenant may use the name.
    let (status, other) = s
        .post(
            HUBS,
            &s.b.portal,
            json!({ "name": "Support", "description": "B's" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{other}");
    assert_eq!(other["tenantId"], s.b.id());
    // After a delete the name is free again.
    assert_eq!(
        s.delete(&hub_path(&first), &s.a.portal).await.0,
        StatusCode::OK
    );
    let (status, body) = s
        .put(
            &hub_path(&second),
            &s.a.portal,
            json!({ "name": "Support" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, list) = s.get(HUBS, &s.a.portal).await;
    assert_eq!(list["total"], 1, "{list}");
    s.stop().await;
}

#[tokio::test]
async fn delete_hub_answers_an_empty_body_then_404() {
    let s = TestServer::start().await;
    let id = s.hub(&s.a.portal, "Support").await;
    let keep = s.hub(&s.a.portal, "Keep").await;
    let (status, body) = s.delete(&hub_path(&id), &s.a.portal).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::Value::Null,
        "a delete answers an empty body"
    );
    let (status, body) = s.get(&hub_path(&id), &s.a.portal).await;
    assert_error(status, &body, 404, "PRT", &[105]);
    let (status, body) = s.delete(&hub_path(&id), &s.a.portal).await;
    assert_error(status, &body, 404, "PRT", &[105]);
    let (status, body) = s
        .put(&hub_path(&id), &s.a.portal, json!({ "name": "ghost" }))
        .await;
    assert_error(status, &body, 404, "PRT", &[105]);
    let (_, list) = s.get(HUBS, &s.a.portal).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["results"][0]["hubId"], keep.as_str());
    s.stop().await;
}

#[tokio::test]
async fn delete_hub_removes_its_integrations() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Support").await;
    let other = s.hub(&s.a.portal, "Other").await;
    let gone = s
        .integration(&s.a.portal, &hub, agent_body("Agent desk"))
        .await;
    let kept = s
        .integration(&s.a.portal, &other, agent_body("Agent desk"))
        .await;
    let gone_id = gone["integrationId"].as_str().unwrap();
    assert_eq!(
        s.delete(&hub_path(&hub), &s.a.portal).await.0,
        StatusCode::OK
    );
    let (status, body) = s
        .get(&format!("/api/v1/integrations/{gone_id}"), &s.a.portal)
        .await;
    assert_error(status, &body, 404, "PRT", &[6000]);
    let (status, body) = s
        .get(&format!("/api/v1/integrations?hubId={hub}"), &s.a.portal)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 0, "{body}");
    let (status, body) = s
        .get(
            &format!("/api/v1/integrations/hubs/{hub}/Direct"),
            &s.a.portal,
        )
        .await;
    assert_error(status, &body, 404, "PRT", &[105]);
    // The other hub's integration is untouched.
    let (status, body) = s
        .get(
            &format!(
                "/api/v1/integrations/{}",
                kept["integrationId"].as_str().unwrap()
            ),
            &s.a.portal,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, kept);
    let (_, all) = s.get("/api/v1/integrations", &s.a.portal).await;
    assert_eq!(all["total"], 1, "{all}");
    s.stop().await;
}

#[tokio::test]
async fn another_tenants_hub_and_integration_are_404_on_every_portal_route_on_every_backend() {
    for backend in backends(
        "another_tenants_hub_and_integration_are_404_on_every_portal_route_on_every_backend",
    ) {
        let s = TestServer::start_on(backend).await;
        let (a, b) = (&s.a.portal, &s.b.portal);
        let (_, hub) = s
            .post(
                HUBS,
                a,
                json!({ "name": "Support", "description": "A's hub" }),
            )
            .await;
        let hub_id = hub["hubId"].as_str().unwrap().to_owned();
        let integration = s.integration(a, &hub_id, agent_body("Agent desk")).await;
        let int_id = integration["integrationId"].as_str().unwrap().to_owned();
        let int_path = format!("/api/v1/integrations/{int_id}");
        // What an id that does not exist at all answers, to compare with.
        let unknown = uuid::Uuid::new_v4().to_string();

        let (status, body) = s.get(&hub_path(&hub_id), b).await;
        assert_error(status, &body, 404, "PRT", &[105]);
        assert_eq!(
            body,
            s.get(&hub_path(&unknown), b).await.1,
            "exactly as if it did not exist"
        );
        let (status, body) = s
            .put(
                &hub_path(&hub_id),
                b,
                json!({ "name": "Taken over", "statusId": 2002 }),
            )
            .await;
        assert_error(status, &body, 404, "PRT", &[105]);
        // Even an invalid update says 404, not which property is wrong.
        let (status, body) = s.put(&hub_path(&hub_id), b, json!({ "statusId": 1 })).await;
        assert_error(status, &body, 404, "PRT", &[105]);
        let (status, body) = s.delete(&hub_path(&hub_id), b).await;
        assert_error(status, &body, 404, "PRT", &[105]);

        let (status, body) = s
            .post(
                &format!("/api/v1/integrations/hubs/{hub_id}"),
                b,
                agent_body("Intruder"),
            )
            .await;
        assert_error(status, &body, 404, "PRT", &[105]);
        let (status, body) = s
            .post(
                &format!("/api/v1/integrations/hubs/{int_id}"),
                b,
                json!({ "name": "Taken over" }),
            )
            .await;
        assert_error(status, &body, 404, "PRT", &[105]);
        // An invalid body does not reveal that the hub or integration exists either.
        for target in [&hub_id, &int_id] {
            let (status, body) = s
                .post(&format!("/api/v1/integrations/hubs/{target}"), b, json!({}))
                .await;
            assert_error(status, &body, 404, "PRT", &[105]);
        }
        let (status, body) = s
            .put(&int_path, b, json!({ "statusId": 1, "channelId": "Nope" }))
            .await;
        assert_error(status, &body, 404, "PRT", &[6000]);
        let (status, body) = s.get(&int_path, b).await;
        assert_error(status, &body, 404, "PRT", &[6000]);
        assert_eq!(
            body,
            s.get(&format!("/api/v1/integrations/{unknown}"), b).await.1,
            "exactly as if it did not exist"
        );
        let (status, body) = s
            .put(
                &int_path,
                b,
                json!({ "name": "Taken over", "statusId": 3002 }),
            )
            .await;
        assert_error(status, &body, 404, "PRT", &[6000]);
        let (status, body) = s.delete(&int_path, b).await;
        assert_error(status, &body, 404, "PRT", &[6000]);
        let (status, body) = s
            .get(&format!("/api/v1/integrations/hubs/{hub_id}/Direct"), b)
            .await;
        assert_error(status, &body, 404, "PRT", &[105]);

        let (status, body) = s
            .get(&format!("/api/v1/integrations?hubId={hub_id}"), b)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({ "pageNumber": 0, "pageSize": 50, "total": 0, "results": [] })
        );
        let (_, body) = s.get("/api/v1/integrations", b).await;
        assert_eq!(body["total"], 0, "{body}");
        let (status, body) = s.get(HUBS, b).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["total"], 0, "{body}");
        assert!(!body.to_string().contains(&hub_id));

        // A's data is unchanged.
        let (status, got) = s.get(&hub_path(&hub_id), a).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got, hub);
        let (status, got) = s.get(&int_path, a).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got, integration);
        let (_, list) = s
            .get(&format!("/api/v1/integrations/hubs/{hub_id}/Direct"), a)
            .await;
        assert_eq!(list, json!([integration]));
        let (_, hubs) = s.get(HUBS, a).await;
        assert_eq!(hubs["total"], 1);
        s.stop().await;
    }
}

/// The tenant's deliveries of `query`, once `check` holds (30 s at most).
async fn deliveries_once(
    s: &TestServer,
    query: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = s
            .get(&format!("/api/v1/deliveries?{query}"), &s.a.portal)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if check(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries?{query} never got there: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn delete_hub_removes_its_pending_deliveries_and_closes_its_sockets_with_4403() {
    // A failed first attempt leaves a delivery pending for an hour.
    let schedule = switchboard::config::parse_schedule("0s,1h").unwrap();
    let s = TestServer::start_with(Backend::Sqlite, move |args| {
        args.retry_schedule = schedule;
        args.webhook_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    let mut receiver = crate::gate::Gate::start().await;
    let hook = format!("{}/hook", receiver.base);
    // Two hubs alike: each with a customer, an agent on a webhook and an agent on a socket.
    let mut hubs = Vec::new();
    for name in ["Deleted", "Kept"] {
        let hub = s.hub(&s.a.portal, name).await;
        let id = |v: serde_json::Value| v["integrationId"].as_str().unwrap().to_owned();
        let customer = id(s
            .direct(&s.a.portal, &hub, "customers", "Customer", json!({}))
            .await);
        let hooked = id(s
            .direct(
                &s.a.portal,
                &hub,
                "hooked",
                "Agent",
                json!({ "webhookUrl": hook }),
            )
            .await);
        let desk = id(s
            .direct(&s.a.portal, &hub, "desk", "Agent", json!({}))
            .await);
        let conv = s.establish(&s.a.engine, &customer, "visitor").await["conversationId"]
            .as_str()
            .unwrap()
            .to_owned();
        let everything = s.ws(&format!("iId={desk}"), Some(&s.a.engine)).await;
        let one = s
            .ws(&format!("iId={desk}&cId={conv}"), Some(&s.a.engine))
            .await;
        s.say(&s.a.engine, &conv, "hello").await;
        let attempt = receiver.next().await;
        assert_eq!(attempt.header("x-integration-id"), Some(hooked.as_str()));
        attempt.answer(500, json!({}));
        let pending = deliveries_once(&s, &format!("integrationId={hooked}"), |d| {
            d["results"][0]["attemptCount"] == 1
        })
        .await;
        assert_eq!(pending["total"], 1, "{pending}");
        assert_eq!(pending["results"][0]["status"], "pending", "{pending}");
        let delivery = pending["results"][0]["deliveryId"]
            .as_str()
            .unwrap()
            .to_owned();
        hubs.push((hub, hooked, desk, conv, everything, one, delivery));
    }
    let (kept_hub, kept_hooked, _, kept_conv, mut kept_everything, mut kept_one, kept_delivery) =
        hubs.pop().unwrap();
    let (hub, hooked, desk, _, mut everything, mut one, delivery) = hubs.pop().unwrap();
    for ws in [
        &mut everything,
        &mut one,
        &mut kept_everything,
        &mut kept_one,
    ] {
        frame(ws).await;
    }

    assert_eq!(
        s.delete(&hub_path(&hub), &s.a.portal).await.0,
        StatusCode::OK
    );
    // Its sockets are closed with 4403, and cannot come back.
    assert_eq!(close_code(&mut everything).await, (4403, 0));
    assert_eq!(close_code(&mut one).await, (4403, 0));
    let Err((status, body)) = s.ws_try(&format!("iId={desk}"), Some(&s.a.engine)).await else {
        panic!("a socket for a deleted hub's integration");
    };
    assert_error(status, &body, 404, "ENG", &[6000]);
    // Its pending delivery is gone: not listed, not to be replayed.
    let (status, body) = s
        .get(
            &format!("/api/v1/deliveries?integrationId={hooked}"),
            &s.a.portal,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 0, "{body}");
    let (status, body) = s
        .post(
            &format!("/api/v1/deliveries/{delivery}/retry"),
            &s.a.portal,
            json!({}),
        )
        .await;
    assert_error(status, &body, 404, "PRT", &[105]);
    let (_, all) = s.get("/api/v1/deliveries", &s.a.portal).await;
    assert_eq!(all["total"], 1, "{all}");
    assert_eq!(all["results"][0]["deliveryId"], kept_delivery.as_str());

    // The other hub keeps its pending delivery and its sockets: they get the next activity.
    assert_eq!(all["results"][0]["integrationId"], kept_hooked.as_str());
    assert_eq!(all["results"][0]["status"], "pending", "{all}");
    let next = s.say(&s.a.engine, &kept_conv, "still here").await;
    for ws in [&mut kept_everything, &mut kept_one] {
        assert_eq!(frame(ws).await["payload"]["activity"]["eventId"], next);
    }
    let (status, _) = s.get(&hub_path(&kept_hub), &s.a.portal).await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}
