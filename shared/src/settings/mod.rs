//! Settings come from flags or `WEBSENTRY_*` variables as raw text first (clap), then are checked
//! here into typed values before any work starts. A bad one is a [`SettingError`] that names both the
//! variable and the flag, so an operator can find it in a manifest or on a command line.
//!
//! Each setting is defined once, by its clap argument: [`Setting::of`] takes the variable and the
//! flag from that definition by the argument's id, and the typed parsers below check the text.
//!
//! Paths are taken from clap as `OsString` (clap's own `PathBuf` parser refuses an empty value with
//! a message of its own, without the variable's name) and checked here like every other setting.

pub mod docs;
mod whole;

use std::{
    ffi::OsStr,
    fmt,
    ops::RangeInclusive,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

pub use whole::Whole;

/// A setting that is missing or malformed. Its message never contains the setting's value when the
/// setting is a secret.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct SettingError {
    setting: Setting,
    problem: String,
}

impl SettingError {
    pub fn new(setting: Setting, problem: impl Into<String>) -> Self {
        Self { setting, problem: problem.into() }
    }
}

/// The name of a setting: its environment variable and its flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable, e.g. `WEBSENTRY_KAFKA_HOSTS`.
    pub env: String,
    /// The long flag without its dashes, e.g. `kafka-hosts`.
    pub flag: String,
}

impl Setting {
    /// The setting of the argument `id` of the clap definition `A`, named as `A` defines it
    /// (`#[arg(long, env)]`).
    ///
    /// # Panics
    /// In debug builds, when `A` has no such argument or it lacks a variable or a flag: a mistake
    /// in the program that any test of the setting finds. Release builds then name it by its id.
    pub fn of<A: clap::Args>(id: &str) -> Self {
        let command = A::augment_args(clap::Command::new("websentry"));
        let argument = command.get_arguments().find(|a| a.get_id() == id);
        let env = argument.and_then(|a| a.get_env()).map(|e| e.to_string_lossy().into_owned());
        let flag = argument.and_then(|a| a.get_long()).map(str::to_owned);
        debug_assert!(env.is_some() && flag.is_some(), "no argument {id:?} with a variable and a flag");
        Self { env: env.unwrap_or_else(|| id.to_owned()), flag: flag.unwrap_or_else(|| id.to_owned()) }
    }

    /// A setting outside any clap definition (unit tests of the parsers).
    #[cfg(test)]
    pub(crate) fn new(env: &str, flag: &str) -> Self {
        Self { env: env.to_owned(), flag: flag.to_owned() }
    }

    /// An error about this setting.
    pub fn error(&self, problem: impl Into<String>) -> SettingError {
        SettingError::new(self.clone(), problem)
    }

    /// The value, or an error saying that it is required.
    pub fn required<T>(&self, value: Option<T>) -> Result<T, SettingError> {
        value.ok_or_else(|| self.error("is required but not set"))
    }

    /// A non-empty text value, trimmed.
    pub fn non_empty(&self, value: Option<String>) -> Result<String, SettingError> {
        let value = self.required(value)?;
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(self.error("is set but empty"));
        }
        Ok(trimmed.to_owned())
    }

    /// A path as given, `None` when not set. A blank one is refused: it is a mistake (a variable
    /// templated from nothing), never a file.
    pub fn path(&self, value: Option<&OsStr>) -> Result<Option<PathBuf>, SettingError> {
        match value {
            None => Ok(None),
            Some(path) if path.to_string_lossy().trim().is_empty() => Err(self.error("is set but empty")),
            Some(path) => Ok(Some(PathBuf::from(path))),
        }
    }

    /// A path to a regular file that exists and can be read now. What it names is checked before
    /// it is opened (see [`regular_file`]).
    pub fn readable_file(&self, value: Option<&OsStr>) -> Result<PathBuf, SettingError> {
        let path = self.required(self.path(value)?)?;
        regular_file(&path).map_err(|problem| self.error(problem))?;
        match std::fs::File::open(&path) {
            Ok(_) => Ok(path),
            Err(err) => Err(self.error(format!("cannot read {}: {err}", path.display()))),
        }
    }

    /// As [`Setting::readable_file`] for a setting that may be left unset.
    pub fn optional_readable_file(&self, value: Option<&OsStr>) -> Result<Option<PathBuf>, SettingError> {
        match value {
            None => Ok(None),
            Some(_) => self.readable_file(value).map(Some),
        }
    }

    /// A whole number within `range`, given as text, of whatever integer type the setting needs.
    /// Garbage, a number too large for the type and one outside the range are refused alike, with
    /// the range in the message, so no value can overflow or wrap later.
    pub fn number<T>(&self, text: &str, range: RangeInclusive<T>) -> Result<T, SettingError>
    where
        T: FromStr + PartialOrd + fmt::Display,
    {
        self.whole(text, &range, "")
    }

    /// A whole number of seconds within `range` (`30`; `1.5` and `30s` are refused).
    pub fn seconds(&self, text: &str, range: RangeInclusive<u64>) -> Result<Duration, SettingError> {
        self.whole(text, &range, " seconds").map(Duration::from_secs)
    }

    pub(crate) fn whole<T>(&self, text: &str, range: &RangeInclusive<T>, unit: &str) -> Result<T, SettingError>
    where
        T: FromStr + PartialOrd + fmt::Display,
    {
        let expected = format!("expected {} to {}{unit}", range.start(), range.end());
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(self.error(format!("is set but empty ({expected})")));
        }
        match trimmed.parse::<T>() {
            Ok(value) if range.contains(&value) => Ok(value),
            Ok(_) => Err(self.error(format!("{} is out of range ({expected})", quoted(text)))),
            Err(_) if is_integer(trimmed) => Err(self.error(format!("{} is out of range ({expected})", quoted(text)))),
            Err(_) => Err(self.error(format!("{} is not a whole number ({expected})", quoted(text)))),
        }
    }

    /// A yes/no value in any of the spellings a Python tool or a YAML file would use.
    pub fn flag_value(&self, value: &str) -> Result<bool, SettingError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" | "y" | "t" => Ok(true),
            "0" | "false" | "no" | "off" | "n" | "f" | "" => Ok(false),
            _ => Err(self.error(format!("{} is not a yes/no value (use true or false)", quoted(value)))),
        }
    }
}

/// Checks, from its metadata alone, that `path` names a regular file (a symbolic link is followed,
/// as a mounted Kubernetes Secret's files are links). Opening a FIFO for reading waits for a writer,
/// forever at start; a socket, a device or a folder is never a file of settings either. So they are
/// refused before anything opens them.
///
/// # Errors
/// The path cannot be looked at, or names something else than a regular file; the message names
/// the path and what it is, never its content.
pub fn regular_file(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?.file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "of an unknown kind"
    };
    Err(format!("{} is not a regular file: it is {what}", path.display()))
}

/// The settings of a clap definition, by argument id: `KafkaArgs::setting("kafka_hosts")`.
pub trait Named: clap::Args {
    /// The setting of the argument `id` (see [`Setting::of`]).
    fn setting(id: &str) -> Setting {
        Setting::of::<Self>(id)
    }
}

impl<A: clap::Args> Named for A {}

/// Parses `argv` as clap would, but with every `env` of the definition ignored: for unit tests of
/// settings, which must not depend on the variables of the shell that runs them.
///
/// # Errors
/// clap's, for a flag that is unknown or malformed.
pub fn from_flags_only<P: clap::Parser>(argv: &[&str]) -> Result<P, clap::Error> {
    let command = P::command().mut_args(|a| a.env(None));
    P::from_arg_matches(&command.try_get_matches_from(argv)?)
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (--{})", self.env, self.flag)
    }
}

/// A value as it appears in a message: in quotes, with control characters escaped so that the
/// message stays on one line. Never use it for a secret.
pub fn quoted(value: &str) -> String {
    format!("'{}'", value.escape_debug())
}

/// Digits with an optional sign: a number, if perhaps one too large for its type.
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> Setting {
        Setting::new("WEBSENTRY_X", "x")
    }

    #[derive(Debug, clap::Parser)]
    struct Defined {
        #[arg(id = "the-id", long = "flag-name", env = "WEBSENTRY_VARIABLE")]
        _value: Option<String>,
        #[arg(long, env = "WEBSENTRY_DEFAULT_ID")]
        default_id: Option<String>,
    }

    #[test]
    fn a_setting_is_named_by_its_clap_definition() {
        assert_eq!(Setting::of::<Defined>("the-id").to_string(), "WEBSENTRY_VARIABLE (--flag-name)");
        assert_eq!(Setting::of::<Defined>("default_id").to_string(), "WEBSENTRY_DEFAULT_ID (--default-id)");
    }

    #[test]
    fn flags_only_parsing_ignores_the_environment() {
        std::env::set_var("WEBSENTRY_DEFAULT_ID", "from-the-shell");
        let parsed: Defined = from_flags_only(&["t"]).unwrap();
        assert_eq!(parsed.default_id, None);
        let parsed: Defined = from_flags_only(&["t", "--default-id=given"]).unwrap();
        assert_eq!(parsed.default_id.as_deref(), Some("given"));
    }

    #[test]
    fn errors_name_the_variable_and_the_flag() {
        let err = s().seconds("ten", 1..=3600).unwrap_err();
        assert_eq!(err.to_string(), "WEBSENTRY_X (--x): 'ten' is not a whole number (expected 1 to 3600 seconds)");
    }

    #[test]
    fn seconds_accept_whole_numbers_within_the_range_only() {
        for (input, expected) in [
            ("0", Some(0)),
            (" 30 ", Some(30)),
            ("3600", Some(3600)),
            ("3601", None),
            ("-1", None),
            ("1.5", None),
            ("30s", None),
            ("", None),
            ("18446744073709551615", None),
        ] {
            let got = s().seconds(input, 0..=3600).ok().map(|d| d.as_secs());
            assert_eq!(got, expected, "input {input:?}");
        }
    }

    #[test]
    fn numbers_say_whether_they_are_garbage_empty_or_out_of_range() {
        for (input, problem) in [
            ("lots", "'lots' is not a whole number (expected 1 to 100)"),
            ("0x10", "'0x10' is not a whole number (expected 1 to 100)"),
            ("", "is set but empty (expected 1 to 100)"),
            ("  ", "is set but empty (expected 1 to 100)"),
            ("0", "'0' is out of range (expected 1 to 100)"),
            ("101", "'101' is out of range (expected 1 to 100)"),
            ("-3", "'-3' is out of range (expected 1 to 100)"),
            ("18446744073709551616", "'18446744073709551616' is out of range (expected 1 to 100)"),
            ("1\n2", r"'1\n2' is not a whole number (expected 1 to 100)"),
        ] {
            let err = s().number::<usize>(input, 1..=100).expect_err(input).to_string();
            assert_eq!(err, format!("WEBSENTRY_X (--x): {problem}"), "input {input:?}");
        }
    }

    #[test]
    fn numbers_within_the_range_are_taken_in_the_settings_type() {
        assert_eq!(s().number::<u32>(" 50 ", 0..=50).unwrap(), 50);
        assert_eq!(s().number::<u32>("0", 0..=50).unwrap(), 0);
        assert_eq!(s().number::<u16>("65535", 1..=65535).unwrap(), 65535);
        assert!(s().number::<u32>("4294967296", 0..=50).is_err(), "a value past u32 must not wrap to 0");
        assert!(s().number::<u16>("65536", 1..=65535).is_err());
    }

    #[test]
    fn flag_values_accept_common_spellings_and_refuse_others() {
        for (input, expected) in [
            ("true", Some(true)),
            ("True", Some(true)),
            ("1", Some(true)),
            ("yes", Some(true)),
            ("false", Some(false)),
            ("0", Some(false)),
            ("", Some(false)),
            ("maybe", None),
        ] {
            assert_eq!(s().flag_value(input).ok(), expected, "input {input:?}");
        }
    }

    #[test]
    fn a_missing_or_blank_value_is_refused() {
        assert!(s().non_empty(None).unwrap_err().to_string().contains("is required"));
        assert!(s().non_empty(Some("  ".into())).unwrap_err().to_string().contains("empty"));
        assert_eq!(s().non_empty(Some(" a ".into())).unwrap(), "a");
    }

    #[test]
    fn a_blank_path_is_refused_like_any_other_setting() {
        for blank in ["", " "] {
            let err = s().path(Some(OsStr::new(blank))).unwrap_err().to_string();
            assert_eq!(err, "WEBSENTRY_X (--x): is set but empty", "path {blank:?}");
            let err = s().optional_readable_file(Some(OsStr::new(blank))).unwrap_err().to_string();
            assert_eq!(err, "WEBSENTRY_X (--x): is set but empty", "path {blank:?}");
        }
        assert_eq!(s().path(None).unwrap(), None);
        assert_eq!(s().optional_readable_file(None).unwrap(), None);
        assert!(s().readable_file(None).unwrap_err().to_string().contains("is required"));
    }

    #[test]
    fn an_unreadable_file_is_refused_with_its_path() {
        let err = s().readable_file(Some(OsStr::new("/nonexistent/ca.crt"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.crt"), "{err}");
        let err = s().readable_file(Some(OsStr::new("/"))).unwrap_err();
        assert!(err.to_string().contains("is not a regular file"), "{err}");
    }

    #[test]
    fn a_fifo_a_socket_a_device_or_a_folder_is_refused_before_it_is_opened() {
        let folder = tempfile::tempdir().unwrap();
        let fifo = folder.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success());
        let socket = folder.path().join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let file = folder.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let link = folder.path().join("link-to-fifo");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        // (path, what it is said to be; None: taken)
        let cases = [
            (fifo.clone(), Some("a FIFO (named pipe)")),
            (link, Some("a FIFO (named pipe)")),
            (socket, Some("a socket")),
            ("/dev/null".into(), Some("a character device")),
            (folder.path().to_owned(), Some("a folder")),
            (file.clone(), None),
        ];
        for (path, what) in cases {
            // Opening the FIFO would wait for a writer: the test would hang, not fail.
            let checked = s().readable_file(Some(path.as_os_str()));
            match what {
                Some(what) => {
                    let expected = format!("WEBSENTRY_X (--x): {} is not a regular file: it is {what}", path.display());
                    assert_eq!(checked.unwrap_err().to_string(), expected);
                }
                None => assert_eq!(checked.unwrap(), path),
            }
        }
    }
}
