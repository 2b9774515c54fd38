//! What the pages, the API and the badges show, computed from the rows the database returns by pure
//! functions (no I/O, no clock: `now` is a parameter), so that every rule is unit-tested here.
//!
//! - [`window`]: the four windows (24h, 7d, 30d, 90d) and how a request names them.
//! - [`id`]: a site's short, stable id in paths.
//! - [`figures`]: uptime and measured time over a set of buckets, and how they are shown.
//! - [`state`]: up, down or unknown, per location and per site.
//! - [`overview`]: every shown site with its locations, windows and 90 days, trouble first.

pub mod figures;
pub mod id;
pub mod overview;
pub mod state;
pub mod window;

pub use figures::{Bucket, Figures};
pub use overview::{Day, Location, Overview, Site};
pub use state::State;
pub use window::Window;
