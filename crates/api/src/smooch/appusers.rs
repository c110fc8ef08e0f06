//! Placeholder until its routes land (SPEC 8). Answers 501 naming what is missing.

use switchboard_domain::hub::Hub;

use super::{not_implemented, Answer, Ctx};

/// The routes after `{A}/appusers`.
pub async fn route(_ctx: &mut Ctx<'_>, _hub: Hub, _rest: &[&str]) -> Answer {
    Err(not_implemented("appusers"))
}
