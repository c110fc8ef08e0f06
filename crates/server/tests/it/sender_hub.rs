//! A sender named by `sender.integrationId` must be an integration of the conversation's hub:
//! an Agent or Bot of another hub of the same tenant exists, so it is refused with 400/206
//! naming the rule; another tenant's integration does not exist for this one (404/6000).

use serde_json::{json, Value};

use crate::support::{assert_error, TestServer};

fn from(sender: &str) -> Value {
    json!({ "type": "message", "sender": { "integrationId": sender },
            "message": { "type": "text", "text": "hello" } })
}

fn id(v: &Value) -> String {
    v["integrationId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_sender_of_another_hub_is_400_and_of_another_tenant_404() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "home").await;
    let customer = id(&s
        .direct(&s.a.portal, &hub, "customers", "Customer", json!({}))
        .await);
    s.direct(&s.a.portal, &hub, "agents", "Agent", json!({}))
        .await;
    let c = s.establish(&s.a.engine, &customer, "cust").await;
    let conversation = c["conversationId"].as_str().unwrap().to_owned();

    let elsewhere = s.hub(&s.a.portal, "elsewhere").await;
    for kind in ["Agent", "Bot"] {
        let other = id(&s
            .direct(&s.a.portal, &elsewhere, kind, kind, json!({}))
            .await);
        let (st, b) = s.send(&s.a.engine, &conversation, from(&other)).await;
        assert_error(st, &b, 400, "ENG", &[206]);
        assert_eq!(
            b["errors"][0]["description"],
            format!(
                "Integration '{other}' belongs to another hub: the sender must be an integration \
                 of the conversation's hub. (code: ENG000206)"
            ),
            "{kind}"
        );
    }

    let b_hub = s.hub(&s.b.portal, "theirs").await;
    let foreign = id(&s
        .direct(&s.b.portal, &b_hub, "agents", "Agent", json!({}))
        .await);
    let (st, b) = s.send(&s.a.engine, &conversation, from(&foreign)).await;
    assert_error(st, &b, 404, "ENG", &[6000]);
    assert_eq!(
        b["errors"][0]["description"],
        format!("Integration '{foreign}' does not exist. (code: ENG006000)")
    );

    // Nothing was stored by the refusals: the conversation still works for its own hub.
    s.say(&s.a.engine, &conversation, "still here").await;
    s.stop().await;
}
