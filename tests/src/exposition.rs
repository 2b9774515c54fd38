//! The Prometheus exposition text (the classic format and OpenMetrics), parsed strictly enough for
//! tests: `# TYPE` and `# UNIT` per family, and every sample with its labels (escapes undone) and
//! value. A line that is neither is an error, so a malformed exposition fails the test that reads it.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    /// Family name → `gauge`, `counter`…
    pub types: BTreeMap<String, String>,
    /// Family name → unit (OpenMetrics' `# UNIT`).
    pub units: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Parses `text`.
    ///
    /// # Errors
    /// A line that is not a comment, a blank or a sample, with its number.
    pub fn parse(text: &str) -> Result<Exposition, String> {
        let mut exposition = Exposition::default();
        for (number, line) in text.lines().enumerate() {
            let fail = |why: &str| format!("line {}: {why}: {line:?}", number + 1);
            if line.trim().is_empty() || line == "# EOF" {
                continue;
            }
            if let Some(comment) = line.strip_prefix("# ") {
                let mut words = comment.splitn(3, ' ');
                let (kind, family, rest) = (words.next(), words.next(), words.next());
                match (kind, family, rest) {
                    (Some("TYPE"), Some(family), Some(kind)) => {
                        exposition.types.insert(family.to_owned(), kind.to_owned());
                    }
                    (Some("UNIT"), Some(family), Some(unit)) => {
                        exposition.units.insert(family.to_owned(), unit.to_owned());
                    }
                    (Some("HELP"), Some(_), _) => {}
                    _ => return Err(fail("an unknown comment")),
                }
                continue;
            }
            exposition.samples.push(sample(line).ok_or_else(|| fail("not a sample"))?);
        }
        Ok(exposition)
    }

    /// The samples named `name` whose labels include every one of `labels`.
    pub fn series(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v)))
            .collect()
    }

    /// The value of the one sample named `name` with `labels`; `None` when there is none. Panics
    /// when several match.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.series(name, labels);
        assert!(found.len() <= 1, "{name}{labels:?} matches {} samples: {found:?}", found.len());
        found.first().map(|s| s.value)
    }

    /// The type of the family a sample named `name` belongs to (a counter's `_total` stripped).
    pub fn type_of(&self, name: &str) -> Option<&str> {
        self.types.get(name).or_else(|| self.types.get(name.strip_suffix("_total")?)).map(String::as_str)
    }
}

fn sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return None;
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        loop {
            let (start, c) = chars.next()?;
            if c == '}' {
                rest = &inner[start + 1..];
                break;
            }
            if c == ',' {
                continue;
            }
            let eq = inner[start..].find('=')? + start;
            let key = inner[start..eq].to_owned();
            while chars.peek()?.0 <= eq {
                chars.next();
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    other => value.push(other),
                }
            }
            labels.insert(key, value);
        }
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next()?.parse().ok()?;
    Some(Sample { name: name.to_owned(), labels, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_types_units_and_escaped_labels_are_read() {
        let text = "# HELP a_seconds A.\n# TYPE a_seconds gauge\n# UNIT a_seconds seconds\n\
                    a_seconds{x=\"q\\\"uo,te}\",y=\"\"} 1.5e0\nb 2\nc_total{z=\"1\"} +Inf 1700000000\n# EOF\n";
        let parsed = Exposition::parse(text).expect("parses");
        assert_eq!(parsed.value("a_seconds", &[("x", "q\"uo,te}")]), Some(1.5));
        assert_eq!(parsed.value("b", &[]), Some(2.0));
        assert_eq!(parsed.value("c_total", &[("z", "1")]), Some(f64::INFINITY));
        assert_eq!(parsed.type_of("a_seconds"), Some("gauge"));
        assert_eq!(parsed.units.get("a_seconds").map(String::as_str), Some("seconds"));
        assert!(Exposition::parse("nonsense here\n").is_err());
        assert!(Exposition::parse("a{x=\"1\" 2\n").is_err());
    }
}
