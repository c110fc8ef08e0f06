//! The widget's assets (SPEC 7.18.4): a stub answering 404 until the widget helper's file
//! replaces this one.

use poem::http::StatusCode;
use poem::{handler, Request, Response};

/// `GET /webchat/v1/widget.js` (stub: 404).
#[handler]
pub async fn widget(_req: &Request) -> Response {
    Response::builder().status(StatusCode::NOT_FOUND).finish()
}

/// `GET /webchat/v1/demo` (stub: 404).
#[handler]
pub async fn demo(_req: &Request) -> poem::Result<Response> {
    Ok(Response::builder().status(StatusCode::NOT_FOUND).finish())
}
