//! The pages, server-rendered with askama templates (`templates/`) and inline SVG: no JavaScript,
//! one `<h1>` each, stable ids and classes for tests (`<tr class="site" data-state="down"
//! id="site-<id>">`).
//!
//! - `pages/overview.rs`: `/`, every shown site, trouble first, with a GET form to filter by group
//!   and search by name or URL;
//! - `pages/site.rs`: `/sites/{id}`, one site in detail;
//! - `pages/format.rs`: how times, durations and figures are written.

mod format;
mod overview;
mod site;

use axum::{routing::get, Router};

pub use overview::Rendered;

use crate::routes::App;

pub fn routes() -> Router<App> {
    Router::new().route("/", get(overview::page)).route("/sites/{id}", get(site::page))
}
