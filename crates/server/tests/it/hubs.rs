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
