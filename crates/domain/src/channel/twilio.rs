//! The Twilio adapter (SPEC 7).

use serde_json::{Map, Value};

use super::adapter::{
    Adapter, Inbound, InboundError, InboundRequest, MediaLinker, Outcome, ProviderResponse,
    Rendered, SendContext,
};
use crate::activity::Payload;

/// The Twilio adapter.
pub struct Twilio;

impl Adapter for Twilio {
    fn provider(&self) -> &'static str {
        "Twilio"
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
            reason: format!("Twilio {}", response.status),
        }
    }
}
