//! The Slack OAuth exchange of a Slack integration created with `code` and `nonce` (SPEC 3).

use poem::http::StatusCode;
use serde::Deserialize;
use switchboard_domain::integration::{SlackGrant, SlackOAuth};

use crate::error::{ApiError, Code};
use crate::state::AppState;

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    error: Option<String>,
    access_token: Option<String>,
    team: Option<Team>,
    authed_user: Option<AuthedUser>,
    incoming_webhook: Option<IncomingWebhook>,
}

#[derive(Deserialize)]
struct Team {
    id: String,
}

/// The installing user, with a user token when user scopes were asked for.
#[derive(Deserialize)]
struct AuthedUser {
    access_token: Option<String>,
}

/// The channel the app may post to, when the `incoming-webhook` scope was granted.
#[derive(Deserialize)]
struct IncomingWebhook {
    channel: Option<String>,
}

/// Exchanges the code with `{slack_api_url}/oauth.v2.access`. A refusal by Slack is 400/206
/// with Slack's reason; Slack unreachable (or answering nonsense) is 503/100. Besides the bot
/// token and team, the user token and the incoming webhook's channel are kept when granted.
pub async fn exchange(state: &AppState, oauth: &SlackOAuth) -> Result<SlackGrant, ApiError> {
    let unavailable = || {
        ApiError::with_status(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal as u32,
            "Slack could not be reached for the OAuth exchange.",
        )
    };
    let url = format!(
        "{}/oauth.v2.access",
        state.config.slack_api_url.trim_end_matches('/')
    );
    let resp = state
        .http
        .post(url)
        .form(&[
            ("code", oauth.code.as_str()),
            ("nonce", oauth.nonce.as_str()),
            ("client_id", state.config.slack_client_id.as_str()),
            ("client_secret", state.config.slack_client_secret.as_str()),
        ])
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "slack oauth exchange failed");
            unavailable()
        })?;
    // Slack answers its refusals with 200 and `ok: false`; a rate limit or an outage is not the
    // caller's fault.
    let status = resp.status();
    if status.is_server_error() || status.as_u16() == 429 {
        tracing::warn!(%status, "slack oauth exchange failed");
        return Err(unavailable());
    }
    let answer: Answer = resp.json().await.map_err(|_| unavailable())?;
    match answer {
        Answer {
            ok: true,
            access_token: Some(token),
            team: Some(team),
            authed_user,
            incoming_webhook,
            ..
        } => Ok(SlackGrant {
            bot_access_token: token,
            team_id: team.id,
            app_access_token: authed_user.and_then(|u| u.access_token),
            default_public_channel: incoming_webhook
                .and_then(|w| w.channel)
                .map(|c| c.trim_start_matches('#').to_owned()),
        }),
        Answer { ok: true, .. } => Err(unavailable()),
        Answer { error, .. } => Err(ApiError::out_of_range(format!(
            "Slack refused the OAuth exchange: {}.",
            error.unwrap_or_else(|| "unknown reason".to_owned())
        ))),
    }
}
