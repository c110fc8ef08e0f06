//! Logs (tracing, text or JSON) and metrics (Prometheus text at `/metrics`).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use poem::http::Method;
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
///
/// The labels are a closed set, so a client cannot add series: the method is one of RFC 9110's
/// (and PATCH) or `other`, the status one of 100 to 599 (`other` beyond). No path is a label.
/// The handles are looked up once per label pair and kept, so a request allocates nothing here.
pub struct RequestMetrics;

impl<E: Endpoint> Middleware<E> for RequestMetrics {
    type Output = RequestMetricsEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        RequestMetricsEndpoint(ep)
    }
}

pub struct RequestMetricsEndpoint<E>(E);

/// The method labels; the last is every other method.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other",
];

/// The index of a method's label in [`METHODS`].
fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => 9,
    }
}

/// Statuses 100 to 599 have their own label; the last slot is every other one.
const STATUSES: usize = 501;

fn status_index(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status - 100),
        _ => STATUSES - 1,
    }
}

type Counters = [[OnceLock<metrics::Counter>; STATUSES]; METHODS.len()];

fn request_counter(method: usize, status: u16) -> &'static metrics::Counter {
    static COUNTERS: Counters = [const { [const { OnceLock::new() }; STATUSES] }; METHODS.len()];
    COUNTERS[method][status_index(status)].get_or_init(|| {
        handle();
        let status = match status {
            100..=599 => status.to_string(),
            _ => "other".to_owned(),
        };
        metrics::counter!("http_requests_total", "method" => METHODS[method], "status" => status)
    })
}

fn request_histogram(method: usize) -> &'static metrics::Histogram {
    static HISTOGRAMS: [OnceLock<metrics::Histogram>; METHODS.len()] =
        [const { OnceLock::new() }; METHODS.len()];
    HISTOGRAMS[method].get_or_init(|| {
        handle();
        metrics::histogram!("http_request_duration_seconds", "method" => METHODS[method])
    })
}

impl<E: Endpoint> Endpoint for RequestMetricsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let start = Instant::now();
        let method = method_index(req.method());
        let path = tracing::enabled!(tracing::Level::DEBUG).then(|| req.uri().path().to_owned());
        let resp = self.0.call(req).await?.into_response();
        let status = resp.status().as_u16();
        let secs = start.elapsed().as_secs_f64();
        request_counter(method, status).increment(1);
        request_histogram(method).record(secs);
        if let Some(path) = path {
            let method = METHODS[method];
            tracing::debug!(method, %path, status, ms = secs * 1000.0, "request");
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_a_closed_set() {
        assert_eq!(METHODS[method_index(&Method::PATCH)], "PATCH");
        let invented = Method::from_bytes(b"FOOBAR").expect("a valid token");
        assert_eq!(METHODS[method_index(&invented)], "other");
        assert_eq!(status_index(100), 0);
        assert_eq!(status_index(599), 499);
        assert_eq!(status_index(600), STATUSES - 1);
        assert_eq!(status_index(99), STATUSES - 1);
    }
}
