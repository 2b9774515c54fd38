//! Properties of the decode → insert path against the real PostgreSQL: whatever a record holds,
//! `Archiver::commit` archives it or keeps it as rejected, and moves the offset past it. One
//! database per property, migrated once; each case writes to a topic and a group of its own.
//!
//! Report ids are written as placeholders (`<id>`…) and made fresh when a case runs, so that a
//! shrunk input never repeats an id archived by an earlier case (a repeated id is archived once,
//! by design). A failing case prints its values as they were sent.

use std::{
    cell::{Cell, RefCell},
    collections::BTreeMap,
    fmt,
    panic::{self, AssertUnwindSafe},
};

use proptest::{
    collection::vec,
    prelude::*,
    sample::{select, Index},
    test_runner::{TestCaseError, TestRunner},
};
use rskafka::{
    chrono::DateTime,
    record::{Record, RecordAndOffset},
};
use uuid::Uuid;
use websentry_consumer::{
    archive::{Archiver, Committed},
    batch::{Batch, Origin},
};
// The records carry any timestamp: none may fall out of the archive for its age here.
use websentry_tests::{Stack, TestDatabase, KEEP_EVERYTHING};

#[test]
fn any_bytes_are_archived_or_rejected_and_the_offset_moves_past_them() {
    holds_for_every_case(record_value());
}

#[test]
fn json_shaped_reports_with_hostile_values_are_archived_or_rejected() {
    let document = prop_oneof![3 => report_document(), 1 => legacy_document()];
    holds_for_every_case(document.prop_map(|text| Some(text.into_bytes())));
}

/// Runs 64 batches of values drawn from `value` through one archive; panics with the smallest
/// failing batch.
fn holds_for_every_case(value: impl Strategy<Value = Option<Vec<u8>>>) {
    let archive = Archive::migrated();
    let mut config = ProptestConfig::with_cases(64);
    // The failing input is printed; no regression file is written into the source tree.
    config.failure_persistence = None;
    config.max_shrink_iters = 1000;
    let outcome = TestRunner::new(config).run(&case(value), |case| archive.archives_or_rejects_each_record(&case));
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    let (archived, rejected) = archive.outcomes.get();
    assert!(
        archived > 0 && rejected > 0,
        "the cases should reach both outcomes: {archived} records archived, {rejected} rejected"
    );
}

/// A batch as generated: where it starts and its records.
#[derive(Debug, Clone)]
struct Case {
    partition: i32,
    with_topic_id: bool,
    first_offset: i64,
    /// Each record with the gap to the previous offset (compaction leaves holes).
    records: Vec<(i64, Generated)>,
}

/// One record as generated; its value may hold id placeholders (see [`with_fresh_ids`]).
#[derive(Clone)]
struct Generated {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp_ms: i64,
}

impl fmt::Debug for Generated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{ key: {}, value: {}, timestamp_ms: {} }}", shown(&self.key), shown(&self.value), self.timestamp_ms)
    }
}

/// Bytes as text when they are UTF-8, else escaped; `None` for a tombstone.
fn shown(bytes: &Option<Vec<u8>>) -> String {
    match bytes {
        None => "None".into(),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => format!("{text:?}"),
            Err(_) => format!("b\"{}\"", bytes.escape_ascii()),
        },
    }
}

fn case(value: impl Strategy<Value = Option<Vec<u8>>>) -> impl Strategy<Value = Case> {
    let timestamp_ms = prop_oneof![
        4 => Just(1_764_410_400_250_i64),
        1 => select(&[0, -1, -62_135_596_800_000, 253_402_300_799_999, 9_223_372_036_855, -9_223_372_036_855][..]),
        1 => any::<i64>(),
    ];
    let key = prop_oneof![Just(None), vec(any::<u8>(), 0..16).prop_map(Some)];
    let record =
        (key, value, timestamp_ms).prop_map(|(key, value, timestamp_ms)| Generated { key, value, timestamp_ms });
    (
        prop_oneof![Just(0), 0..i32::MAX],
        any::<bool>(),
        prop_oneof![Just(0), 0..1_000_000_i64, Just(i64::MAX - 64)],
        vec((1..=3_i64, record), 1..=8),
    )
        .prop_map(|(partition, with_topic_id, first_offset, records)| Case {
            partition,
            with_topic_id,
            first_offset,
            records,
        })
}

/// A migrated database and the archiver that writes every case into it.
struct Archive {
    archiver: RefCell<Archiver>,
    /// Records archived and rejected over all cases, to show that the cases reach both.
    outcomes: Cell<(u64, u64)>,
    database: TestDatabase,
}

impl Archive {
    fn migrated() -> Self {
        let database = Stack::get().create_database().migrated();
        let archiver = RefCell::new(Archiver::new(database.client(), KEEP_EVERYTHING));
        Archive { archiver, outcomes: Cell::default(), database }
    }

    /// Commits the case as one batch of a new topic and group, then checks that each offset is in
    /// exactly one of `reports` and `rejected_messages` and that the group reads on after the last.
    fn archives_or_rejects_each_record(&self, case: &Case) -> Result<(), TestCaseError> {
        let topic = format!("prop-{}", Uuid::now_v7().simple());
        let group = format!("group-{}", Uuid::now_v7().simple());
        let topic_id = case.with_topic_id.then(Uuid::now_v7);
        let mut offset = case.first_offset - 1;
        let mut sent = Vec::new();
        let mut records = Vec::new();
        for (gap, generated) in &case.records {
            offset += if records.is_empty() { 1 } else { *gap };
            let value = generated.value.as_deref().map(with_fresh_ids);
            sent.push((offset, value.clone()));
            let timestamp = DateTime::from_timestamp_millis(generated.timestamp_ms).unwrap_or_default();
            let record = Record { key: generated.key.clone(), value, headers: BTreeMap::new(), timestamp };
            records.push(RecordAndOffset { record, offset });
        }
        let listed = || sent.iter().map(|(o, v)| format!("\n  {o}: {}", shown(v))).collect::<String>();
        let at = Origin { group: &group, topic: &topic, topic_id, partition: case.partition };
        let batch = Batch::from_records(at, case.first_offset, records);

        let mut archiver = self.archiver.borrow_mut();
        let committed = match panic::catch_unwind(AssertUnwindSafe(|| archiver.commit(at, -1, &batch))) {
            Ok(Ok(committed)) => committed,
            Ok(Err(err)) => {
                return Err(TestCaseError::fail(format!("commit failed: {err:#}; values sent:{}", listed())))
            }
            Err(panicked) => {
                // The connection may be mid-statement: the next cases get a new one.
                *archiver = Archiver::new(self.database.client(), KEEP_EVERYTHING);
                let message = panicked
                    .downcast_ref::<&str>()
                    .map(|m| (*m).to_owned())
                    .or_else(|| panicked.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                return Err(TestCaseError::fail(format!("commit panicked: {message}; values sent:{}", listed())));
            }
        };

        let total = u64::try_from(sent.len()).expect("a few records");
        let Committed::Done { archived, rejected, .. } = committed else {
            return Err(TestCaseError::fail(format!("commit said {committed:?}; values sent:{}", listed())));
        };
        let (all_archived, all_rejected) = self.outcomes.get();
        self.outcomes.set((all_archived + archived, all_rejected + rejected));
        prop_assert_eq!(archived + rejected, total, "archived and rejected of {}", listed());
        let offsets: Vec<i64> = sent.iter().map(|(o, _)| *o).collect();
        let client = archiver.client();
        let rows = client
            .query(
                "SELECT o,
                        (SELECT count(*) FROM reports
                         WHERE kafka_topic = $1 AND kafka_partition = $2 AND kafka_offset = o),
                        (SELECT count(*) FROM rejected_messages
                         WHERE kafka_topic = $1 AND kafka_partition = $2 AND kafka_offset = o)
                 FROM unnest($3::int8[]) AS o",
                &[&topic, &case.partition, &offsets],
            )
            .expect("counting the rows of each offset");
        prop_assert_eq!(rows.len(), sent.len());
        for (row, (offset, value)) in rows.iter().zip(&sent) {
            let (listed_offset, in_reports, in_rejected): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
            prop_assert_eq!(listed_offset, *offset, "unnest keeps the order of the offsets");
            prop_assert!(
                in_reports + in_rejected == 1,
                "offset {} is {} times in reports and {} times in rejected_messages: {}",
                offset,
                in_reports,
                in_rejected,
                shown(value)
            );
        }
        let all: i64 = client
            .query_one(
                "SELECT (SELECT count(*) FROM reports WHERE kafka_topic = $1)
                      + (SELECT count(*) FROM rejected_messages WHERE kafka_topic = $1)",
                &[&topic],
            )
            .expect("counting the rows of the topic")
            .get(0);
        prop_assert_eq!(all, i64::try_from(total).expect("a few"), "rows of the topic for {}", listed());
        let next: Option<i64> = client
            .query_opt("SELECT next_offset FROM consumer_offsets WHERE consumer_group = $1", &[&group])
            .expect("reading the stored offset")
            .map(|row| row.get(0));
        prop_assert_eq!(next, Some(offset + 1), "stored offset after {}", listed());
        Ok(())
    }
}

/// Placeholders of report ids, each named for the form the id is written in.
const ID_TAGS: [&str; 5] = ["<id>", "<ID>", "<id-simple>", "<id-urn>", "<id-braced>"];

/// Each placeholder replaced by a new id in the form it names (each occurrence its own id).
fn with_fresh_ids(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    'bytes: while let Some((&first, tail)) = rest.split_first() {
        for tag in ID_TAGS {
            if let Some(after) = rest.strip_prefix(tag.as_bytes()) {
                let id = Uuid::now_v7();
                let written = match tag {
                    "<ID>" => id.hyphenated().to_string().to_uppercase(),
                    "<id-simple>" => id.simple().to_string(),
                    "<id-urn>" => id.urn().to_string(),
                    "<id-braced>" => id.braced().to_string(),
                    _ => id.hyphenated().to_string(),
                };
                out.extend_from_slice(written.as_bytes());
                rest = after;
                continue 'bytes;
            }
        }
        out.push(first);
        rest = tail;
    }
    out
}

// ---- Arbitrary bytes ----------------------------------------------------------------------------

/// Documents to corrupt, from a whole current report to bare JSON values.
const TEMPLATES: &[&str] = &[
    r#"{"v":1,"id":"<id>","url":"http://a.test/","code":200,"response_ms":1.5,"regexp_match":null,"checked_at":"2026-11-29T10:00:00Z","probe":"p"}"#,
    r#"{"v":1,"id":"<id>","url":"https://b.test/x","code":503,"response_ms":0,"regexp_match":"m","checked_at":"2026-11-29T10:00:00.5+01:00","probe":"p","error":{"kind":"http","message":"e"},"timings_ms":{"dns":1,"connect":2,"tls":null,"ttfb":4,"transfer":5},"http_version":"HTTP/2","final_url":"https://b.test/y","redirects":1,"body_bytes":10,"tls_expires_at":"2027-01-31T23:59:59Z"}"#,
    r#"{"url":"http://legacy.test/","code":200,"response_ms":12,"regexp_match":"ok"}"#,
    r#"{"v":1}"#,
    r#"{"v":2,"id":"<id>"}"#,
    r#"[1,"\u0000",{"a":null}]"#,
    r#""\ud800""#,
    "null",
];

/// Byte strings that break JSON or UTF-8 in interesting ways.
const BYTE_FRAGMENTS: &[&[u8]] = &[
    br"\u0000",
    br"\ud800",
    br"\udc00",
    br"\ud83d\ude00",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
    b"\x00",
    b"\"",
    b"\\",
    b"1e999999",
    b"-0",
    b",\"x\":",
];

/// What a record's value may be: a tombstone, empty, random bytes, or a document corrupted.
fn record_value() -> impl Strategy<Value = Option<Vec<u8>>> {
    let json_bytes: &'static [u8] = b"{}[]\":,0123456789.eE+-\\u tnrfalsd";
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Vec::new())),
        2 => vec(any::<u8>(), 1..64).prop_map(Some),
        2 => vec(select(json_bytes), 1..64).prop_map(Some),
        6 => corrupted_document().prop_map(Some),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Replace(Index, u8),
    Remove(Index),
}

fn corrupted_document() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![any::<u8>().prop_map(|b| vec![b]), select(BYTE_FRAGMENTS).prop_map(<[u8]>::to_vec)];
    let edit = prop_oneof![
        1 => any::<Index>().prop_map(Edit::Truncate),
        3 => (any::<Index>(), fragment).prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Edit::Replace(at, byte)),
        1 => any::<Index>().prop_map(Edit::Remove),
    ];
    let edits = prop_oneof![1 => Just(Vec::new()), 1 => vec(edit, 1..4)];
    (select(TEMPLATES), edits).prop_map(|(template, edits)| {
        let mut bytes = template.as_bytes().to_vec();
        for edit in edits {
            let len = bytes.len();
            match edit {
                Edit::Truncate(at) => bytes.truncate(at.index(len + 1)),
                Edit::Insert(at, fragment) => {
                    let at = at.index(len + 1);
                    bytes.splice(at..at, fragment);
                }
                Edit::Replace(at, byte) if len > 0 => bytes[at.index(len)] = byte,
                Edit::Remove(at) if len > 0 => {
                    bytes.remove(at.index(len));
                }
                Edit::Replace(..) | Edit::Remove(_) => {}
            }
        }
        bytes
    })
}

// ---- JSON-shaped documents -----------------------------------------------------------------------
//
// Values are mostly valid JSON that is hostile to the database (NUL, long text, extreme numbers and
// times), so that most documents reach it; now and then they are not JSON that a report may hold
// (a lone surrogate, a number out of range, a wrong type, a missing field), so that they are
// rejected.

/// Pieces of string content that JSON allows, as written between the quotes.
const STRING_PIECES: &[&str] = &[
    "http://a.test/",
    "x",
    "é",
    "😀",
    "\u{7f}",
    "\u{feff}",
    "\u{ffff}",
    "\u{2028}",
    "\u{10ffff}",
    r"\u0000",
    r"\u0000\u0000",
    r"\ud83d\ude00",
    r"\uD83D\uDE00",
    r"\u0001",
    r"\u001f",
    r"\b\f\n\r\t",
    r#"\""#,
    r"\\",
    r"\/",
    r"\uFFFD",
    r"\ufffe",
];

/// Pieces that make a string invalid JSON: lone surrogates, bad escapes, a raw control character.
const BREAKING_PIECES: &[&str] =
    &[r"\ud800", r"\udc00", r"\uD800", r"\ud800\u0041", r"\udfff\ud800", "\u{1}", "\u{0}", r"\x", r"\u12"];

/// Numbers that a report's `f64` holds, at the ends of its range and beyond its precision.
const FLOATS: &[&str] = &[
    "0",
    "-0",
    "-0.0",
    "1.5",
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "5e-324",
    "-5e-324",
    "1e-400",
    "18446744073709551616",
    "123456789012345678901234567890",
    "0.1e1",
    "1E2",
];

/// Numbers that the integer fields do not hold, out of range or not JSON at all.
const BAD_NUMBERS: &[&str] =
    &["1e309", "1e999999", "-1e999999", "-1", "65536", "4294967296", "01", "+1", ".5", "1.", "NaN", "Infinity"];

/// Times at the ends of what RFC 3339 and the types hold, valid or not.
const TIMESTAMPS: &[&str] = &[
    "2026-11-29T10:00:00.123456789Z",
    "2026-11-29T10:00:00.1234567891Z",
    "1970-01-01T00:00:00-00:00",
    "0000-01-01T00:00:00Z",
    "0000-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59.999999999Z",
    "9999-12-31T23:59:59-23:59",
    "2016-12-31T23:59:60Z",
    "2026-02-30T00:00:00Z",
    "2026-11-29T24:00:00Z",
    "2026-11-29 10:00:00Z",
    "2026-11-29t10:00:00z",
    "2026-11-29T10:00:00",
    "",
];

/// A JSON string of pieces, now and then one repeated to a length near a column limit (200 bytes
/// for `probe`, 2000 for `url`) or up to ~5,000 characters, and rarely a piece that breaks it.
fn json_string() -> BoxedStrategy<String> {
    let long = (
        select(&["a", "é", "😀", "\u{800}", r"\u0000", r"\ud83d\ude00"][..]),
        prop_oneof![185..215_usize, 1985..2015_usize, 1..5000_usize],
    )
        .prop_map(|(piece, bytes)| piece.repeat(bytes.div_ceil(piece.len())));
    let piece = prop_oneof![
        80 => select(STRING_PIECES).prop_map(String::from),
        6 => long,
        1 => select(BREAKING_PIECES).prop_map(String::from),
    ];
    vec(piece, 0..5).prop_map(|pieces| format!("\"{}\"", pieces.concat())).boxed()
}

/// A short JSON string, for keys.
fn json_key() -> BoxedStrategy<String> {
    let named = select(&["\"extra\"", "\"url\"", "\"id\"", "\"\"", r#""k\u0000""#, r#""k\uFFFD""#][..]);
    let built = vec(select(STRING_PIECES), 0..3).prop_map(|pieces| format!("\"{}\"", pieces.concat()));
    prop_oneof![named.prop_map(String::from), built].boxed()
}

/// A number for a `u16`, `u32` or `u64` field: mostly in range, at its ends.
fn json_count(max: u64) -> BoxedStrategy<String> {
    prop_oneof![select(vec![0, 1, 200, max]).prop_map(|n| n.to_string()), (0..=max).prop_map(|n| n.to_string()),]
        .boxed()
}

/// A number for an `f64` field, mostly one it holds.
fn json_float() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(FLOATS).prop_map(String::from),
        4 => any::<f64>().prop_filter_map("finite", |x| x.is_finite().then(|| format!("{x:?}"))),
        1 => any::<i64>().prop_map(|n| n.to_string()),
    ]
    .boxed()
}

/// An RFC 3339 time, from year 0 to 9999 with offsets up to ±23:59, or one of [`TIMESTAMPS`].
fn json_timestamp() -> BoxedStrategy<String> {
    let offsets = &["Z", "+00:00", "-00:01", "+00:01", "-23:59", "+23:59", "+05:30"][..];
    let year = prop_oneof![select(&[0_u32, 1, 1969, 1970, 2026, 9999][..]), 0_u32..=9999];
    let time = (0_u32..24, 0_u32..60, 0_u32..60, select(&["", ".5", ".000001", ".999999999"][..]));
    let built = (year, 1_u32..=12, 1_u32..=28, time, select(offsets)).prop_map(
        |(year, month, day, (hour, minute, second, fraction), offset)| {
            format!("\"{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}{offset}\"")
        },
    );
    prop_oneof![3 => built, 1 => select(TIMESTAMPS).prop_map(|t| format!("\"{t}\""))].boxed()
}

fn json_nullable_string() -> BoxedStrategy<String> {
    prop_oneof![Just("null".to_owned()), json_string()].boxed()
}

/// Any JSON value, nested a few levels, now and then nested to around the parser's depth limit.
fn any_json() -> BoxedStrategy<String> {
    let deep = (select(&[2_usize, 64, 126, 127, 128, 1000][..]), any::<bool>()).prop_map(|(depth, arrays)| {
        if arrays {
            format!("{}0{}", "[".repeat(depth), "]".repeat(depth))
        } else {
            format!("{}0{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
        }
    });
    let leaf = prop_oneof![
        8 => json_string(),
        4 => json_float(),
        1 => select(BAD_NUMBERS).prop_map(String::from),
        2 => select(&["true", "false", "null"][..]).prop_map(String::from),
        1 => deep,
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(","))),
            vec((json_key(), inner), 0..4).prop_map(|fields| {
                let fields: Vec<String> = fields.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
    .boxed()
}

/// `"name":value` with a value mostly of the field's type, now and then any JSON at all or one
/// of [`BAD_NUMBERS`]; rarely no field at all.
fn field(name: &'static str, typed: BoxedStrategy<String>) -> BoxedStrategy<Option<String>> {
    let value = prop_oneof![40 => typed, 1 => any_json(), 1 => select(BAD_NUMBERS).prop_map(String::from)];
    prop_oneof![60 => value.prop_map(move |v| Some(format!("\"{name}\":{v}"))), 1 => Just(None)].boxed()
}

/// An optional field of a current report, or an unknown field.
fn extra_field() -> BoxedStrategy<Option<String>> {
    let kinds = &["invalid_url", "dns", "connect", "tls", "timeout", "http", "body_limit", "regex_limit", "DNS"][..];
    let error = (select(kinds), json_string())
        .prop_map(|(kind, message)| format!(r#"{{"kind":"{kind}","message":{message}}}"#));
    let phases = &["dns", "connect", "tls", "ttfb", "transfer"][..];
    let timings = vec((select(phases), prop_oneof![Just("null".to_owned()), json_float()]), 0..5).prop_map(|phases| {
        let phases: Vec<String> = phases.into_iter().map(|(p, ms)| format!("\"{p}\":{ms}")).collect();
        format!("{{{}}}", phases.join(","))
    });
    let unknown = (json_key(), any_json()).prop_map(|(key, value)| Some(format!("{key}:{value}")));
    prop_oneof![
        1 => field("error", error.boxed()),
        1 => field("timings_ms", timings.boxed()),
        1 => field("http_version", json_nullable_string()),
        1 => field("final_url", json_nullable_string()),
        1 => field("redirects", json_count(u64::from(u32::MAX))),
        1 => field("body_bytes", json_count(u64::MAX)),
        1 => field("tls_expires_at", json_timestamp()),
        7 => unknown,
    ]
    .boxed()
}

/// The fields as a JSON object, now and then with whitespace, a byte-order mark or garbage around.
fn object(fields: impl Strategy<Value = Vec<String>>) -> impl Strategy<Value = String> {
    let frame = prop_oneof![
        30 => Just(("", "")),
        1 => (select(&[" ", "\n\t", "\u{feff}"][..]), select(&["", " ", "\n", "x", "}", ",", "\u{0}"][..])),
    ];
    (fields, frame).prop_map(|(fields, (before, after))| format!("{before}{{{}}}{after}", fields.join(",")))
}

/// A current report: its known fields (`v`, `id` in one of the forms a UUID is read from, …) and
/// 0–3 more.
fn report_document() -> impl Strategy<Value = String> {
    let version = prop_oneof![20 => Just("1"), 1 => select(&["0", "2", "1.0", "\"1\"", "null"][..])];
    let known = (
        field("v", version.prop_map(String::from).boxed()),
        field("id", select(&ID_TAGS[..]).prop_map(|tag| format!("\"{tag}\"")).boxed()),
        field("url", json_string()),
        field("code", json_count(u64::from(u16::MAX))),
        field("response_ms", json_float()),
        field("regexp_match", json_nullable_string()),
        field("checked_at", json_timestamp()),
        field("probe", json_string()),
    );
    object((known, vec(extra_field(), 0..=3)).prop_map(|((v, id, url, code, ms, regexp, checked, probe), extra)| {
        [v, id, url, code, ms, regexp, checked, probe].into_iter().chain(extra).flatten().collect()
    }))
}

/// A record of the Python tool: its four fields, now and then one more.
fn legacy_document() -> impl Strategy<Value = String> {
    let known = (
        field("url", json_string()),
        field("code", json_count(u64::from(u16::MAX))),
        field("response_ms", json_float()),
        field("regexp_match", json_nullable_string()),
    );
    let extra = prop_oneof![8 => Just(Vec::new()), 1 => vec(extra_field(), 1..=1)];
    object((known, extra).prop_map(|((url, code, ms, regexp), extra)| {
        [url, code, ms, regexp].into_iter().chain(extra).flatten().collect()
    }))
}
