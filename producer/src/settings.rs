//! The producer's settings: flags and `WEBSENTRY_*` variables as text (stage one, clap), then checked
//! into a [`Config`] before any work starts (stage two).

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use rustls::RootCertStore;
use websentry_shared::{
    kafka::{KafkaArgs, KafkaSettings},
    settings::{Setting, SettingError},
    telemetry::{LogArgs, LogSettings},
    tls,
};

use crate::{
    matcher::Matcher,
    probe::ProbeSettings,
    site::{self, Site},
    sites_file,
};

const SITES: Setting = Setting::new("WEBSENTRY_SITES", "sites");
const SITES_FILE: Setting = Setting::new("WEBSENTRY_SITES_FILE", "sites-file");
const REGEXP: Setting = Setting::new("WEBSENTRY_REGEXP", "regexp");
const INTERVAL: Setting = Setting::new("WEBSENTRY_INTERVAL", "interval");
const TIMEOUT: Setting = Setting::new("WEBSENTRY_TIMEOUT", "timeout");
const CONCURRENCY: Setting = Setting::new("WEBSENTRY_CONCURRENCY", "concurrency");
const BODY_LIMIT: Setting = Setting::new("WEBSENTRY_BODY_LIMIT", "body-limit");
const MAX_REDIRECTS: Setting = Setting::new("WEBSENTRY_MAX_REDIRECTS", "max-redirects");
const PROBE_CAFILE: Setting = Setting::new("WEBSENTRY_PROBE_CAFILE", "probe-cafile");

/// Probes websites and publishes one JSON report per probe to Kafka over mutual TLS.
///
/// Every flag can also be given as the environment variable shown beside it.
#[derive(Debug, Parser)]
#[command(name = "websentry-producer", version)]
pub struct Args {
    /// Sites to probe: http(s) URLs separated by commas, spaces or newlines.
    #[arg(long, env = "WEBSENTRY_SITES", value_name = "URLS")]
    pub sites: Option<String>,
    /// TOML file of sites with settings of their own (regexp, expect_status, timeout, method,
    /// headers); its sites are probed beside those of --sites.
    #[arg(long, env = "WEBSENTRY_SITES_FILE", value_name = "FILE")]
    pub sites_file: Option<PathBuf>,
    /// Regular expression searched in every body; the report holds the first match's groups joined,
    /// or the whole match without groups. Empty: no search.
    #[arg(long, env = "WEBSENTRY_REGEXP", value_name = "PATTERN")]
    pub regexp: Option<String>,
    /// Seconds between the starts of two rounds; 0 runs one round and exits.
    #[arg(long, env = "WEBSENTRY_INTERVAL", default_value = "0", value_name = "SECONDS")]
    pub interval: String,
    /// Seconds one probe may take, all phases and redirects included.
    #[arg(long, env = "WEBSENTRY_TIMEOUT", default_value = "10", value_name = "SECONDS")]
    pub timeout: String,
    /// Probes running at once at most.
    #[arg(long, env = "WEBSENTRY_CONCURRENCY", default_value = "100", value_name = "N")]
    pub concurrency: String,
    /// Body bytes read at most per probe; the pattern is matched on what was read.
    #[arg(long, env = "WEBSENTRY_BODY_LIMIT", default_value = "1048576", value_name = "BYTES")]
    pub body_limit: String,
    /// Redirects followed at most.
    #[arg(long, env = "WEBSENTRY_MAX_REDIRECTS", default_value = "10", value_name = "N")]
    pub max_redirects: String,
    /// PEM file of extra CA certificates trusted for https sites, beside the built-in Mozilla roots.
    #[arg(long, env = "WEBSENTRY_PROBE_CAFILE", value_name = "FILE")]
    pub probe_cafile: Option<PathBuf>,
    /// Name written into each report's `probe` field [default: the host name].
    #[arg(long, env = "WEBSENTRY_PROBE_NAME", value_name = "NAME")]
    pub probe_name: Option<String>,
    /// Print one JSON report per line to stdout instead of publishing; Kafka settings are then
    /// not needed.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Where reports go.
#[derive(Debug, Clone)]
pub enum Output {
    Kafka(KafkaSettings),
    /// One JSON line per report on stdout.
    Stdout,
}

/// Everything checked; nothing left to fail on but the network.
#[derive(Debug)]
pub struct Config {
    pub log: LogSettings,
    pub sites: Vec<Site>,
    pub probe: ProbeSettings,
    pub roots: RootCertStore,
    /// `None`: one round, then exit.
    pub interval: Option<Duration>,
    pub concurrency: usize,
    pub output: Output,
}

impl Args {
    /// Checks every setting, in the order an operator reads them.
    ///
    /// # Errors
    /// The first setting that is missing or malformed, by name.
    pub fn parse_config(&self) -> Result<Config, SettingError> {
        let log = self.log.parse()?;
        let matcher = match self.regexp.as_deref().filter(|p| !p.is_empty()) {
            Some(pattern) => {
                Some(Matcher::parse(pattern).map_err(|err| REGEXP.error(format!("does not compile: {err}")))?)
            }
            None => None,
        };
        let listed = site::parse_list(self.sites.as_deref().unwrap_or_default()).map_err(|e| SITES.error(e))?;
        let mut sites: Vec<Site> = listed.into_iter().map(|url| Site::simple(url, matcher.clone())).collect();
        if let Some(path) = &self.sites_file {
            let path = SITES_FILE.readable_file(Some(path.clone()))?;
            sites.extend(sites_file::load(&path, matcher.as_ref()).map_err(|e| SITES_FILE.error(e))?);
        }
        if sites.is_empty() {
            return Err(SITES.error("names no site (set it, or WEBSENTRY_SITES_FILE)"));
        }
        let interval = INTERVAL.seconds(&self.interval)?;
        let timeout = positive(TIMEOUT, &self.timeout)?;
        let concurrency = positive(CONCURRENCY, &self.concurrency)?;
        let body_limit = positive(BODY_LIMIT, &self.body_limit)?;
        let max_redirects = whole(MAX_REDIRECTS, &self.max_redirects)?;
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = &self.probe_cafile {
            let path = PROBE_CAFILE.readable_file(Some(path.clone()))?;
            roots.roots.extend(tls::root_store(&path, PROBE_CAFILE)?.roots);
        }
        let output = if self.dry_run { Output::Stdout } else { Output::Kafka(self.kafka.parse()?) };
        Ok(Config {
            log,
            sites,
            probe: ProbeSettings {
                timeout: Duration::from_secs(timeout as u64),
                body_limit,
                max_redirects: max_redirects as u32,
                probe_name: self.probe_name.clone().filter(|n| !n.is_empty()).unwrap_or_else(host_name),
            },
            roots,
            interval: (!interval.is_zero()).then_some(interval),
            concurrency,
            output,
        })
    }
}

fn whole(setting: Setting, value: &str) -> Result<usize, SettingError> {
    value.trim().parse::<usize>().map_err(|_| setting.error(format!("'{value}' is not a whole number")))
}

fn positive(setting: Setting, value: &str) -> Result<usize, SettingError> {
    match whole(setting, value)? {
        0 => Err(setting.error("must be at least 1")),
        n => Ok(n),
    }
}

/// The pod's or machine's name: what an operator recognises in a report.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "websentry-producer".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["websentry-producer", "--dry-run"];
        if !extra.contains(&"--sites") {
            argv.extend(["--sites", "https://example.com/"]);
        }
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_give_one_round_with_the_documented_limits() {
        let config = args(&[]).parse_config().unwrap();
        assert_eq!(config.interval, None);
        assert_eq!(config.probe.timeout, Duration::from_secs(10));
        assert_eq!(config.concurrency, 100);
        assert_eq!(config.probe.body_limit, 1 << 20);
        assert!(matches!(config.output, Output::Stdout));
    }

    #[test]
    fn each_bad_setting_is_named_in_its_error() {
        for (flags, expected) in [
            (&["--interval", "soon"][..], "WEBSENTRY_INTERVAL (--interval)"),
            (&["--timeout", "0"][..], "WEBSENTRY_TIMEOUT (--timeout)"),
            (&["--concurrency=-3"][..], "WEBSENTRY_CONCURRENCY (--concurrency)"),
            (&["--regexp", "(unclosed"][..], "WEBSENTRY_REGEXP (--regexp)"),
            (&["--sites", "not a url"][..], "WEBSENTRY_SITES (--sites)"),
            (&["--sites", " "][..], "WEBSENTRY_SITES (--sites)"),
            (&["--sites-file", "/nonexistent.toml"][..], "WEBSENTRY_SITES_FILE (--sites-file)"),
            (&["--probe-cafile", "/nonexistent"][..], "WEBSENTRY_PROBE_CAFILE (--probe-cafile)"),
            (&["--loglevel", "LOUD"][..], "WEBSENTRY_LOGLEVEL (--loglevel)"),
        ] {
            let err = args(flags).parse_config().expect_err(expected).to_string();
            assert!(err.starts_with(expected), "flags {flags:?}: {err}");
        }
    }

    #[test]
    fn an_empty_pattern_means_no_search() {
        assert!(args(&["--regexp", ""]).parse_config().unwrap().sites[0].matcher.is_none());
    }

    #[test]
    fn publishing_requires_the_kafka_settings() {
        let args = Args::try_parse_from(["websentry-producer", "--sites", "https://example.com/"]).unwrap();
        let err = args.parse_config().unwrap_err().to_string();
        assert!(err.starts_with("WEBSENTRY_KAFKA_HOSTS (--kafka-hosts)"), "{err}");
    }
}
