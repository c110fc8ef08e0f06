//! `POST /connect/token`: client credentials for an access token (SPEC 2).

use poem::web::Data;
use poem_openapi::payload::{Json, Response};
use poem_openapi::{Object, OpenApi};
use switchboard_domain::identity::hash_secret;
use switchboard_domain::ids::ClientId;
use switchboard_domain::time::now_millis;
use switchboard_domain::token::{self, Claims};
use switchboard_domain::{Violation, Violations};

use crate::body::FormBody;
use crate::error::ApiError;
use crate::state::AppState;
use crate::Tags;

/// The token request, form-encoded.
#[derive(Object)]
#[oai(rename_all = "snake_case")]
pub struct TokenIn {
    /// Always `client_credentials`.
    pub grant_type: String,
    /// The client id printed by `switchboard tenant create`.
    pub client_id: String,
    /// One of the client's secrets.
    pub client_secret: String,
}

/// An access token.
#[derive(Object)]
#[oai(rename_all = "snake_case")]
pub struct TokenOut {
    /// A JWT signed with the server's Ed25519 key (`alg` EdDSA). Send it as `Authorization: Bearer …`.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// Always `Bearer`.
    pub token_type: String,
    /// `portal-api` or `engine-api`, the scope of the client.
    pub scope: String,
}

pub struct TokenApi;

#[OpenApi(tag = "Tags::Identity")]
impl TokenApi {
    /// Get an access token
    ///
    /// Exchanges a client id and secret (OAuth 2 client credentials) for a bearer token of the
    /// client's scope. A wrong id or secret answers 401 (code 102).
    // SPEC 2
    #[oai(
        path = "/connect/token",
        method = "post",
        operation_id = "token.create"
    )]
    async fn create_token(
        &self,
        state: Data<&AppState>,
        body: FormBody<TokenIn>,
    ) -> Result<Response<Json<TokenOut>>, ApiError> {
        let f = &body.fields;
        let mut v = Violations::default();
        let get = |k: &str, v: &mut Violations| match f.get(k) {
            Some(s) if !s.is_empty() => Some(s.as_str()),
            _ => {
                v.push(Violation::required(k));
                None
            }
        };
        // Checked in the order of the fields, so errors are listed in that order too.
        if get("grant_type", &mut v).is_some_and(|g| g != "client_credentials") {
            v.push(Violation::out_of_range(
                "grant_type",
                "must be 'client_credentials'",
            ));
        }
        let client_id = get("client_id", &mut v);
        let secret = get("client_secret", &mut v);
        let (Some(client_id), Some(secret)) = (client_id, secret) else {
            return Err(v.into());
        };
        if !v.is_empty() {
            return Err(v.into());
        }
        let bad = || ApiError::unauthorized("The client id or secret is wrong.");
        let client_id: ClientId = client_id.parse().map_err(|_| bad())?;
        let login = state
            .store
            .find_login(client_id, &hash_secret(secret), now_millis())
            .await?
            .ok_or_else(bad)?;
        let now = chrono::Utc::now().timestamp();
        let ttl = state.config.token_ttl_secs;
        let claims = Claims {
            tid: login.tenant_id,
            sub: login.client_id,
            scope: login.scope.as_str().to_owned(),
            sid: login.secret_id,
            iat: now,
            exp: now + ttl,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        // A token response must not be cached (RFC 6749, section 5.1).
        Ok(Response::new(Json(TokenOut {
            access_token: token::encode(&state.signing, &claims),
            expires_in: ttl,
            token_type: "Bearer".to_owned(),
            scope: claims.scope,
        }))
        .header("Cache-Control", "no-store")
        .header("Pragma", "no-cache"))
    }
}
