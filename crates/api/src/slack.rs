//! The Slack OAuth exchange of a Slack integration created with `code` and `nonce` (SPEC 3).

use poem::http::StatusCode;
use serde::Deserialize;
use switchboard_domain::integration::SlackOAuth;

use crate::error::{ApiError, Code};
use crate::state::AppState;

/// What Slack granted.
pub struct Granted {
    pub bot_access_token: String,
    pub team_id: String,
}

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    error: Option<String>,
    access_token: Option<String>,
    team: Option<Team>,
}

#[derive(Deserialize)]
struct Team {
    id: String,
}

/// Exchanges the code with `{slack_api_url}/oauth.v2.access`. A refusal by Slack is 400/206
/// with Slack's reason; Slack unreachable (or answering nonsense) is 503/100.
pub async fn exchange(state: &AppState, oauth: &SlackOAuth) -> Result<Granted, ApiError> {
    let unavailable = || ApiError::with_status(StatusCode::SERVICE_UNAVAILABLE, Code::Internal as u32, "Slack could not be reached for the OAuth exchange.");
    let url = format!("{}/oauth.v2.access", state.config.slack_api_url.trim_end_matches('/'));
    let resp = state
        .http
        .post(url)
        .form(&[("code", oauth.code.as_str()), ("nonce", oauth.nonce.as_str())])
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "slack oauth exchange failed");
            unavailable()
        })?;
    let answer: Answer = resp.json().await.map_err(|_| unavailable())?;
    match answer {
        Answer { ok: true, access_token: Some(token), team: Some(team), .. } => Ok(Granted { bot_access_token: token, team_id: team.id }),
        Answer { ok: true, .. } => Err(unavailable()),
        Answer { error, .. } => Err(ApiError::out_of_range(format!(
            "Slack refused the OAuth exchange: {}",
            error.unwrap_or_else(|| "unknown reason".to_owned())
        ))),
    }
}
