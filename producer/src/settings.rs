//! The producer's settings: flags and `WEBSENTRY_*` variables as text (stage one, clap), then checked
//! into a [`Config`] before any work starts (stage two).

use std::{collections::HashMap, ffi::OsString, path::Path, time::Duration};

use clap::Parser;
use rustls::RootCertStore;
use websentry_shared::{
    kafka::{KafkaArgs, KafkaSettings},
    settings::{Named, SettingError, Whole},
    telemetry::{LogArgs, LogSettings},
    tls,
};

use crate::{
    matcher::Matcher,
    probe::ProbeSettings,
    site::{self, Site, SiteUrl, TIMEOUT},
    sites_file::{self, FileSite},
    slot::{self, Shard},
};

/// Seconds between rounds: 0 runs one round; at most a day.
pub const INTERVAL: Whole<u64> = Whole::seconds(0, 86_400, 0);
/// The cadence of a one-off run scheduled from outside (a CronJob): as the reports' `interval_s`.
pub const CADENCE: Whole<u64> = Whole::optional_seconds(1, 86_400);
// The timeout is a site's (`site::TIMEOUT`): the sites file checks a site's own against its range.
/// Probes at once: each holds a socket and up to a body limit of memory; tokio's semaphore has a
/// limit of its own far above this.
pub const CONCURRENCY: Whole<usize> = Whole::new(1, 100_000, 100);
/// Body bytes read per probe: 64 MiB at most, far beyond a health page.
pub const BODY_LIMIT: Whole<usize> = Whole::new(1, 64 * 1024 * 1024, 1024 * 1024);
/// Redirects followed: 50 is beyond any browser's limit (Chrome and Firefox stop at 20).
pub const MAX_REDIRECTS: Whole<u32> = Whole::new(0, 50, 10);

/// Probes websites and publishes one JSON report per probe to Kafka over mutual TLS.
///
/// Every flag can also be given as the environment variable shown beside it.
#[derive(Debug, Parser)]
#[command(name = "websentry-producer", version)]
pub struct Args {
    /// Sites to probe: http(s) URLs separated by commas, spaces or newlines; each URL once. Required
    /// unless the sites file names sites.
    #[arg(long, env = "WEBSENTRY_SITES", value_name = "URLS", hide_env_values = true)]
    pub sites: Option<String>,
    /// Canaries: URLs separated like --sites, probed at the start of each round (none by default).
    /// When every canary fails too, the round's failed reports are marked inconclusive: the failure
    /// may be this producer's own network, so the archive counts that time as unmeasured, not down.
    /// Their own reports are published like any site's; each URL once across --sites, the sites
    /// file and the canaries.
    #[arg(long, env = "WEBSENTRY_CANARIES", value_name = "URLS")]
    pub canaries: Option<String>,
    /// TOML file of sites with settings of their own (regexp, expect_status, timeout, interval, method,
    /// headers, header values from files); its sites are probed beside those of --sites.
    #[arg(long, env = "WEBSENTRY_SITES_FILE", value_name = "FILE")]
    pub sites_file: Option<OsString>,
    /// Regular expression searched in every body; the report holds the first match's groups joined,
    /// or the whole match without groups. Empty: no search.
    #[arg(long, env = "WEBSENTRY_REGEXP", value_name = "PATTERN")]
    pub regexp: Option<String>,
    #[arg(
        long,
        env = "WEBSENTRY_INTERVAL",
        default_value_t = INTERVAL.default_text(),
        value_name = "SECONDS",
        help = INTERVAL.help("A daemon's interval: seconds between two probes of a site, spread over it by a hash of each URL ({range}); a site's own interval in the sites file wins. 0 runs once and exits")
    )]
    pub interval: String,
    #[arg(
        long,
        env = "WEBSENTRY_CADENCE",
        value_name = "SECONDS",
        help = CADENCE.help("Seconds between two one-off runs as they are scheduled (a CronJob's schedule; {range}): a run probes the sites due in its period (each site's own interval, a whole multiple of it, or the cadence itself) and writes each site's interval into its reports as interval_s, so that the archive can tell measured time from unmeasured. Unset, a one-off run probes every site and its time is unknown. A daemon's cadence is its interval")
    )]
    pub cadence: Option<String>,
    #[arg(
        long,
        env = "WEBSENTRY_TIMEOUT",
        default_value_t = TIMEOUT.default_text(),
        value_name = "SECONDS",
        help = TIMEOUT.help("Seconds one probe may take, all phases and redirects included ({range}); a site's own timeout in the sites file wins")
    )]
    pub timeout: String,
    #[arg(
        long,
        env = "WEBSENTRY_CONCURRENCY",
        default_value_t = CONCURRENCY.default_text(),
        value_name = "N",
        help = CONCURRENCY.help("Probes running at once at most")
    )]
    pub concurrency: String,
    #[arg(
        long,
        env = "WEBSENTRY_BODY_LIMIT",
        default_value_t = BODY_LIMIT.default_text(),
        value_name = "BYTES",
        help = BODY_LIMIT.help("Body bytes read at most per probe ({range}); the pattern is matched on what was read and the report says body_limit")
    )]
    pub body_limit: String,
    #[arg(
        long,
        env = "WEBSENTRY_MAX_REDIRECTS",
        default_value_t = MAX_REDIRECTS.default_text(),
        value_name = "N",
        help = MAX_REDIRECTS.help("Redirects followed at most ({range}); one more is an http error")
    )]
    pub max_redirects: String,
    /// PEM file of extra CA certificates trusted for https sites, beside the built-in Mozilla roots.
    #[arg(long, env = "WEBSENTRY_PROBE_CAFILE", value_name = "FILE")]
    pub probe_cafile: Option<OsString>,
    /// Name written into each report's `probe` field: where the probes run from, e.g. a region
    /// (eu-west); the archive answers per name [default: the host name].
    #[arg(long, env = "WEBSENTRY_PROBE_NAME", value_name = "NAME")]
    pub probe_name: Option<String>,
    /// Probe only shard K of N of the sites (K counted from 0: 0/3, 1/3, 2/3); each site is in
    /// exactly one shard, by a hash of its URL. Canaries are probed by every shard.
    #[arg(long, env = "WEBSENTRY_SHARD", value_name = "K/N")]
    pub shard: Option<String>,
    /// In a Kubernetes Indexed Job: the number of shards (the Job's completions), this pod's
    /// shard being JOB_COMPLETION_INDEX.
    #[arg(long, env = "WEBSENTRY_SHARDS", value_name = "N")]
    pub shards: Option<String>,
    /// Set by Kubernetes in an Indexed Job: this pod's shard of WEBSENTRY_SHARDS.
    #[arg(long, env = "JOB_COMPLETION_INDEX", value_name = "K")]
    pub job_completion_index: Option<String>,
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

/// When the sites are probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// One round of every site, at once; its time unknown (no cadence).
    Once,
    /// One round of the sites due in the current period of this cadence, at once: a run of a
    /// CronJob on that schedule.
    Window(Duration),
    /// Until a shutdown, each site at its slots, this being the interval of those without their own.
    Daemon(Duration),
}

impl Plan {
    /// The interval of a site without its own; `None` for a run whose time is unknown.
    pub fn default_interval(self) -> Option<Duration> {
        match self {
            Plan::Once => None,
            Plan::Window(every) | Plan::Daemon(every) => Some(every),
        }
    }
}

/// Everything checked; nothing left to fail on but the network.
#[derive(Debug)]
pub struct Config {
    pub log: LogSettings,
    /// The sites of `WEBSENTRY_SITES`, then those of the sites file.
    pub sites: Vec<Site>,
    /// Probed first in each round; when all of them fail, the round's failures are inconclusive.
    pub canaries: Vec<Site>,
    pub probe: ProbeSettings,
    /// The CAs trusted for https sites.
    pub roots: RootCertStore,
    /// When the sites are probed.
    pub plan: Plan,
    /// The shard of the sites this producer probes, if the list is split.
    pub shard: Option<Shard>,
    /// Sites of the whole list, before sharding.
    pub listed: usize,
    /// Probes at once at most.
    pub concurrency: usize,
    pub output: Output,
}

impl TryFrom<&Args> for Config {
    type Error = SettingError;

    /// Checks every setting, in the order an operator reads them.
    ///
    /// # Errors
    /// The first setting that is missing or malformed, by name.
    fn try_from(args: &Args) -> Result<Self, SettingError> {
        let log = LogSettings::try_from(&args.log)?;
        let matcher = match args.regexp.as_deref().filter(|p| !p.is_empty()) {
            Some(pattern) => {
                Some(Matcher::parse(pattern).map_err(|err| Args::setting("regexp").error(err.to_string()))?)
            }
            None => None,
        };
        let (sites_setting, file_setting) = (Args::setting("sites"), Args::setting("sites_file"));
        let listed = site::parse_list(args.sites.as_deref().unwrap_or_default()).map_err(|e| sites_setting.error(e))?;
        let entries = entries_of(&listed)?;
        let mut sites: Vec<Site> = listed.into_iter().map(|url| Site::simple(url, matcher.clone())).collect();
        let interval = INTERVAL.duration(&Args::setting("interval"), &args.interval)?;
        let plan = plan(args, interval)?;
        if let Some(path) = file_setting.optional_readable_file(args.sites_file.as_deref())? {
            let from_file = sites_file::load(&path, matcher.as_ref()).map_err(|e| file_setting.error(e))?;
            refuse_listed_twice(&entries, &from_file, &path)?;
            check_intervals(plan, &from_file, &path)?;
            sites.extend(from_file.into_iter().map(|listed| listed.site));
        }
        if sites.is_empty() {
            return Err(sites_setting.error(format!("names no site (set it, or {})", file_setting.env)));
        }
        let mut canaries = canaries(args, &sites)?;
        for site in sites.iter_mut().chain(&mut canaries) {
            site.interval = site.interval.or(plan.default_interval());
        }
        let listed = sites.len();
        let shard = shard(args)?;
        if let Some(shard) = shard {
            sites.retain(|site| shard.holds(site.url.as_str()));
        }
        let timeout = TIMEOUT.duration(&Args::setting("timeout"), &args.timeout)?;
        let concurrency = CONCURRENCY.parse(&Args::setting("concurrency"), &args.concurrency)?;
        let body_limit = BODY_LIMIT.parse(&Args::setting("body_limit"), &args.body_limit)?;
        let max_redirects = MAX_REDIRECTS.parse(&Args::setting("max_redirects"), &args.max_redirects)?;
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let cafile = Args::setting("probe_cafile");
        if let Some(path) = cafile.optional_readable_file(args.probe_cafile.as_deref())? {
            roots.roots.extend(tls::root_store(&path, &cafile)?.roots);
        }
        let output = if args.dry_run { Output::Stdout } else { Output::Kafka(KafkaSettings::try_from(&args.kafka)?) };
        Ok(Config {
            log,
            sites,
            canaries,
            probe: ProbeSettings {
                timeout,
                body_limit,
                max_redirects,
                probe_name: args.probe_name.clone().filter(|n| !n.is_empty()).unwrap_or_else(host_name),
            },
            roots,
            plan,
            shard,
            listed,
            concurrency,
            output,
        })
    }
}

/// When the sites are probed: a daemon at `interval`, a one-off run in the period of
/// `WEBSENTRY_CADENCE`, or a one-off run of every site.
///
/// # Errors
/// The cadence is malformed, or a daemon is given one that is not its interval.
fn plan(args: &Args, interval: Duration) -> Result<Plan, SettingError> {
    let setting = Args::setting("cadence");
    let given = args.cadence.as_deref().map(|text| CADENCE.parse(&setting, text)).transpose()?;
    match (interval.as_secs(), given) {
        (0, None) => Ok(Plan::Once),
        (0, Some(cadence)) => Ok(Plan::Window(Duration::from_secs(cadence))),
        (daemon, Some(given)) if given != daemon => {
            let interval = Args::setting("interval");
            Err(setting.error(format!(
                "{given} differs from {} ({daemon} seconds): a daemon is probed on its interval; leave {} unset",
                interval.env, setting.env
            )))
        }
        (_, _) => Ok(Plan::Daemon(interval)),
    }
}

/// Refuses a site's own interval that the plan cannot keep: any, in a one-off run without a
/// cadence (it probes every site each run), and one that is not a whole multiple of the cadence
/// (a run comes every cadence, so a site can be probed every one, two, three… cadences).
///
/// # Errors
/// The first such site, by its line.
fn check_intervals(plan: Plan, from_file: &[FileSite], path: &Path) -> Result<(), SettingError> {
    let (file, cadence) = (Args::setting("sites_file"), Args::setting("cadence"));
    for listed in from_file {
        let Some(own) = listed.site.interval.map(|i| i.as_secs()) else { continue };
        let line = format!("{} line {}", path.display(), listed.line);
        match plan {
            Plan::Once => {
                return Err(file.error(format!(
                    "{line}: interval is set, but a one-off run without {} probes every site each run; set {} \
                     to the period it is scheduled on, or {} to run as a daemon",
                    cadence.env,
                    cadence.env,
                    Args::setting("interval").env
                )))
            }
            Plan::Window(every) if own % every.as_secs() != 0 => {
                let every = every.as_secs();
                return Err(file.error(format!(
                    "{line}: interval {own} s is not a whole multiple of {} ({every} s): a run every {every} s \
                     can probe a site every {every}, {}, {}… seconds",
                    cadence.env,
                    2 * every,
                    3 * every
                )));
            }
            Plan::Window(_) | Plan::Daemon(_) => {}
        }
    }
    Ok(())
}

/// The shard of `WEBSENTRY_SHARD`, or of `WEBSENTRY_SHARDS` and `JOB_COMPLETION_INDEX`.
///
/// # Errors
/// Both ways given, a malformed one, or `WEBSENTRY_SHARDS` outside an Indexed Job.
fn shard(args: &Args) -> Result<Option<Shard>, SettingError> {
    let (one, count, index) = (Args::setting("shard"), Args::setting("shards"), Args::setting("job_completion_index"));
    match (args.shard.as_deref(), args.shards.as_deref()) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(one.error(format!("and {} are both set; set one of them", count.env))),
        (Some(text), None) => Shard::parse(text).map(Some).map_err(|e| one.error(e)),
        (None, Some(text)) => {
            let shards = count.number(text, 1..=slot::MAX_SHARDS)?;
            let Some(at) = args.job_completion_index.as_deref() else {
                return Err(count.error(format!(
                    "is set but {} is not: it is for a Kubernetes Indexed Job; elsewhere set {}=k/n",
                    index.env, one.env
                )));
            };
            let at = index.number(at, 0..=slot::MAX_SHARDS)?;
            Shard::new(at, shards).map(Some).map_err(|e| index.error(e))
        }
    }
}

/// The canaries of `WEBSENTRY_CANARIES`: plain sites (no pattern), none of them a site too.
///
/// # Errors
/// A URL that does not parse, or one listed twice or among the sites.
fn canaries(args: &Args, sites: &[Site]) -> Result<Vec<Site>, SettingError> {
    let setting = Args::setting("canaries");
    let listed = site::parse_list(args.canaries.as_deref().unwrap_or_default()).map_err(|e| setting.error(e))?;
    let mut seen = std::collections::HashSet::new();
    for url in &listed {
        if !seen.insert(url.as_str()) {
            return Err(setting.error(format!("'{}' is listed twice; each URL may appear once", url.as_str())));
        }
        if sites.iter().any(|site| site.url.as_str() == url.as_str()) {
            return Err(setting.error(format!(
                "'{}' is also a site; each URL may appear once (a canary's reports are published like a site's)",
                url.as_str()
            )));
        }
    }
    Ok(listed.into_iter().map(|url| Site::simple(url, None)).collect())
}

/// The entry number (from 1) of each URL of `WEBSENTRY_SITES`.
///
/// # Errors
/// A URL listed twice: reports are keyed by URL, so the two could not be told apart.
fn entries_of(listed: &[SiteUrl]) -> Result<HashMap<String, usize>, SettingError> {
    let mut entries = HashMap::with_capacity(listed.len());
    for (index, url) in listed.iter().enumerate() {
        if let Some(first) = entries.insert(url.as_str().to_owned(), index + 1) {
            return Err(Args::setting("sites").error(format!(
                "'{}' is listed twice (entries {first} and {}); each URL may appear once",
                url.as_str(),
                index + 1
            )));
        }
    }
    Ok(entries)
}

/// # Errors
/// A site of the sites file whose URL is also in `WEBSENTRY_SITES`.
fn refuse_listed_twice(
    entries: &HashMap<String, usize>,
    from_file: &[FileSite],
    path: &Path,
) -> Result<(), SettingError> {
    for listed in from_file {
        let url = listed.site.url.as_str();
        if let Some(entry) = entries.get(url) {
            let sites = Args::setting("sites");
            return Err(Args::setting("sites_file").error(format!(
                "{} line {}: '{url}' is also entry {entry} of {}; each URL may appear once",
                path.display(),
                listed.line,
                sites.env
            )));
        }
    }
    Ok(())
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
    use websentry_shared::settings::from_flags_only;

    use super::*;

    #[test]
    fn docs_configuration_md_shows_these_settings_as_defined() {
        use clap::CommandFactory;
        websentry_shared::settings::docs::assert_documented("websentry-producer", &Args::command());
    }

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["websentry-producer", "--dry-run"];
        if !extra.contains(&"--sites") {
            argv.extend(["--sites", "https://example.com/"]);
        }
        argv.extend_from_slice(extra);
        from_flags_only(&argv).unwrap()
    }

    fn checked(args: Args) -> Result<Config, SettingError> {
        Config::try_from(&args)
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_give_one_round_with_the_documented_limits() {
        let config = checked(args(&[])).unwrap();
        assert_eq!((config.plan, config.shard), (Plan::Once, None));
        assert_eq!(config.probe.timeout, Duration::from_secs(10));
        assert_eq!(config.concurrency, 100);
        assert_eq!(config.probe.body_limit, 1 << 20);
        assert!(matches!(config.output, Output::Stdout));
        let expected: Vec<String> = config.sites.iter().map(|site| site.expect_status.to_string()).collect();
        assert_eq!(expected, ["200-399"], "a site of WEBSENTRY_SITES expects 200-399");
    }

    #[test]
    fn sites_are_probed_on_a_daemons_interval_or_a_one_off_runs_cadence_and_nothing_otherwise() {
        // (case, flags, plan, each site's interval)
        let every = |s| Some(Duration::from_secs(s));
        for (case, flags, plan, interval) in [
            ("one-off, no cadence", &[][..], Plan::Once, None),
            (
                "one-off, a CronJob's cadence",
                &["--cadence", "300"][..],
                Plan::Window(Duration::from_secs(300)),
                every(300),
            ),
            ("daemon", &["--interval", "60"][..], Plan::Daemon(Duration::from_secs(60)), every(60)),
            (
                "daemon, its own interval as cadence",
                &["--interval", "60", "--cadence", "60"][..],
                Plan::Daemon(Duration::from_secs(60)),
                every(60),
            ),
        ] {
            let config = checked(args(flags)).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(config.plan, plan, "{case}");
            assert!(config.sites.iter().all(|site| site.interval == interval), "{case}");
        }
    }

    /// A sites file of three sites, the second with an interval of `interval`, in `folder`.
    fn sites_file(folder: &tempfile::TempDir, interval: &str) -> String {
        let path = folder.path().join("sites.toml");
        let text = format!(
            "[[site]]\nurl = \"https://a.example/\"\n\n[[site]]\nurl = \"https://b.example/\"\ninterval = {interval}\n\n\
             [[site]]\nurl = \"https://c.example/\"\n"
        );
        std::fs::write(&path, text).expect("a sites file");
        path.to_str().expect("a UTF-8 path").to_owned()
    }

    #[test]
    fn a_sites_own_interval_wins_over_the_daemons_and_the_cadences_when_the_plan_can_keep_it() {
        let folder = tempfile::tempdir().expect("a folder");
        let file = sites_file(&folder, "\"5m\"");
        let intervals = |flags: &[&str]| -> Vec<Option<u64>> {
            let mut all = vec!["--sites-file", file.as_str()];
            all.extend_from_slice(flags);
            let config = checked(args(&all)).unwrap_or_else(|e| panic!("{flags:?}: {e}"));
            config.sites.iter().map(|site| site.interval.map(|i| i.as_secs())).collect()
        };
        // The first site is --sites's own (https://example.com/).
        assert_eq!(intervals(&["--interval", "45"]), [Some(45), Some(45), Some(300), Some(45)]);
        assert_eq!(intervals(&["--cadence", "60"]), [Some(60), Some(60), Some(300), Some(60)]);
        assert_eq!(intervals(&["--cadence", "300"]), [Some(300), Some(300), Some(300), Some(300)]);

        let refused = |flags: &[&str]| {
            let mut all = vec!["--sites-file", file.as_str()];
            all.extend_from_slice(flags);
            checked(args(&all)).expect_err("refused").to_string()
        };
        let err = refused(&["--cadence", "120"]);
        assert!(
            err.starts_with("WEBSENTRY_SITES_FILE (--sites-file): ")
                && err.contains("line 5: interval 300 s is not a whole multiple of WEBSENTRY_CADENCE (120 s)"),
            "{err}"
        );
        let err = refused(&[]);
        assert!(
            err.contains("line 5: interval is set, but a one-off run without WEBSENTRY_CADENCE probes every site"),
            "{err}"
        );
    }

    #[test]
    fn a_shard_keeps_its_own_sites_and_every_site_is_in_one_shard() {
        let list: Vec<String> = (0..300).map(|n| format!("https://site-{n}.example/")).collect();
        let sites = list.join(",");
        let mut seen = Vec::new();
        for k in 0..3 {
            let shard = format!("{k}/3");
            let config =
                checked(args(&["--sites", &sites, "--shard", &shard, "--canaries", "https://canary.example/"]))
                    .unwrap_or_else(|e| panic!("{shard}: {e}"));
            assert_eq!(config.shard, Some(Shard { index: k, count: 3 }));
            assert_eq!(config.listed, 300);
            assert_eq!(config.canaries.len(), 1, "every shard probes the canaries");
            assert!((70..=130).contains(&config.sites.len()), "{shard}: {} sites", config.sites.len());
            seen.extend(config.sites.iter().map(|site| site.url.as_str().to_owned()));
        }
        seen.sort();
        let mut expected = list.clone();
        expected.sort();
        assert_eq!(seen, expected, "the shards cover the list, each site once");

        let indexed = checked(args(&["--sites", &sites, "--shards", "3", "--job-completion-index", "2"])).unwrap();
        let by_flag = checked(args(&["--sites", &sites, "--shard", "2/3"])).unwrap();
        let urls = |c: &Config| c.sites.iter().map(|s| s.url.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(urls(&indexed), urls(&by_flag), "an Indexed Job's pod 2 of 3 is shard 2/3");
    }

    #[test]
    fn a_shard_given_wrong_is_refused_naming_the_setting() {
        for (flags, expected) in [
            (&["--shard", "3/3"][..], "WEBSENTRY_SHARD (--shard): shard 3 of 3: shards are counted from 0 to 2"),
            (&["--shard", "1"][..], "WEBSENTRY_SHARD (--shard): '1' is not k/n"),
            (&["--shard", "0/2", "--shards", "2"][..], "WEBSENTRY_SHARD (--shard): and WEBSENTRY_SHARDS are both set"),
            (&["--shards", "2"][..], "WEBSENTRY_SHARDS (--shards): is set but JOB_COMPLETION_INDEX is not"),
            (&["--shards", "0", "--job-completion-index", "0"][..], "WEBSENTRY_SHARDS (--shards): '0' is out of range"),
            (
                &["--shards", "2", "--job-completion-index", "2"][..],
                "JOB_COMPLETION_INDEX (--job-completion-index): shard 2 of 2",
            ),
            (
                &["--shards", "2", "--job-completion-index", "x"][..],
                "JOB_COMPLETION_INDEX (--job-completion-index): 'x' is not a whole number",
            ),
        ] {
            let err = checked(args(flags)).expect_err("refused").to_string();
            assert!(err.starts_with(expected), "{flags:?}: {err}");
        }
    }

    #[test]
    fn a_daemon_refuses_a_cadence_other_than_its_interval_and_a_cadence_outside_its_range() {
        let err = checked(args(&["--interval", "60", "--cadence", "300"])).expect_err("refused").to_string();
        assert_eq!(
            err,
            "WEBSENTRY_CADENCE (--cadence): 300 differs from WEBSENTRY_INTERVAL (60 seconds): a daemon is probed on \
             its interval; leave WEBSENTRY_CADENCE unset"
        );
        for cadence in ["0", "86401", "5m", ""] {
            let err = checked(args(&["--cadence", cadence])).expect_err(cadence).to_string();
            assert!(err.starts_with("WEBSENTRY_CADENCE (--cadence): "), "{cadence:?}: {err}");
        }
    }

    #[test]
    fn canaries_are_plain_sites_listed_once_and_never_a_site_too() {
        let config =
            checked(args(&["--canaries", "https://canary.example/ https://other.example/"])).expect("canaries");
        let canaries: Vec<&str> = config.canaries.iter().map(|c| c.url.as_str()).collect();
        assert_eq!(canaries, ["https://canary.example/", "https://other.example/"]);
        assert!(config.canaries.iter().all(|c| c.matcher.is_none()), "a canary searches nothing");
        assert!(checked(args(&[])).expect("no canaries").canaries.is_empty(), "none by default");

        // (case, canaries, the error's end)
        for (case, canaries, expected) in [
            ("twice", "https://c.example/,https://c.example/", "'https://c.example/' is listed twice; each URL may appear once"),
            ("a site too", "https://example.com/", "'https://example.com/' is also a site; each URL may appear once (a canary's reports are published like a site's)"),
            ("not a URL", "nope", ""),
        ] {
            let err = checked(args(&["--canaries", canaries])).expect_err(case).to_string();
            assert!(err.starts_with("WEBSENTRY_CANARIES (--canaries): ") && err.ends_with(expected), "{case}: {err}");
        }
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
            let err = checked(args(flags)).expect_err(expected).to_string();
            assert!(err.starts_with(expected), "flags {flags:?}: {err}");
        }
    }

    #[test]
    fn each_number_is_taken_at_the_ends_of_its_range_and_refused_past_them() {
        let config = checked(args(&[
            "--interval=86400",
            "--timeout=3600",
            "--concurrency=100000",
            "--body-limit=67108864",
            "--max-redirects=50",
        ]))
        .unwrap();
        assert_eq!(config.plan, Plan::Daemon(Duration::from_secs(86_400)));
        assert_eq!(config.probe.timeout, Duration::from_secs(3600));
        assert_eq!((config.concurrency, config.probe.body_limit, config.probe.max_redirects), (100_000, 64 << 20, 50));
        let config = checked(args(&["--timeout=1", "--concurrency=1", "--body-limit=1", "--max-redirects=0"]));
        assert_eq!(config.unwrap().probe.max_redirects, 0);
        for (flag, expected) in [
            (
                "--interval=86401",
                "WEBSENTRY_INTERVAL (--interval): '86401' is out of range (expected 0 to 86400 seconds)",
            ),
            ("--timeout=0", "WEBSENTRY_TIMEOUT (--timeout): '0' is out of range (expected 1 to 3600 seconds)"),
            ("--timeout=18446744073709551615", "WEBSENTRY_TIMEOUT (--timeout): '18446744073709551615' is out of range"),
            ("--concurrency=0", "WEBSENTRY_CONCURRENCY (--concurrency): '0' is out of range (expected 1 to 100000)"),
            (
                "--concurrency=18446744073709551615",
                "WEBSENTRY_CONCURRENCY (--concurrency): '18446744073709551615' is out",
            ),
            ("--concurrency=100001", "WEBSENTRY_CONCURRENCY (--concurrency): '100001' is out of range"),
            ("--body-limit=0", "WEBSENTRY_BODY_LIMIT (--body-limit): '0' is out of range (expected 1 to 67108864)"),
            ("--body-limit=67108865", "WEBSENTRY_BODY_LIMIT (--body-limit): '67108865' is out of range"),
            ("--max-redirects=4294967296", "WEBSENTRY_MAX_REDIRECTS (--max-redirects): '4294967296' is out of range"),
            (
                "--max-redirects=51",
                "WEBSENTRY_MAX_REDIRECTS (--max-redirects): '51' is out of range (expected 0 to 50)",
            ),
            ("--max-redirects=ten", "WEBSENTRY_MAX_REDIRECTS (--max-redirects): 'ten' is not a whole number"),
        ] {
            let err = checked(args(&[flag])).expect_err(flag).to_string();
            assert!(err.starts_with(expected), "{flag}: {err}");
        }
    }

    #[test]
    fn an_empty_path_is_refused_naming_its_setting() {
        for (flag, expected) in [
            ("--sites-file=", "WEBSENTRY_SITES_FILE (--sites-file): is set but empty"),
            ("--probe-cafile=", "WEBSENTRY_PROBE_CAFILE (--probe-cafile): is set but empty"),
        ] {
            assert_eq!(checked(args(&[flag])).expect_err(flag).to_string(), expected);
        }
    }

    #[test]
    fn a_url_listed_twice_in_the_sites_is_refused_with_both_entries() {
        let err = checked(args(&["--sites", "https://a.example/ https://b.example/,https://A.EXAMPLE"]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "WEBSENTRY_SITES (--sites): 'https://a.example/' is listed twice (entries 1 and 3); each URL may appear once"
        );
    }

    #[test]
    fn a_url_both_in_the_sites_and_in_the_sites_file_is_refused_with_its_line() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("sites.toml");
        std::fs::write(&path, "[[site]]\nurl = \"https://b.example/\"\n\n[[site]]\nurl = \"https://a.example\"\n")
            .unwrap();
        let result = checked(args(&["--sites", "https://a.example/", "--sites-file", &path.display().to_string()]));
        let err = result.unwrap_err().to_string();
        let expected = format!(
            "WEBSENTRY_SITES_FILE (--sites-file): {} line 5: 'https://a.example/' is also entry 1 of WEBSENTRY_SITES",
            path.display()
        );
        assert!(err.starts_with(&expected), "{err}");
    }

    #[test]
    fn an_empty_pattern_means_no_search() {
        assert!(checked(args(&["--regexp", ""])).unwrap().sites[0].matcher.is_none());
    }

    #[test]
    fn publishing_requires_the_kafka_settings() {
        let args = from_flags_only(&["websentry-producer", "--sites", "https://example.com/"]).unwrap();
        let err = checked(args).unwrap_err().to_string();
        assert!(err.starts_with("WEBSENTRY_KAFKA_HOSTS (--kafka-hosts)"), "{err}");
    }
}
