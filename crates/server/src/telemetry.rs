//! Logs (tracing, text or JSON) and metrics (Prometheus text at `/metrics`).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use switchboard_api::MetricsRenderer;

use crate::config::LogFormat;

/// Installs the log subscriber: level from `RUST_LOG` (default `info`), to stderr.
pub fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // One recorder per process; several servers in one test process share it.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Renders the process's metrics.
pub fn metrics_renderer() -> MetricsRenderer {
    let h = handle();
    MetricsRenderer(Arc::new(move || h.render()))
}

/// Counts requests by method and status, times them, and logs each at debug level.
pub struct RequestMetrics;

impl<E: Endpoint> Middleware<E> for RequestMetrics {
    type Output = RequestMetricsEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        RequestMetricsEndpoint(ep)
    }
}

pub struct RequestMetricsEndpoint<E>(E);

impl<E: Endpoint> Endpoint for RequestMetricsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let start = Instant::now();
        let method = req.method().to_string();
        let path = req.uri().path().to_owned();
        let resp = self.0.call(req).await?.into_response();
        let status = resp.status().as_u16();
        let secs = start.elapsed().as_secs_f64();
        metrics::counter!("http_requests_total", "method" => method.clone(), "status" => status.to_string()).increment(1);
        metrics::histogram!("http_request_duration_seconds", "method" => method.clone())
            .record(secs);
        tracing::debug!(%method, %path, status, ms = secs * 1000.0, "request");
        Ok(resp)
    }
}
