//! Bearer authentication of the portal and engine APIs (SPEC 2): EdDSA tokens of this server,
//! not expired, whose client secret still exists, of the route's scope. An authenticated
//! request takes a token from its tenant's rate limit of the scope (portal or engine).

use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;
use switchboard_domain::identity::Scope;
use switchboard_domain::token::{self, Claims};

use crate::error::ApiError;
use crate::rate_limit::{Key, Limit};
use crate::state::AppState;

/// A verified token of scope `portal-api`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_portal")]
pub struct PortalAuth(pub Claims);

/// A verified token of scope `engine-api`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_engine")]
pub struct EngineAuth(pub Claims);

async fn check_portal(req: &Request, bearer: Bearer) -> poem::Result<Claims> {
    verify(req, &bearer.token, Scope::Portal)
        .await
        .map_err(Into::into)
}

async fn check_engine(req: &Request, bearer: Bearer) -> poem::Result<Claims> {
    verify(req, &bearer.token, Scope::Engine)
        .await
        .map_err(Into::into)
}

/// Verifies a bearer token for a route of `scope`.
pub async fn verify(req: &Request, token: &str, scope: Scope) -> Result<Claims, ApiError> {
    let state = req.data::<AppState>().ok_or_else(ApiError::internal)?;
    verify_token(state, token, scope).await
}

/// Verifies a token against the state: 401/102 unless valid, 403/101 for the other scope,
/// 429/429 past the tenant's rate limit of the scope.
pub async fn verify_token(state: &AppState, token: &str, scope: Scope) -> Result<Claims, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let claims = match state.verified_token(token) {
        Some(claims) if claims.exp > now => claims,
        Some(_) => {
            return Err(ApiError::unauthorized(&format!(
                "The access token is invalid: {}.",
                token::TokenError::Expired
            )))
        }
        None => {
            let claims = token::decode(&state.verifying, token, now).map_err(|e| {
                ApiError::unauthorized(&format!("The access token is invalid: {e}."))
            })?;
            state.remember_token(token, &claims);
            claims
        }
    };
    if !state.secret_is_active(claims.sid).await? {
        return Err(ApiError::unauthorized("The access token has been revoked."));
    }
    if claims.scope() != Some(scope) {
        return Err(ApiError::forbidden(&format!(
            "This route requires a token of scope '{}'.",
            scope.as_str()
        )));
    }
    let limit = match scope {
        Scope::Portal => Limit::Portal,
        Scope::Engine => Limit::Engine,
    };
    state.limiter.check(limit, Key::Tenant(claims.tid)).await?;
    Ok(claims)
}
