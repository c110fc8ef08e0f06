//! WebChat (SPEC 7.18). TEMPORARY in the widget helper's branch (`wcw`): only the two asset
//! routes, so that the widget can be tested; the server helper's `mod.rs` (sessions, CORS,
//! socket) replaces this file whole at the merge.

pub mod assets;

use poem::Route;

/// The WebChat routes, to nest at `/webchat/v1`.
pub fn routes() -> Route {
    Route::new()
        .at("/widget.js", poem::get(assets::widget))
        .at("/demo", poem::get(assets::demo))
}
