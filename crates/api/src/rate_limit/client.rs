//! Limits per client IP address, before routing: `/connect/token` has its own limit, and every
//! request without credentials counts against the `public` limit (the documentation, unknown
//! routes, an API route called without a token). The public channel routes are limited per
//! integration in their handler (a provider calls from few addresses). Requests with
//! credentials are limited per tenant once authenticated, and count against `public` too when
//! their credentials are refused (401); the probes and the metrics scrape (`/healthz`,
//! `/readyz`, `/metrics`) are not limited.

use std::net::{IpAddr, Ipv4Addr};

use poem::http::{HeaderName, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};

use super::{Key, Limit};
use crate::error::ApiError;
use crate::state::AppState;

/// Routes that are never limited: the orchestrator's probes and the metrics scrape.
const UNLIMITED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];
/// Where credentials are checked: requests carrying some are limited per tenant there.
const AUTHENTICATED: [&str; 5] = ["/api/", "/inbound/", "/engine-chat-hub", "/v1/", "/v1.1/"];
/// The public channel routes: a provider's calls come from a few addresses, so they are limited
/// per integration in the route (SPEC 7.3.2 step 2), and per address only once refused (401).
const CHANNELS: &str = "/channels/";

/// The middleware of the limits per client IP address.
pub struct ClientLimits<E> {
    inner: E,
    state: AppState,
}

impl<E> ClientLimits<E> {
    pub fn new(inner: E, state: AppState) -> Self {
        Self { inner, state }
    }
}

impl<E: Endpoint> Endpoint for ClientLimits<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let ip = client_ip(&req, self.state.config.client_ip_header.as_ref());
        if let Some(limit) = client_limit(&req) {
            self.state
                .limiter
                .check(limit, Key::client(ip))
                .await
                .map_err(ApiError::from)?;
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        // Credentials that are refused (401) make the request one without credentials: it
        // takes a token of the address's `public` bucket, and once that is empty the address
        // is answered 429 instead, so guessing or replaying tokens is limited like anonymous
        // requests. Valid credentials never touch the address's bucket.
        let answer = self.inner.call(req).await.map(IntoResponse::into_response);
        let refused = match &answer {
            Ok(resp) => resp.status() == StatusCode::UNAUTHORIZED,
            Err(e) => e.status() == StatusCode::UNAUTHORIZED,
        };
        if refused {
            self.state
                .limiter
                .check(Limit::Public, Key::client(ip))
                .await
                .map_err(ApiError::from)?;
        }
        answer
    }
}

/// The limit per client IP address that a request counts against, if any.
fn client_limit(req: &Request) -> Option<Limit> {
    let path = req.uri().path();
    let authenticated = AUTHENTICATED.iter().any(|p| path.starts_with(p)) && has_credentials(req);
    if path == "/connect/token" {
        Some(Limit::Token)
    } else if UNLIMITED.contains(&path) || path.starts_with(CHANNELS) || authenticated {
        None
    } else {
        Some(Limit::Public)
    }
}

/// Whether the request carries a credential of any kind: a bearer token, an integration
/// signature, or a websocket's `access_token` or `sig`.
fn has_credentials(req: &Request) -> bool {
    let headers = req.headers();
    headers.contains_key("authorization")
        || headers.contains_key("x-signature")
        || req.uri().query().is_some_and(|q| {
            q.split('&')
                .any(|p| p.starts_with("access_token=") || p.starts_with("sig="))
        })
}

/// The client's address: the last address of `header` when the operator's proxy sets one
/// (an `X-Forwarded-For` list ends with the address the proxy saw), else the peer address.
pub fn client_ip(req: &Request, header: Option<&HeaderName>) -> IpAddr {
    let forwarded = header
        .and_then(|h| req.headers().get(h))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse().ok());
    forwarded
        .or_else(|| req.remote_addr().as_socket_addr().map(|a| a.ip()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = Request::builder().uri(uri.parse().unwrap());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.finish()
    }

    #[test]
    fn which_requests_count_per_client_ip() {
        assert_eq!(client_limit(&req("/healthz", &[])), None);
        assert_eq!(client_limit(&req("/metrics", &[])), None);
        assert_eq!(
            client_limit(&req("/connect/token", &[])),
            Some(Limit::Token)
        );
        assert_eq!(
            client_limit(&req("/openapi.json", &[])),
            Some(Limit::Public)
        );
        assert_eq!(
            client_limit(&req("/nope", &[("authorization", "Bearer x")])),
            Some(Limit::Public)
        );
        assert_eq!(client_limit(&req("/api/v1/hubs", &[])), Some(Limit::Public));
        // Providers' calls are limited per integration in the channel routes.
        assert_eq!(client_limit(&req("/channels/telegram/x", &[])), None);
        assert_eq!(client_limit(&req("/channels/media/x/y?sig=s", &[])), None);
        assert_eq!(
            client_limit(&req("/api/v1/hubs", &[("authorization", "Bearer x")])),
            None
        );
        assert_eq!(
            client_limit(&req(
                "/inbound/customer/v1/direct/activity/x",
                &[("x-signature", "s")]
            )),
            None
        );
        assert_eq!(
            client_limit(&req("/engine-chat-hub?iId=x&access_token=t", &[])),
            None
        );
        assert_eq!(
            client_limit(&req("/engine-chat-hub?iId=x&ts=1&sig=s", &[])),
            None
        );
        assert_eq!(
            client_limit(&req("/engine-chat-hub?iId=x", &[])),
            Some(Limit::Public)
        );
    }

    #[test]
    fn the_client_ip_comes_from_the_operators_header_when_set() {
        let h = HeaderName::from_static("x-forwarded-for");
        let r = req("/", &[("x-forwarded-for", "203.0.113.9, 198.51.100.7")]);
        assert_eq!(
            client_ip(&r, Some(&h)),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // Not configured: the header is ignored (anyone can send it).
        assert_eq!(client_ip(&r, None), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        // Configured but absent or not an address: the peer address.
        let bad = req("/", &[("x-forwarded-for", "unknown")]);
        assert_eq!(client_ip(&bad, Some(&h)), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }
}
