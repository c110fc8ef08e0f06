//! The Smooch-compatible API's keys and tokens (SPEC 8.3) and conventions (8.1, 8.2, 8.10),
//! over raw HTTP: what smooch-core hides. Tokens are signed here with the hmac and sha2
//! crates, apart from the server's code.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::*;

/// A compact HS256 JWS of `header` and `claims` keyed with `secret`'s bytes.
fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(signed.as_bytes());
    format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// A token of `key_id` with `claims`, as smooch-core makes them.
fn token(key_id: &str, secret: &str, claims: Value) -> String {
    hs256(
        &json!({ "alg": "HS256", "typ": "JWT", "kid": key_id }),
        &claims,
        secret.as_bytes(),
    )
}

/// An account key of tenant a, by the portal route.
async fn account_key(s: &TestServer) -> (String, String) {
    let (status, body) = s
        .post(
            "/api/v1/tenants/smooch-keys",
            &s.a.portal,
            json!({ "name": "ops" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["keyId"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn send(
    s: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    s.call_full(method, path, Some(token), body.as_ref()).await
}

/// Asserts an 8.2 error body: Smooch's `error.code` and SPEC 1's `status` and `errors`.
fn smooch_error(status: StatusCode, body: &Value, want: StatusCode, code: &str, spec_code: u64) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["status"], want.as_u16(), "{body}");
    assert_eq!(body["errors"][0]["code"], spec_code, "{body}");
    let description = body["error"]["description"].as_str().unwrap();
    assert!(
        description.contains(&format!("(code: SMC{spec_code:06})")),
        "{body}"
    );
}

#[tokio::test]
async fn account_keys_are_made_listed_and_deleted_by_the_portal() {
    for backend in backends("account_keys_are_made_listed_and_deleted_by_the_portal") {
        let s = TestServer::start_on(backend).await;
        let (key_id, secret) = account_key(&s).await;
        assert_eq!(key_id.len(), 36);
        assert!(key_id[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(secret.len(), 43, "32 bytes, base64url without padding");
        let (status, page) = s.get("/api/v1/tenants/smooch-keys", &s.a.portal).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["total"], 1);
        assert_eq!(page["results"][0]["keyId"], key_id.as_str());
        assert_eq!(
            page["results"][0]["secret"],
            format!("{}...", &secret[..6]),
            "only the first 6 characters are shown again"
        );
        // Tenant b sees none of a's keys and cannot delete them.
        let (_, other) = s.get("/api/v1/tenants/smooch-keys", &s.b.portal).await;
        assert_eq!(other["total"], 0);
        let (status, body) = s
            .delete(
                &format!("/api/v1/tenants/smooch-keys/{key_id}"),
                &s.b.portal,
            )
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND.as_u16(), "IDT", &[105]);
        // An engine token may not manage keys; a blank name is refused.
        let (status, _) = s.get("/api/v1/tenants/smooch-keys", &s.a.engine).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, body) = s
            .post(
                "/api/v1/tenants/smooch-keys",
                &s.a.portal,
                json!({ "name": " " }),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST.as_u16(),
            "IDT",
            &[206],
        );
        // The key works, then is deleted and refused at once.
        let t = token(&key_id, &secret, json!({ "scope": "account" }));
        let (status, _, body) = send(&s, Method::GET, "/v1.1/apps", &t, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = s
            .delete(
                &format!("/api/v1/tenants/smooch-keys/{key_id}"),
                &s.a.portal,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, body) = send(&s, Method::GET, "/v1.1/apps", &t, None).await;
        smooch_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized", 102);
        s.stop().await;
    }
}

#[tokio::test]
async fn the_cli_makes_an_account_key_of_an_existing_tenant() {
    let s = TestServer::start().await;
    let bin = env!("CARGO_BIN_EXE_switchboard");
    let key = base64::engine::general_purpose::STANDARD.encode(s.key);
    let run = |tenant: String| {
        std::process::Command::new(bin)
            .args(["smooch-key", "create", "--tenant", &tenant, "--name", "cli"])
            .env("DATABASE_URL", &s.database_url)
            .env("SWITCHBOARD_ENCRYPTION_KEY", &key)
            .output()
            .expect("run switchboard")
    };
    let out = run(s.a.id());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(printed["tenantId"], s.a.id());
    assert_eq!(printed["name"], "cli");
    let key_id = printed["keyId"].as_str().unwrap();
    assert!(key_id.starts_with("act_"));
    let t = token(
        key_id,
        printed["secret"].as_str().unwrap(),
        json!({ "scope": "appMaker" }),
    );
    let (status, _, body) = send(&s, Method::GET, "/v1/apps", &t, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let out = run(uuid::Uuid::new_v4().to_string());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tenant"));
    let out = run("not-a-uuid".to_owned());
    assert_eq!(out.status.code(), Some(1));
    s.stop().await;
}

#[tokio::test]
async fn only_hs256_tokens_of_live_keys_with_their_scopes_pass() {
    let s = TestServer::start().await;
    let (key_id, secret) = account_key(&s).await;
    let refused = |status: StatusCode, body: &Value| {
        smooch_error(status, body, StatusCode::UNAUTHORIZED, "unauthorized", 102)
    };
    // No token, another scheme, garbage.
    for auth in [
        None,
        Some("Basic YTpi".to_owned()),
        Some("Bearer x.y.z".to_owned()),
    ] {
        let (status, body) = s
            .with_authorization(Method::GET, "/v1.1/apps", auth.as_deref())
            .await;
        refused(status, &body);
    }
    // The server's own EdDSA portal token is refused here.
    let (status, _, body) = send(&s, Method::GET, "/v1.1/apps", &s.a.portal, None).await;
    refused(status, &body);
    // An HS256 token keyed with the server's public Ed25519 key (the algorithm-confusion
    // attack), under the account key's id and without a kid.
    let store = switchboard_storage::Store::connect(
        &s.database_url,
        switchboard_storage::EncryptionKey(s.key),
    )
    .await
    .unwrap();
    let seed = store.token_signing_seed().await.unwrap();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    for header in [
        json!({ "alg": "HS256", "kid": key_id }),
        json!({ "alg": "HS256" }),
    ] {
        let forged = hs256(&header, &json!({ "scope": "account" }), public.as_bytes());
        let (status, _, body) = send(&s, Method::GET, "/v1.1/apps", &forged, None).await;
        refused(status, &body);
    }
    // alg none, and EdDSA claims under the key id.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "kid": key_id }).to_string()),
        URL_SAFE_NO_PAD.encode(json!({ "scope": "account" }).to_string())
    );
    let (status, _, body) = send(&s, Method::GET, "/v1.1/apps", &none, None).await;
    refused(status, &body);
    // Wrong secret, unknown kid, wrong scope for an account key, no scope.
    for t in [
        token(&key_id, "not-the-secret", json!({ "scope": "account" })),
        token(
            "act_00000000000000000000000000000000",
            &secret,
            json!({ "scope": "account" }),
        ),
        token(&key_id, &secret, json!({ "scope": "app" })),
        token(
            &key_id,
            &secret,
            json!({ "scope": "appUser", "userId": "u" }),
        ),
        token(&key_id, &secret, json!({})),
    ] {
        let (status, _, body) = send(&s, Method::GET, "/v1.1/apps", &t, None).await;
        refused(status, &body);
    }
    // Times: an expired token (past the 60 s leeway), one not valid yet; within leeway passes.
    let now = unix_now();
    for (claims, ok) in [
        (json!({ "scope": "account", "exp": now - 120 }), false),
        (json!({ "scope": "account", "nbf": now + 120 }), false),
        (json!({ "scope": "account", "exp": now - 30 }), true),
        (
            json!({ "scope": "account", "exp": now + 3600, "iat": now }),
            true,
        ),
    ] {
        let t = token(&key_id, &secret, claims.clone());
        let (status, _, body) = send(&s, Method::GET, "/v1.1/apps", &t, None).await;
        if ok {
            assert_eq!(status, StatusCode::OK, "{claims}: {body}");
        } else {
            refused(status, &body);
        }
    }
    // A compat token is refused on the portal and engine APIs.
    let t = token(&key_id, &secret, json!({ "scope": "account" }));
    let (status, body) = s.get("/api/v1/hubs", &t).await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED.as_u16(),
        "PRT",
        &[102],
    );
    s.stop().await;
}

#[tokio::test]
async fn a_maximum_token_age_requires_a_recent_iat() {
    let s = TestServer::start_with(Backend::Sqlite, |a| a.smooch_token_max_age = 300).await;
    let (key_id, secret) = account_key(&s).await;
    let now = unix_now();
    for (claims, want) in [
        (json!({ "scope": "account" }), StatusCode::UNAUTHORIZED),
        (
            json!({ "scope": "account", "iat": now - 400 }),
            StatusCode::UNAUTHORIZED,
        ),
        (
            json!({ "scope": "account", "iat": now - 10 }),
            StatusCode::OK,
        ),
    ] {
        let t = token(&key_id, &secret, claims.clone());
        let (status, _, body) = send(&s, Method::GET, "/v1.1/apps", &t, None).await;
        assert_eq!(status, want, "{claims}: {body}");
    }
    s.stop().await;
}

#[tokio::test]
async fn scopes_reach_what_spec_8_3_says() {
    for backend in backends("scopes_reach_what_spec_8_3_says") {
        let s = TestServer::start_on(backend).await;
        let (key_id, secret) = account_key(&s).await;
        let account = token(&key_id, &secret, json!({ "scope": "account" }));
        let (status, _, body) = send(
            &s,
            Method::POST,
            "/v1.1/apps",
            &account,
            Some(json!({ "name": "shop" })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let app = body["app"]["_id"].as_str().unwrap().to_owned();
        let (_, _, other) = send(
            &s,
            Method::POST,
            "/v1.1/apps",
            &account,
            Some(json!({ "name": "other" })),
        )
        .await;
        let other = other["app"]["_id"].as_str().unwrap().to_owned();
        let (status, _, body) = send(
            &s,
            Method::POST,
            &format!("/v1.1/apps/{app}/keys"),
            &account,
            Some(json!({ "name": "k" })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let app_key = body["key"]["_id"].as_str().unwrap().to_owned();
        let app_secret = body["key"]["secret"].as_str().unwrap().to_owned();
        let app_token = token(&app_key, &app_secret, json!({ "scope": "app" }));
        let user_token = token(
            &app_key,
            &app_secret,
            json!({ "scope": "appUser", "userId": "u1" }),
        );
        // An app key may not sign account tokens.
        let t = token(&app_key, &app_secret, json!({ "scope": "account" }));
        let (status, _, body) = send(&s, Method::GET, "/v1.1/apps", &t, None).await;
        smooch_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized", 102);
        // app and appUser tokens: 403 on the apps, the app itself and keys.
        for t in [&app_token, &user_token] {
            for path in [
                "/v1.1/apps".to_owned(),
                format!("/v1.1/apps/{app}"),
                format!("/v1.1/apps/{app}/keys"),
                "/v1.1/keys".to_owned(),
            ] {
                let (status, _, body) = send(&s, Method::GET, &path, t, None).await;
                smooch_error(status, &body, StatusCode::FORBIDDEN, "forbidden", 101);
            }
        }
        // An app token reaches its app's integrations, not another app's (404).
        let (status, _, body) = send(
            &s,
            Method::GET,
            &format!("/v1.1/apps/{other}/integrations"),
            &app_token,
            None,
        )
        .await;
        smooch_error(status, &body, StatusCode::NOT_FOUND, "not_found", 105);
        // appUser tokens may not use integrations or webhooks.
        let (status, _, body) = send(
            &s,
            Method::GET,
            &format!("/v1.1/apps/{app}/integrations"),
            &user_token,
            None,
        )
        .await;
        smooch_error(status, &body, StatusCode::FORBIDDEN, "forbidden", 101);
        // Account tokens may not use the app-implicit routes.
        for path in ["/v1.1/webhooks", "/v1.1/appusers/u1"] {
            let (status, _, body) = send(&s, Method::GET, path, &account, None).await;
            smooch_error(status, &body, StatusCode::FORBIDDEN, "forbidden", 101);
        }
        // Another tenant's app is 404 to an account key of tenant b.
        let (status, body) = s
            .post(
                "/api/v1/tenants/smooch-keys",
                &s.b.portal,
                json!({ "name": "b" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let b = token(
            body["keyId"].as_str().unwrap(),
            body["secret"].as_str().unwrap(),
            json!({ "scope": "account" }),
        );
        let (status, _, body) = send(&s, Method::GET, &format!("/v1.1/apps/{app}"), &b, None).await;
        smooch_error(status, &body, StatusCode::NOT_FOUND, "not_found", 105);
        // getJwt's token is an app token of the key: header and claims as 8.5 says.
        let (status, _, body) = send(
            &s,
            Method::GET,
            &format!("/v1.1/apps/{app}/keys/{app_key}/jwt"),
            &account,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let jwt = body["jwt"].as_str().unwrap();
        let part = |i: usize| -> Value {
            serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(jwt.split('.').nth(i).unwrap())
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(part(0)["alg"], "HS256");
        assert_eq!(part(0)["kid"], app_key.as_str());
        assert_eq!(part(1)["scope"], "app");
        assert!(part(1)["iat"].is_i64() && part(1).get("exp").is_none());
        assert_eq!(jwt, token(&app_key, &app_secret, part(1)).as_str());
        // Deleting the app key refuses its tokens at once.
        let (status, _, _) = send(
            &s,
            Method::DELETE,
            &format!("/v1.1/apps/{app}/keys/{app_key}"),
            &account,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, body) = send(
            &s,
            Method::GET,
            &format!("/v1.1/apps/{app}/integrations"),
            &app_token,
            None,
        )
        .await;
        smooch_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized", 102);
        s.stop().await;
    }
}

#[tokio::test]
async fn conventions_of_8_1_hold_on_both_prefixes() {
    let s = TestServer::start().await;
    let (key_id, secret) = account_key(&s).await;
    let t = token(&key_id, &secret, json!({ "scope": "account" }));
    // A body is JSON whatever its content type; a trailing slash is ignored.
    let (status, body) = s
        .raw(
            Method::POST,
            "/v1/apps/",
            Some(&t),
            Some("text/plain"),
            r#"{"name":"plain"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let app = body["app"]["_id"].as_str().unwrap().to_owned();
    assert_eq!(body["app"]["settings"], json!({}));
    assert_eq!(body["app"]["metadata"], Value::Null);
    let token_of_app = body["app"]["appToken"].as_str().unwrap();
    assert_eq!(token_of_app.len(), 25);
    // The same app through /v1.1.
    let (status, _, body) = send(&s, Method::GET, &format!("/v1.1/apps/{app}"), &t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["app"]["appToken"], token_of_app);
    // An empty body is {} (then `name` is required); a body that is not an object is 400/300.
    let (status, body) = s.raw(Method::POST, "/v1.1/apps", Some(&t), None, "").await;
    smooch_error(status, &body, StatusCode::BAD_REQUEST, "bad_request", 301);
    let (status, body) = s
        .raw(
            Method::POST,
            "/v1.1/apps",
            Some(&t),
            Some("application/json"),
            "[1]",
        )
        .await;
    smooch_error(status, &body, StatusCode::BAD_REQUEST, "bad_request", 300);
    // Unknown fields 400/303; a wrong type 400/302; several errors joined in the description.
    let (status, _, body) = send(
        &s,
        Method::PUT,
        &format!("/v1.1/apps/{app}"),
        &t,
        Some(json!({ "name": "x", "colour": "red", "shape": 1 })),
    )
    .await;
    smooch_error(status, &body, StatusCode::BAD_REQUEST, "bad_request", 303);
    assert_eq!(body["errors"].as_array().unwrap().len(), 2);
    assert!(body["error"]["description"]
        .as_str()
        .unwrap()
        .contains("; "));
    let (status, _, body) = send(
        &s,
        Method::PUT,
        &format!("/v1.1/apps/{app}"),
        &t,
        Some(json!({ "metadata": { "nested": { "no": true } } })),
    )
    .await;
    smooch_error(status, &body, StatusCode::BAD_REQUEST, "bad_request", 302);
    // Settings are stored, echoed, and the answer says they are not applied.
    let (status, headers, body) = send(
        &s,
        Method::PUT,
        &format!("/v1.1/apps/{app}"),
        &t,
        Some(json!({ "settings": { "maskCreditCardNumbers": true }, "metadata": { "tier": 2 } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["app"]["settings"]["maskCreditCardNumbers"], true);
    assert_eq!(body["app"]["metadata"]["tier"], 2);
    let warning = headers.get("warning").unwrap().to_str().unwrap();
    assert!(warning.starts_with("299 switchboard \""), "{warning}");
    assert!(
        warning.contains("settings are stored, not applied"),
        "{warning}"
    );
    // Pagination: limit and offset, hasMore, and its refusals.
    for name in ["b", "c"] {
        send(
            &s,
            Method::POST,
            "/v1.1/apps",
            &t,
            Some(json!({ "name": name })),
        )
        .await;
    }
    let (_, _, page) = send(&s, Method::GET, "/v1.1/apps?limit=2&offset=1", &t, None).await;
    assert_eq!(page["apps"].as_array().unwrap().len(), 2);
    assert_eq!(page["hasMore"], false);
    assert_eq!(page["offset"], 1);
    assert_eq!(page["apps"][0]["name"], "b");
    let (_, _, page) = send(&s, Method::GET, "/v1.1/apps?limit=1", &t, None).await;
    assert_eq!(page["hasMore"], true);
    for q in ["limit=0", "limit=101", "offset=-1"] {
        let (status, _, body) = send(&s, Method::GET, &format!("/v1.1/apps?{q}"), &t, None).await;
        smooch_error(status, &body, StatusCode::BAD_REQUEST, "bad_request", 206);
    }
    let (status, _, body) = send(&s, Method::GET, "/v1.1/apps?limit=ten", &t, None).await;
    smooch_error(status, &body, StatusCode::BAD_REQUEST, "bad_request", 201);
    // Ids of any shape that name nothing are 404, never 400; so are unknown routes.
    for path in [
        "/v1.1/apps/nope",
        "/v1.1/apps/00000000-0000-0000-0000-000000000000",
        "/v1.1/nothing",
    ] {
        let (status, _, body) = send(&s, Method::GET, path, &t, None).await;
        smooch_error(status, &body, StatusCode::NOT_FOUND, "not_found", 105);
    }
    // Out of scope: 501 naming the feature.
    let (status, _, body) =
        send(&s, Method::GET, &format!("/v1.1/apps/{app}/menu"), &t, None).await;
    smooch_error(
        status,
        &body,
        StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
        107,
    );
    assert!(body["error"]["description"]
        .as_str()
        .unwrap()
        .contains("menus"));
    let (status, _, body) = send(&s, Method::GET, "/v1.1/apps?serviceAccountId=x", &t, None).await;
    smooch_error(
        status,
        &body,
        StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
        107,
    );
    // A body over 1 MiB is 413 in the same shape.
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(1_100_000));
    let (status, body) = s
        .raw(
            Method::POST,
            "/v1.1/apps",
            Some(&t),
            Some("application/json"),
            big,
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Deleting the app deletes the hub.
    let (status, _, body) = send(&s, Method::DELETE, &format!("/v1.1/apps/{app}"), &t, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, _) = s.get(&format!("/api/v1/hubs/{app}"), &s.a.portal).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test]
async fn a_portal_hub_is_an_app_and_a_deleted_key_is_refused_on_every_node() {
    let Some(_) = postgres_url() else {
        skipped(
            "a_portal_hub_is_an_app_and_a_deleted_key_is_refused_on_every_node",
            "PostgreSQL",
            "set TEST_DATABASE_URL=postgres://… to run it",
        );
        return;
    };
    let s = TestServer::start_on(Backend::Postgres).await;
    let peer = Peer::start_with(&s, |_| {}).await;
    let hub = s.hub(&s.a.portal, "from the portal").await;
    let (key_id, secret) = account_key(&s).await;
    let t = token(&key_id, &secret, json!({ "scope": "account" }));
    let (status, body) = peer.get(&s, &format!("/v1.1/apps/{hub}"), &t).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["app"]["name"], "from the portal");
    assert_eq!(body["app"]["appToken"].as_str().unwrap().len(), 25);
    let (status, _) = s
        .delete(
            &format!("/api/v1/tenants/smooch-keys/{key_id}"),
            &s.a.portal,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (status, body) = peer.get(&s, &format!("/v1.1/apps/{hub}"), &t).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    peer.stop().await;
    s.stop().await;
}
