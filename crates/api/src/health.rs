//! Liveness, readiness (the store and the engine's live bus answer a ping) and metrics (SPEC 6).

use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::error::{ApiError, Code};
use crate::state::AppState;
use crate::Tags;

/// A health answer.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct HealthOut {
    /// `ok`.
    pub status: String,
}

/// Renders the Prometheus text; installed by the server.
#[derive(Clone)]
pub struct MetricsRenderer(pub std::sync::Arc<dyn Fn() -> String + Send + Sync + 'static>);

/// The metrics text.
#[derive(ApiResponse)]
pub enum MetricsResponse {
    /// Prometheus text exposition format.
    #[oai(status = 200, content_type = "text/plain; version=0.0.4")]
    Ok(PlainText<String>),
}

pub struct HealthApi;

#[OpenApi(tag = "Tags::Operations")]
impl HealthApi {
    /// Liveness
    ///
    /// 200 while the process is up.
    // SPEC 6
    #[oai(path = "/healthz", method = "get", operation_id = "health.live")]
    async fn healthz(&self) -> Json<HealthOut> {
        Json(HealthOut {
            status: "ok".to_owned(),
        })
    }

    /// Readiness
    ///
    /// 200 when the database (and Redis, where configured) answer; 503 otherwise.
    // SPEC 6
    #[oai(path = "/readyz", method = "get", operation_id = "health.ready")]
    async fn readyz(&self, state: Data<&AppState>) -> Result<Json<HealthOut>, ApiError> {
        if let Err(e) = state.store.ping().await {
            tracing::warn!(error = %e, "readiness: database unavailable");
            return Err(ApiError::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Internal as u32,
                "The database is unavailable.",
            ));
        }
        if let Err(e) = state.engine.bus().ping().await {
            tracing::warn!(error = %e, "readiness: live bus unavailable");
            return Err(ApiError::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Internal as u32,
                "The live bus (Redis) is unavailable.",
            ));
        }
        Ok(Json(HealthOut {
            status: "ok".to_owned(),
        }))
    }

    /// Metrics
    ///
    /// Request counts and latencies, in the Prometheus text format.
    // SPEC 6
    #[oai(path = "/metrics", method = "get", operation_id = "health.metrics")]
    async fn metrics(&self, renderer: Data<&MetricsRenderer>) -> MetricsResponse {
        MetricsResponse::Ok(PlainText((renderer.0 .0)()))
    }
}
