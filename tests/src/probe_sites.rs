//! Sites for the per-site metrics, probed by a real producer and archived by a real consumer: up,
//! down, redirected and `https` with an intermediate that expires before the leaf, as
//! blackbox_exporter and Prometheus tests need them.

use websentry_shared::report::Report;

use crate::{hostile::TlsSite, unreachable_url, Scratch, SiteServer, Stack, TestDatabase};

/// The location the producer writes into its reports (`probe`).
pub const PROBE_NAME: &str = "eu-west";
/// The cadence the producer states (`WEBSENTRY_CADENCE`): a site stays exported for twice that.
pub const CADENCE_S: u32 = 300;
/// The `notAfter` of the https site's leaf and of its intermediate (the chain's earliest).
pub const LEAF_NOT_AFTER: (i32, u8, u8) = (2040, 6, 30);
pub const CHAIN_NOT_AFTER: (i32, u8, u8) = (2031, 1, 15);

/// Sites a real producer probed `rounds` times from [`PROBE_NAME`], archived by a real consumer in
/// a database of their own.
#[derive(Debug)]
pub struct ProbedSites {
    pub db: TestDatabase,
    pub topic: String,
    /// `http://…/ok`: 200, named "Shop", group "Public".
    pub up: String,
    /// Nothing listens: connection refused, group "Internal".
    pub down: String,
    /// `http://…/redirect`: 302 to `/ok`, no name, no group.
    pub redirected: String,
    /// `https://localhost:…/`: 200; leaf until 2040-06-30, intermediate until 2031-01-15.
    pub https: String,
    /// The CA of the https site (PEM), for the producer and for blackbox_exporter.
    pub ca_file: String,
    pub site_server: SiteServer,
    pub tls_site: TlsSite,
}

impl Stack {
    /// [`ProbedSites`]: a sites file, `rounds` producer runs to a fresh topic, `extra` reports
    /// written straight to the topic, then one consumer run.
    pub fn archive_probed_sites(&self, rounds: usize, extra: &[Report]) -> ProbedSites {
        let db = self.create_database();
        let topic = self.create_topic(1);
        let site_server = SiteServer::start();
        let tls_site = TlsSite::with_intermediate_until(CHAIN_NOT_AFTER, "ok");
        let ca_file = tls_site.ca_file.as_ref().expect("a test CA").display().to_string();
        let (up, down, redirected, https) =
            (site_server.url("/ok"), unreachable_url(), site_server.url("/redirect"), tls_site.url.clone());
        let scratch = Scratch::new();
        let file = scratch.write(
            "sites.toml",
            format!(
                "[[site]]\nurl = \"{up}\"\nname = \"Shop\"\ngroup = \"Public\"\n\n[[site]]\nurl = \"{down}\"\n\
                 group = \"Internal\"\n\n[[site]]\nurl = \"{redirected}\"\n\n[[site]]\nurl = \"{https}\"\n"
            ),
        );
        for _ in 0..rounds {
            self.producer(&topic)
                .env("WEBSENTRY_SITES_FILE", &file)
                .env("WEBSENTRY_PROBE_CAFILE", &ca_file)
                .env("WEBSENTRY_PROBE_NAME", PROBE_NAME)
                .env("WEBSENTRY_CADENCE", CADENCE_S.to_string())
                .success();
        }
        if !extra.is_empty() {
            let records = extra.iter().map(|r| (Some(r.url.clone().into_bytes()), Some(r.to_json()))).collect();
            self.produce_raw(&topic, 0, records);
        }
        self.consumer(&topic, &db).success();
        ProbedSites { db, topic, up, down, redirected, https, ca_file, site_server, tls_site }
    }
}

/// Unix seconds of midnight UTC of `(year, month, day)`.
pub fn unix_midnight((year, month, day): (i32, u8, u8)) -> f64 {
    let month = time::Month::try_from(month).expect("a month");
    let date = time::Date::from_calendar_date(year, month, day).expect("a date");
    // Whole seconds of a date between 1970 and 2262: exact in an f64.
    #[allow(clippy::cast_precision_loss)]
    let seconds = date.midnight().assume_utc().unix_timestamp() as f64;
    seconds
}
