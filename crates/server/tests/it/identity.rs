//! Identity (SPEC 2): token issuance, token verification on portal routes, clients and their
//! secrets, revocation, secrets at rest.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

const TOKEN: &str = "/connect/token";
const HUBS: &str = "/api/v1/hubs";

/// Decodes one base64url segment of a JWT as JSON.
fn segment(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).expect("segment");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

/// The same token with its header replaced by `header`.
fn with_header(jwt: &str, header: &str) -> String {
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    parts[0] = URL_SAFE_NO_PAD.encode(header);
    parts.join(".")
}

fn client_path(client_id: &str) -> String {
    format!("/api/v1/tenants/clients/{client_id}")
}

fn portal_client(t: &Tenant) -> (String, String) {
    (
        t.creds.portal.client_id.to_string(),
        t.creds.portal.client_secret.clone(),
    )
}

async fn issue(s: &TestServer, client_id: &str, secret: &str) -> (StatusCode, Value) {
    s.form(
        TOKEN,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ],
    )
    .await
}

#[tokio::test]
async fn token_request_answers_an_eddsa_bearer_token_of_the_clients_scope() {
    let s = TestServer::start().await;
    for (client, scope) in [
        (&s.a.creds.portal, "portal-api"),
        (&s.a.creds.engine, "engine-api"),
    ] {
        let (status, body) = issue(&s, &client.client_id.to_string(), &client.client_secret).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 4, "exactly the four keys of SPEC 2 in {body}");
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["scope"], scope);
        let jwt = body["access_token"].as_str().unwrap();
        assert_eq!(jwt.split('.').count(), 3);
        let header = segment(jwt, 0);
        assert_eq!(header["alg"], "EdDSA", "{header}");
        let claims = segment(jwt, 1);
        assert_eq!(claims["tid"], s.a.id());
        assert_eq!(claims["sub"], client.client_id.to_string());
        assert_eq!(claims["scope"], scope);
        assert!(
            claims["sid"]
                .as_str()
                .is_some_and(|sid| uuid::Uuid::parse_str(sid).is_ok()),
            "{claims}"
        );
        assert!(
            claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
            "{claims}"
        );
        let iat = claims["iat"].as_i64().unwrap();
        assert_eq!(claims["exp"].as_i64().unwrap() - iat, 3600, "{claims}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((now - iat).abs() <= 5, "iat {iat} is now ({now})");
    }
    // Token responses must not be cached (RFC 6749 5.1).
    let (id, secret) = portal_client(&s.a);
    let resp = s
        .http
        .post(s.url(TOKEN))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json")));
    // Two tokens of the same client differ (jti).
    let (id, secret) = portal_client(&s.a);
    let (_, one) = issue(&s, &id, &secret).await;
    let (_, two) = issue(&s, &id, &secret).await;
    assert_ne!(
        segment(one["access_token"].as_str().unwrap(), 1)["jti"],
        segment(two["access_token"].as_str().unwrap(), 1)["jti"]
    );
    s.stop().await;
}

#[tokio::test]
async fn token_lifetime_follows_the_configuration() {
    let s = TestServer::start_with(Backend::Sqlite, |a| a.token_ttl = 120).await;
    let (id, secret) = portal_client(&s.a);
    let (status, body) = issue(&s, &id, &secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 120);
    let claims = segment(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    s.stop().await;
}

#[tokio::test]
async fn wrong_secret_unknown_client_or_non_uuid_client_is_401() {
    let s = TestServer::start().await;
    let (id, secret) = portal_client(&s.a);
    let (b_id, _) = portal_client(&s.b);
    let cases = [
        (id.clone(), "wrong-secret".to_owned()),
        (id.clone(), format!("{secret}x")),
        (id.clone(), secret[..6].to_owned()),
        (uuid::Uuid::new_v4().to_string(), secret.clone()),
        // Tenant B's client with tenant A's secret.
        (b_id, secret.clone()),
        // Tenant A's engine client with the portal client's secret.
        (s.a.creds.engine.client_id.to_string(), secret.clone()),
        ("not-a-uuid".to_owned(), secret.clone()),
    ];
    for (client_id, client_secret) in cases {
        let (status, body) = issue(&s, &client_id, &client_secret).await;
        assert_error(status, &body, 401, "IDT", &[102]);
    }
    s.stop().await;
}

#[tokio::test]
async fn missing_token_fields_are_each_400_301_and_all_reported_at_once() {
    let s = TestServer::start().await;
    let (id, secret) = portal_client(&s.a);
    let (status, body) = s.form(TOKEN, &[]).await;
    assert_error(status, &body, 400, "IDT", &[301, 301, 301]);
    let text = body.to_string();
    for field in ["grant_type", "client_id", "client_secret"] {
        assert!(
            text.contains(&format!("'{field}'")),
            "{field} named in {body}"
        );
    }
    let full = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    for missing in 0..3 {
        let fields: Vec<(&str, &str)> = full
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != missing)
            .map(|(_, f)| *f)
            .collect();
        let (status, body) = s.form(TOKEN, &fields).await;
        assert_error(status, &body, 400, "IDT", &[301]);
        assert!(
            body["errors"][0]["description"]
                .as_str()
                .unwrap()
                .contains(full[missing].0),
            "{body}"
        );
        // An empty value is as good as missing.
        let mut empty: Vec<(&str, &str)> = full.to_vec();
        empty[missing].1 = "";
        let (status, body) = s.form(TOKEN, &empty).await;
        assert_error(status, &body, 400, "IDT", &[301]);
    }
    s.stop().await;
}

#[tokio::test]
async fn grant_type_other_than_client_credentials_is_400_206() {
    let s = TestServer::start().await;
    let (id, secret) = portal_client(&s.a);
    for grant in ["password", "authorization_code", "CLIENT_CREDENTIALS"] {
        let (status, body) = s
            .form(
                TOKEN,
                &[
                    ("grant_type", grant),
                    ("client_id", &id),
                    ("client_secret", &secret),
                ],
            )
            .await;
        assert_error(status, &body, 400, "IDT", &[206]);
    }
    // With a field missing too, both are reported.
    let (status, body) = s
        .form(TOKEN, &[("grant_type", "password"), ("client_id", &id)])
        .await;
    assert_error(status, &body, 400, "IDT", &[206, 301]);
    s.stop().await;
}

#[tokio::test]
async fn json_token_request_is_415_300() {
    let s = TestServer::start().await;
    let (id, secret) = portal_client(&s.a);
    let body =
        json!({ "grant_type": "client_credentials", "client_id": id, "client_secret": secret });
    let (status, out) = s.call(Method::POST, TOKEN, None, Some(&body)).await;
    assert_error(status, &out, 415, "IDT", &[300]);
    let (status, out) = s
        .raw(
            Method::POST,
            TOKEN,
            None,
            Some("text/plain"),
            "grant_type=client_credentials",
        )
        .await;
    assert_error(status, &out, 415, "IDT", &[300]);
    // No body and no content type: the body is missing.
    let (status, out) = s.raw(Method::POST, TOKEN, None, None, "").await;
    assert_error(status, &out, 400, "IDT", &[300]);
    // A charset parameter on the form type is fine.
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let (status, out) = s
        .raw(
            Method::POST,
            TOKEN,
            None,
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            form,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    s.stop().await;
}

#[tokio::test]
async fn token_with_another_alg_is_401_102() {
    let s = TestServer::start().await;
    assert_eq!(s.get(HUBS, &s.a.portal).await.0, StatusCode::OK);
    let jwt = &s.a.portal;
    for header in [
        r#"{"alg":"HS256","typ":"JWT"}"#,
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"none"}"#,
        r#"{"typ":"JWT"}"#,
        r#"{"alg":"eddsa","typ":"JWT"}"#,
    ] {
        let (status, body) = s.get(HUBS, &with_header(jwt, header)).await;
        assert_error(status, &body, 401, "PRT", &[102]);
    }
    // alg none with the signature stripped.
    let none = with_header(jwt, r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{}.", none.rsplit_once('.').unwrap().0);
    let (status, body) = s.get(HUBS, &unsigned).await;
    assert_error(status, &body, 401, "PRT", &[102]);
    // HS256 signed with the server's public key is the classic confusion; any HS256 is refused.
    s.stop().await;
}

#[tokio::test]
async fn token_with_a_bad_signature_or_tampered_claims_is_401_102() {
    let s = TestServer::start().await;
    let jwt = s.a.portal.clone();
    let (head, sig) = jwt.rsplit_once('.').unwrap();
    // One signature character changed.
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bytes[0] ^= 1;
    let flipped = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&bytes));
    // A signature of the right length from another key.
    let other = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let forged = {
        use ed25519_dalek::Signer;
        format!(
            "{head}.{}",
            URL_SAFE_NO_PAD.encode(other.sign(head.as_bytes()).to_bytes())
        )
    };
    // Tenant A's claims moved to tenant B, with A's signature.
    let mut claims = segment(&jwt, 1);
    claims["tid"] = json!(s.b.id());
    let (h, _) = head.split_once('.').unwrap();
    let moved = format!("{h}.{}.{sig}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    // An engine token promoted to portal scope.
    let mut claims = segment(&s.a.engine, 1);
    claims["scope"] = json!("portal-api");
    let (eh, esig) = (
        s.a.engine.split('.').next().unwrap(),
        s.a.engine.rsplit('.').next().unwrap(),
    );
    let promoted = format!("{eh}.{}.{esig}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    for token in [flipped, forged, moved, promoted, format!("{head}.")] {
        let (status, body) = s.get(HUBS, &token).await;
        assert_error(status, &body, 401, "PRT", &[102]);
    }
    s.stop().await;
}

#[tokio::test]
async fn expired_token_is_401_102() {
    let s = TestServer::start_with(Backend::Sqlite, |a| a.token_ttl = 1).await;
    let (id, secret) = portal_client(&s.a);
    let token = s.token(&id, &secret).await;
    let exp = segment(&token, 1)["exp"].as_i64().unwrap();
    // It works until its own `exp`, and is refused from the second `exp` is reached.
    let (status, body) = s.get(HUBS, &token).await;
    if unix_now() < exp {
        assert_eq!(status, StatusCode::OK, "a token before its exp: {body}");
    }
    until_unix(exp).await;
    let (status, body) = s.get(HUBS, &token).await;
    assert_error(status, &body, 401, "PRT", &[102]);
    assert!(
        body["errors"][0]["description"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    // A fresh token from the same secret works.
    let fresh = s.token(&id, &secret).await;
    assert_eq!(s.get(HUBS, &fresh).await.0, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn garbage_or_missing_token_is_401_102() {
    let s = TestServer::start().await;
    for authorization in [
        None,
        Some("Bearer garbage".to_owned()),
        Some("Bearer a.b.c".to_owned()),
        Some("Bearer ...".to_owned()),
        Some("Bearer ".to_owned()),
        Some("Bearer".to_owned()),
        Some(format!("Basic {}", URL_SAFE_NO_PAD.encode("user:pass"))),
        Some(s.a.portal.clone()),
        Some(format!("Bearer {}x", s.a.portal)),
        Some(format!("Bearer {}.x", s.a.portal)),
    ] {
        let (status, body) = s
            .with_authorization(Method::GET, HUBS, authorization.as_deref())
            .await;
        assert_error(status, &body, 401, "PRT", &[102]);
    }
    // The scheme is case-insensitive (RFC 7235); the token is not.
    for ok in [
        format!("bearer {}", s.a.portal),
        format!("BEARER {}", s.a.portal),
    ] {
        let (status, body) = s.with_authorization(Method::GET, HUBS, Some(&ok)).await;
        assert_eq!(status, StatusCode::OK, "{ok}: {body}");
    }
    // On an identity route the prefix is IDT.
    let (status, body) = s
        .with_authorization(
            Method::GET,
            &client_path(&s.a.creds.portal.client_id.to_string()),
            None,
        )
        .await;
    assert_error(status, &body, 401, "IDT", &[102]);
    s.stop().await;
}

#[tokio::test]
async fn engine_token_on_a_portal_route_is_403_101() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "Support").await;
    let hub_path = format!("{HUBS}/{hub}");
    let (status, body) = s.get(HUBS, &s.a.engine).await;
    assert_error(status, &body, 403, "PRT", &[101]);
    let (status, body) = s.get(&hub_path, &s.a.engine).await;
    assert_error(status, &body, 403, "PRT", &[101]);
    let (status, body) = s
        .post(
            HUBS,
            &s.a.engine,
            json!({ "name": "x", "description": "y" }),
        )
        .await;
    assert_error(status, &body, 403, "PRT", &[101]);
    let (status, body) = s.delete(&hub_path, &s.a.engine).await;
    assert_error(status, &body, 403, "PRT", &[101]);
    let (status, body) = s.get("/api/v1/integrations", &s.a.engine).await;
    assert_error(status, &body, 403, "PRT", &[101]);
    let (status, body) = s
        .get(
            &client_path(&s.a.creds.engine.client_id.to_string()),
            &s.a.engine,
        )
        .await;
    assert_error(status, &body, 403, "IDT", &[101]);
    // The hub is still there.
    assert_eq!(s.get(&hub_path, &s.a.portal).await.0, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn get_client_shows_secrets_as_previews_and_only_for_the_own_tenant() {
    let s = TestServer::start().await;
    for (client, scope) in [
        (&s.a.creds.portal, "portal-api"),
        (&s.a.creds.engine, "engine-api"),
    ] {
        let (status, body) = s
            .get(&client_path(&client.client_id.to_string()), &s.a.portal)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["tenantId"], s.a.id());
        assert_eq!(body["clientId"], client.client_id.to_string());
        assert!(
            body["name"].as_str().is_some_and(|n| !n.is_empty()),
            "{body}"
        );
        assert_eq!(body["enabled"], true);
        assert_eq!(body["allowedScopes"], json!([scope]));
        let secrets = body["secrets"].as_array().unwrap();
        assert_eq!(secrets.len(), 1, "{body}");
        let secret = &secrets[0];
        assert_eq!(
            secret.as_object().unwrap().len(),
            4,
            "id, name, token, expiration in {secret}"
        );
        assert!(uuid::Uuid::parse_str(secret["id"].as_str().unwrap()).is_ok());
        assert!(secret["name"].is_string());
        assert_eq!(
            secret["token"],
            format!("{}...", &client.client_secret[..6])
        );
        assert_eq!(secret["expiration"], Value::Null);
        assert!(
            !body.to_string().contains(&client.client_secret),
            "the whole secret never shows"
        );
        assert_eq!(body.as_object().unwrap().len(), 6, "{body}");
    }
    // Tenant B's client is not found for tenant A, exactly like an unknown one.
    let (status, other) = s
        .get(
            &client_path(&s.b.creds.portal.client_id.to_string()),
            &s.a.portal,
        )
        .await;
    assert_error(status, &other, 404, "IDT", &[105]);
    let (status, unknown) = s
        .get(&client_path(&uuid::Uuid::new_v4().to_string()), &s.a.portal)
        .await;
    assert_error(status, &unknown, 404, "IDT", &[105]);
    assert_eq!(
        other, unknown,
        "another tenant's client answers exactly like an unknown one"
    );
    let (status, body) = s.get(&client_path("not-a-uuid"), &s.a.portal).await;
    assert_error(status, &body, 400, "IDT", &[203]);
    let (status, body) = s
        .get(
            &client_path(&s.a.creds.portal.client_id.to_string()),
            &s.a.engine,
        )
        .await;
    assert_error(status, &body, 403, "IDT", &[101]);
    s.stop().await;
}

#[tokio::test]
async fn new_secret_is_shown_whole_once_and_works() {
    let s = TestServer::start().await;
    let client_id = s.a.creds.portal.client_id.to_string();
    let path = format!("{}/tokens", client_path(&client_id));
    let (status, created) = s.post(&path, &s.a.portal, json!({ "name": "ci" })).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created.as_object().unwrap().len(), 4, "{created}");
    assert_eq!(created["name"], "ci");
    assert_eq!(created["expiration"], Value::Null);
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43, "at least 32 bytes of entropy: {secret}");
    assert!(!secret.ends_with("..."));
    let id = created["id"].as_str().unwrap();

    // It gets tokens, and they work on portal routes.
    let token = s.token(&client_id, &secret).await;
    assert_eq!(segment(&token, 1)["sid"], id);
    assert_eq!(s.get(HUBS, &token).await.0, StatusCode::OK);
    // The old secret keeps working.
    s.token(&client_id, &s.a.creds.portal.client_secret).await;

    // Later, only the preview shows.
    let (_, client) = s.get(&client_path(&client_id), &s.a.portal).await;
    let secrets = client["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2, "{client}");
    let listed = secrets
        .iter()
        .find(|x| x["id"] == id)
        .expect("the new secret is listed");
    assert_eq!(
        listed,
        &json!({ "id": id, "name": "ci", "token": format!("{}...", &secret[..6]), "expiration": null })
    );
    assert!(!client.to_string().contains(&secret));

    // With an expiration in the future.
    let (status, dated) = s
        .post(
            &path,
            &s.a.portal,
            json!({ "name": "dated", "expiration": "2099-01-02T03:04:05Z" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dated}");
    assert_eq!(dated["expiration"], "2099-01-02T03:04:05.000Z");
    s.token(&client_id, dated["token"].as_str().unwrap()).await;

    // A secret for the engine client gets engine tokens.
    let engine_id = s.a.creds.engine.client_id.to_string();
    let (status, engine) = s
        .post(
            &format!("{}/tokens", client_path(&engine_id)),
            &s.a.portal,
            json!({ "name": "bot" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{engine}");
    let (status, body) = issue(&s, &engine_id, engine["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["scope"], "engine-api");
    s.stop().await;
}

#[tokio::test]
async fn new_secret_body_is_validated() {
    let s = TestServer::start().await;
    let path = format!(
        "{}/tokens",
        client_path(&s.a.creds.portal.client_id.to_string())
    );
    let (status, body) = s.post(&path, &s.a.portal, json!({})).await;
    assert_error(status, &body, 400, "IDT", &[301]);
    let (status, body) = s
        .post(
            &path,
            &s.a.portal,
            json!({ "expiration": "2099-01-01T00:00:00Z" }),
        )
        .await;
    assert_error(status, &body, 400, "IDT", &[301]);
    let (status, body) = s
        .post(
            &path,
            &s.a.portal,
            json!({ "name": "x", "expiration": "tomorrow" }),
        )
        .await;
    assert_error(status, &body, 400, "IDT", &[201]);
    let (status, body) = s
        .post(
            &path,
            &s.a.portal,
            json!({ "name": "x", "expiration": "2001-01-01T00:00:00Z" }),
        )
        .await;
    assert_error(status, &body, 400, "IDT", &[206]);
    let (status, body) = s
        .post(&path, &s.a.portal, json!({ "name": 5, "expiration": 7 }))
        .await;
    assert_error(status, &body, 400, "IDT", &[302, 302]);
    let (status, body) = s
        .post(&path, &s.a.portal, json!({ "expiration": "soon" }))
        .await;
    assert_error(status, &body, 400, "IDT", &[301, 201]);
    let (status, body) = s.post(&path, &s.a.portal, json!({ "name": "" })).await;
    assert_error(status, &body, 400, "IDT", &[206]);
    let (status, body) = s
        .raw(
            Method::POST,
            &path,
            Some(&s.a.portal),
            Some("application/json"),
            "{",
        )
        .await;
    assert_error(status, &body, 400, "IDT", &[300]);
    // Nothing was added.
    let (_, client) = s
        .get(
            &client_path(&s.a.creds.portal.client_id.to_string()),
            &s.a.portal,
        )
        .await;
    assert_eq!(client["secrets"].as_array().unwrap().len(), 1, "{client}");
    // Another tenant's client.
    let other = format!(
        "{}/tokens",
        client_path(&s.b.creds.portal.client_id.to_string())
    );
    let (status, body) = s
        .post(&other, &s.a.portal, json!({ "name": "intruder" }))
        .await;
    assert_error(status, &body, 404, "IDT", &[105]);
    let (_, b_client) = s
        .get(
            &client_path(&s.b.creds.portal.client_id.to_string()),
            &s.b.portal,
        )
        .await;
    assert_eq!(
        b_client["secrets"].as_array().unwrap().len(),
        1,
        "{b_client}"
    );
    s.stop().await;
}

#[tokio::test]
async fn revoked_secret_gets_no_tokens_and_its_tokens_stop_within_5_seconds() {
    let s = TestServer::start().await;
    let client_id = s.a.creds.portal.client_id.to_string();
    let tokens = format!("{}/tokens", client_path(&client_id));
    let (_, created) = s
        .post(&tokens, &s.a.portal, json!({ "name": "temp" }))
        .await;
    let secret = created["token"].as_str().unwrap().to_owned();
    let secret_id = created["id"].as_str().unwrap().to_owned();
    let access = s.token(&client_id, &secret).await;
    // Used once, so a node may have cached it as active.
    assert_eq!(s.get(HUBS, &access).await.0, StatusCode::OK);

    let (status, body) = s
        .delete(&format!("{tokens}/{secret_id}"), &s.a.portal)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, Value::Null, "a delete answers an empty body");
    let revoked_at = Instant::now();

    let (status, body) = issue(&s, &client_id, &secret).await;
    assert_error(status, &body, 401, "IDT", &[102]);

    let mut refused = None;
    while revoked_at.elapsed() < Duration::from_secs(6) {
        let (status, body) = s.get(HUBS, &access).await;
        if status == StatusCode::UNAUTHORIZED {
            assert_error(status, &body, 401, "PRT", &[102]);
            refused = Some(revoked_at.elapsed());
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let refused = refused.expect("the revoked secret's token is refused");
    assert!(
        refused <= Duration::from_secs(5),
        "refused after {refused:?}"
    );
    // It stays refused; the other secrets and their tokens keep working.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.get(HUBS, &access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get(HUBS, &s.a.portal).await.0, StatusCode::OK);
    let (_, client) = s.get(&client_path(&client_id), &s.a.portal).await;
    assert!(
        client["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["id"] != secret_id.as_str()),
        "{client}"
    );

    // Revoking it again is 404.
    let (status, body) = s
        .delete(&format!("{tokens}/{secret_id}"), &s.a.portal)
        .await;
    assert_error(status, &body, 404, "IDT", &[105]);
    s.stop().await;
}

#[tokio::test]
async fn revoking_another_tenants_secret_is_404_and_leaves_it_working() {
    let s = TestServer::start().await;
    let b_client = s.b.creds.portal.client_id.to_string();
    let (_, b) = s.get(&client_path(&b_client), &s.b.portal).await;
    let b_secret = b["secrets"][0]["id"].as_str().unwrap().to_owned();
    // Through B's client path, and through A's own client path.
    for path in [
        format!("{}/tokens/{b_secret}", client_path(&b_client)),
        format!(
            "{}/tokens/{b_secret}",
            client_path(&s.a.creds.portal.client_id.to_string())
        ),
    ] {
        let (status, body) = s.delete(&path, &s.a.portal).await;
        assert_error(status, &body, 404, "IDT", &[105]);
    }
    let (status, body) = s
        .delete(
            &format!("{}/tokens/{}", client_path(&b_client), uuid::Uuid::new_v4()),
            &s.a.portal,
        )
        .await;
    assert_error(status, &body, 404, "IDT", &[105]);
    let (status, body) = s
        .delete(
            &format!("{}/tokens/not-a-uuid", client_path(&b_client)),
            &s.a.portal,
        )
        .await;
    assert_error(status, &body, 400, "IDT", &[203]);
    // B's secret is still stored (read from the database, not from a node's cache of it), and
    // it and its tokens still work.
    let (status, after) = s.get(&client_path(&b_client), &s.b.portal).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert!(
        after["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == b_secret.as_str()),
        "B's secret is still listed: {after}"
    );
    s.token(&b_client, &s.b.creds.portal.client_secret).await;
    assert_eq!(s.get(HUBS, &s.b.portal).await.0, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn expired_secret_gets_no_tokens() {
    let s = TestServer::start().await;
    let client_id = s.a.creds.portal.client_id.to_string();
    let expires = std::time::SystemTime::now() + Duration::from_millis(1500);
    let soon = rfc3339_utc(expires);
    let (status, created) = s
        .post(
            &format!("{}/tokens", client_path(&client_id)),
            &s.a.portal,
            json!({ "name": "short", "expiration": soon }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let secret = created["token"].as_str().unwrap();
    s.token(&client_id, secret).await;
    // Once its expiration (as stored: whole milliseconds) is past, it gets no token.
    let stored = std::time::UNIX_EPOCH
        + Duration::from_millis(
            expires
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64,
        );
    until_system_time(stored + Duration::from_millis(1)).await;
    let (status, body) = issue(&s, &client_id, secret).await;
    assert_error(status, &body, 401, "IDT", &[102]);
    s.stop().await;
}

/// RFC 3339 UTC with milliseconds, without a date library.
fn rfc3339_utc(t: std::time::SystemTime) -> String {
    let ms = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[tokio::test]
async fn client_secrets_are_stored_only_as_hashes() {
    let s = TestServer::start().await;
    let client_id = s.a.creds.portal.client_id.to_string();
    let (_, created) = s
        .post(
            &format!("{}/tokens", client_path(&client_id)),
            &s.a.portal,
            json!({ "name": "later" }),
        )
        .await;
    let added = created["token"].as_str().unwrap().to_owned();
    let path = s
        .database_url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let mut bytes = std::fs::read(&path).expect("database file");
    // Under WAL, recent writes may still be in the -wal file.
    if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
        bytes.extend(wal);
    }
    assert!(bytes.len() > 4096, "read the database at {path}");
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    for secret in [
        &s.a.creds.portal.client_secret,
        &s.a.creds.engine.client_secret,
        &s.b.creds.portal.client_secret,
        &added,
    ] {
        assert!(!contains(secret), "a client secret is in the database file");
        // Not even the part after the preview.
        assert!(
            !contains(&secret[6..]),
            "part of a client secret is in the database file"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn tokens_work_on_every_node_and_revocation_reaches_them_within_5_seconds_on_every_backend() {
    for backend in backends(
        "tokens_work_on_every_node_and_revocation_reaches_them_within_5_seconds_on_every_backend",
    ) {
        let s = TestServer::start_on(backend).await;
        let other = Peer::start_with(&s, |a| a.allow_private_webhooks = true).await;
        // A token issued by the first node works on the other: the signing key is shared.
        let (status, body) = other.get(&s, HUBS, &s.a.portal).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let client_id = s.a.creds.portal.client_id.to_string();
        let tokens = format!("{}/tokens", client_path(&client_id));
        let (_, created) = s
            .post(&tokens, &s.a.portal, json!({ "name": "temp" }))
            .await;
        let access = s
            .token(&client_id, created["token"].as_str().unwrap())
            .await;
        // The other node has now seen the secret as active.
        assert_eq!(other.get(&s, HUBS, &access).await.0, StatusCode::OK);

        let (status, _) = s
            .delete(
                &format!("{tokens}/{}", created["id"].as_str().unwrap()),
                &s.a.portal,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let revoked_at = Instant::now();
        let mut refused = None;
        while revoked_at.elapsed() < Duration::from_secs(6) {
            let (status, body) = other.get(&s, HUBS, &access).await;
            if status == StatusCode::UNAUTHORIZED {
                assert_error(status, &body, 401, "PRT", &[102]);
                refused = Some(revoked_at.elapsed());
                break;
            }
            assert_eq!(status, StatusCode::OK, "{body}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let refused = refused.expect("the other node refuses the revoked secret's token");
        assert!(
            refused <= Duration::from_secs(5),
            "refused after {refused:?}"
        );
        other.stop().await;

        // After a restart of that node, the old tokens still verify: the key survived.
        let restarted = Peer::start_with(&s, |a| a.allow_private_webhooks = true).await;
        assert_eq!(restarted.get(&s, HUBS, &s.a.portal).await.0, StatusCode::OK);
        let (status, body) = restarted.get(&s, HUBS, &access).await;
        assert_error(status, &body, 401, "PRT", &[102]);
        restarted.stop().await;
        s.stop().await;
    }
}
