//! `Gate`: an HTTP endpoint on 127.0.0.1:0 that holds every request it gets until the test
//! answers it, so that a test can have a webhook attempt or an outgoing call of the server in
//! flight for as long as it needs, and see each request arrive as an event.

use std::time::Duration;

use poem::http::StatusCode;
use tokio::sync::{mpsc, oneshot};

/// One request held by a [`Gate`]; answered by [`Arrival::answer`] (dropped unanswered: 503).
pub struct Arrival {
    pub path: String,
    pub headers: poem::http::HeaderMap,
    pub body: Vec<u8>,
    reply: oneshot::Sender<(StatusCode, String)>,
}

impl Arrival {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Lets the request through with `status` and a JSON `body`.
    pub fn answer(self, status: u16, body: serde_json::Value) {
        let status = StatusCode::from_u16(status).expect("status");
        let _ = self.reply.send((status, body.to_string()));
    }
}

pub struct Gate {
    pub base: String,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
    server: tokio::task::JoinHandle<()>,
}

#[poem::handler]
async fn hold(
    req: &poem::Request,
    body: poem::Body,
    arrivals: poem::web::Data<&mpsc::UnboundedSender<Arrival>>,
) -> poem::Response {
    let (reply, answered) = oneshot::channel();
    let arrival = Arrival {
        path: req.uri().path().to_owned(),
        headers: req.headers().clone(),
        body: body.into_vec().await.unwrap_or_default(),
        reply,
    };
    if arrivals.0.send(arrival).is_err() {
        return poem::Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .finish();
    }
    match answered.await {
        Ok((status, body)) => poem::Response::builder()
            .status(status)
            .content_type("application/json")
            .body(body),
        Err(_) => poem::Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .finish(),
    }
}

impl Gate {
    pub async fn start() -> Self {
        use poem::EndpointExt;
        let (tx, arrivals) = mpsc::unbounded_channel();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).expect("acceptor");
        let app = poem::Route::new().at("/*path", hold).data(tx);
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self {
            base: format!("http://{addr}"),
            arrivals,
            server,
        }
    }

    /// The next request to arrive, held until answered; panics after 30 s.
    pub async fn next(&mut self) -> Arrival {
        tokio::time::timeout(Duration::from_secs(30), self.arrivals.recv())
            .await
            .expect("a request at the gate within 30 s")
            .expect("the gate is up")
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.server.abort();
    }
}
