//! The Telegram adapter (SPEC 7).

use serde_json::{Map, Value};

use super::adapter::{
    Adapter, Inbound, InboundError, InboundRequest, MediaLinker, Outcome, ProviderResponse,
    Rendered, SendContext,
};
use crate::activity::Payload;

/// The Telegram adapter.
pub struct Telegram;

impl Adapter for Telegram {
    fn provider(&self) -> &'static str {
        "Telegram"
    }

    fn verify(
        &self,
        _configuration: &Map<String, Value>,
        _app_secret: Option<&str>,
        _request: &InboundRequest<'_>,
    ) -> bool {
        false
    }

    fn parse(
        &self,
        _configuration: &Map<String, Value>,
        _request: &InboundRequest<'_>,
        _media: MediaLinker<'_>,
    ) -> Result<Inbound, InboundError> {
        Err(InboundError::Unparseable("not built yet".to_owned()))
    }

    fn render(&self, _context: &SendContext<'_>, _payload: &Payload) -> Rendered {
        Rendered::Nothing
    }

    fn outcome(&self, response: &ProviderResponse<'_>) -> Outcome {
        Outcome::Permanent {
            reason: format!("Telegram {}", response.status),
        }
    }
}
