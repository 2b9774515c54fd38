//! The bytes of a Metadata v12 exchange (request header v2, response header v1, flexible
//! encoding). rskafka 0.6 speaks Metadata v0–v4, which carries no topic id, and only the id tells a
//! topic deleted and created again under the same name (KIP-516) from the one we were reading.
//!
//! Answers are read with bounds checks only: bytes that are truncated or hostile give a
//! [`DecodeError`], never a panic, and no length is trusted before the bytes it claims are there.

use tokio::io::{AsyncRead, AsyncReadExt};
use uuid::Uuid;

const METADATA: i16 = 3;
/// Answers carry topic ids from v10 on, but v12 is the first whose request side the broker
/// implements (v10 and v11 must not use the id field); brokers speak it since Kafka 3.1. v13 only
/// adds a top-level error code and needs a newer broker.
const VERSION: i16 = 12;
/// A metadata answer for one topic is a few KiB; anything this large is not one.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// What the broker knows of a topic now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// The topic id; `None` when the broker gave the all-zero id.
    pub id: Option<Uuid>,
    /// The partition ids, sorted.
    pub partitions: Vec<i32>,
}

/// What is wrong with the bytes of an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame length {0} is not within 0..={MAX_FRAME_BYTES}")]
    FrameLength(i32),
    #[error("ends at byte {at}, in the middle of {what}")]
    Truncated { at: usize, what: &'static str },
    #[error("{what} at byte {at}")]
    Invalid { at: usize, what: &'static str },
    #[error("correlation id {found}, expected {expected}")]
    CorrelationId { expected: i32, found: i32 },
    #[error("no entry for topic '{0}'")]
    TopicMissing(String),
}

/// The broker's entry for the requested topic.
#[derive(Debug, PartialEq, Eq)]
pub struct TopicEntry {
    pub error_code: i16,
    pub metadata: TopicMetadata,
}

/// The whole request frame: size, request header v2, Metadata v12 for one topic by name.
pub fn encode_request(correlation_id: i32, client_id: &str, topic: &str) -> Vec<u8> {
    let mut out = vec![0; 4];
    out.extend_from_slice(&METADATA.to_be_bytes());
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    // Not compact even in flexible headers, so that any broker can read it.
    let client_id = &client_id.as_bytes()[..client_id.len().min(i16::MAX as usize)];
    out.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    out.extend_from_slice(client_id);
    out.push(0); // no tagged fields in the header
    put_uvarint(&mut out, 2); // topics: a compact array of one
    out.extend_from_slice(&[0; 16]); // topic id: none, we ask by name
    put_uvarint(&mut out, topic.len() as u64 + 1);
    out.extend_from_slice(topic.as_bytes());
    out.push(0); // no tagged fields in the topic
    out.push(0); // allow_auto_topic_creation
    out.push(0); // include_topic_authorized_operations
    out.push(0); // no tagged fields in the body
    let size = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out
}

fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The length of the frame that `prefix` starts.
fn frame_length(prefix: [u8; 4]) -> Result<usize, DecodeError> {
    let length = i32::from_be_bytes(prefix);
    usize::try_from(length).ok().filter(|&l| l <= MAX_FRAME_BYTES).ok_or(DecodeError::FrameLength(length))
}

/// One size-prefixed frame; the outer result is the transport, the inner one the size.
pub async fn read_frame(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Result<Vec<u8>, DecodeError>> {
    let mut prefix = [0; 4];
    stream.read_exact(&mut prefix).await?;
    let length = match frame_length(prefix) {
        Ok(length) => length,
        Err(err) => return Ok(Err(err)),
    };
    let mut frame = vec![0; length];
    stream.read_exact(&mut frame).await?;
    Ok(Ok(frame))
}

/// Reads a response frame (after its size): response header v1, Metadata v12.
pub fn decode_response(frame: &[u8], expected: i32, topic: &str) -> Result<TopicEntry, DecodeError> {
    let mut r = Reader { bytes: frame, at: 0 };
    let found = r.i32("the correlation id")?;
    if found != expected {
        return Err(DecodeError::CorrelationId { expected, found });
    }
    r.skip_tagged_fields()?;
    r.i32("throttle_time_ms")?;
    // Brokers: node_id, host, port, rack, tagged fields; 11 bytes at the least.
    for _ in 0..r.array_len("brokers", 11)? {
        r.i32("node_id")?;
        r.compact_str("host")?;
        r.i32("port")?;
        r.compact_str("rack")?;
        r.skip_tagged_fields()?;
    }
    r.compact_str("cluster_id")?;
    r.i32("controller_id")?;
    let mut entry = None;
    // Topics: error code, name, id, is_internal, partitions, authorized operations, tagged fields.
    for _ in 0..r.array_len("topics", 26)? {
        let error_code = r.i16("a topic error code")?;
        let name = r.compact_str("a topic name")?;
        let id = Uuid::from_bytes(r.bytes::<16>("a topic id")?);
        r.bytes::<1>("is_internal")?;
        let count = r.array_len("partitions", 18)?;
        let mut partitions = Vec::with_capacity(count);
        for _ in 0..count {
            r.i16("a partition error code")?;
            partitions.push(r.i32("a partition index")?);
            r.i32("leader_id")?;
            r.i32("leader_epoch")?;
            for what in ["replica_nodes", "isr_nodes", "offline_replicas"] {
                let nodes = r.array_len(what, 4)?;
                r.take(nodes.saturating_mul(4), what)?;
            }
            r.skip_tagged_fields()?;
        }
        r.i32("topic_authorized_operations")?;
        r.skip_tagged_fields()?;
        if name == Some(topic) && entry.is_none() {
            partitions.sort_unstable();
            let id = (!id.is_nil()).then_some(id);
            entry = Some(TopicEntry { error_code, metadata: TopicMetadata { id, partitions } });
        }
    }
    r.skip_tagged_fields()?;
    if r.at != frame.len() {
        return Err(DecodeError::Invalid { at: r.at, what: "bytes after the end of the answer" });
    }
    entry.ok_or_else(|| DecodeError::TopicMissing(topic.to_owned()))
}

/// Bounds-checked reads from the front of a frame.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let taken = self.bytes.get(self.at..).and_then(|rest| rest.get(..n));
        let taken = taken.ok_or(DecodeError::Truncated { at: self.bytes.len(), what })?;
        self.at += n;
        Ok(taken)
    }

    fn bytes<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        self.bytes(what).map(i16::from_be_bytes)
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        self.bytes(what).map(i32::from_be_bytes)
    }

    /// An unsigned varint of at most 32 bits (5 bytes), as Kafka writes lengths and tags.
    fn uvarint(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let start = self.at;
        let mut value: u32 = 0;
        for shift in [0, 7, 14, 21, 28] {
            let [byte] = self.bytes::<1>(what)?;
            let bits = u32::from(byte & 0x7f);
            if shift == 28 && bits > 0x0f {
                return Err(DecodeError::Invalid { at: start, what: "a varint over 32 bits" });
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Invalid { at: start, what: "a varint longer than 5 bytes" })
    }

    /// A compact length (N + 1, 0 for null) whose N elements of `min_size` bytes each fit in the
    /// bytes left; checked before anything is allocated for them.
    fn compact_len(&mut self, what: &'static str, min_size: usize) -> Result<Option<usize>, DecodeError> {
        let start = self.at;
        let Some(n) = self.uvarint(what)?.checked_sub(1) else { return Ok(None) };
        let n = n as usize;
        let left = self.bytes.len().saturating_sub(self.at);
        match n.checked_mul(min_size) {
            Some(needed) if needed <= left => Ok(Some(n)),
            _ => Err(DecodeError::Invalid { at: start, what: "a length larger than the bytes left" }),
        }
    }

    fn array_len(&mut self, what: &'static str, min_size: usize) -> Result<usize, DecodeError> {
        let start = self.at;
        self.compact_len(what, min_size)?.ok_or(DecodeError::Invalid { at: start, what: "a null array" })
    }

    /// A compact nullable string.
    fn compact_str(&mut self, what: &'static str) -> Result<Option<&'a str>, DecodeError> {
        let Some(len) = self.compact_len(what, 1)? else { return Ok(None) };
        let start = self.at;
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes).map(Some).map_err(|_| DecodeError::Invalid { at: start, what: "a string not UTF-8" })
    }

    fn skip_tagged_fields(&mut self) -> Result<(), DecodeError> {
        let count = self.uvarint("tagged fields")?;
        for _ in 0..count {
            self.uvarint("a tag")?;
            // A plain size, not N + 1.
            let size = self.uvarint("a tagged field size")?;
            self.take(size as usize, "a tagged field")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: [u8; 16] =
        [0x5a, 0x1e, 0x0c, 0x2b, 0x7d, 0x44, 0x4f, 0x0e, 0x9a, 0x61, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd];

    /// One partition entry of a v12 answer: no error, leader 1, replicas and ISR [1], none offline.
    fn partition(index: u8) -> Vec<u8> {
        [
            &[0, 0][..],       // error_code
            &[0, 0, 0, index], // partition_index
            &[0, 0, 0, 1],     // leader_id
            &[0, 0, 0, 0],     // leader_epoch
            &[2, 0, 0, 0, 1],  // replica_nodes [1]
            &[2, 0, 0, 0, 1],  // isr_nodes [1]
            &[1],              // offline_replicas []
            &[0],              // tagged fields
        ]
        .concat()
    }

    /// A v12 answer (after the frame size) with correlation id 7, one broker and one topic entry.
    fn answer(error_code: u8, name: &str, id: [u8; 16], partitions: &[u8]) -> Vec<u8> {
        let mut out = [
            &[0, 0, 0, 7][..],                      // correlation id
            &[0],                                   // header tagged fields
            &[0, 0, 0, 0],                          // throttle_time_ms
            &[2],                                   // brokers: 1
            &[0, 0, 0, 1, 10],                      // node_id 1, host: 9 bytes
            b"localhost",                           // host
            &[0, 0, 0x23, 0x84, 0, 0],              // port 9092, rack null, tagged fields
            &[5],                                   // cluster_id: 4 bytes
            b"abcd",                                // cluster_id
            &[0, 0, 0, 1],                          // controller_id
            &[2],                                   // topics: 1
            &[0, error_code, name.len() as u8 + 1], // error_code, name
            name.as_bytes(),                        // name
            &id,                                    // topic_id
            &[0, partitions.len() as u8 + 1],       // is_internal, partitions
        ]
        .concat();
        for &index in partitions {
            out.extend(partition(index));
        }
        out.extend([0x80, 0, 0, 0, 0]); // topic_authorized_operations, tagged fields
        out.extend([1, 0, 2, 0xab, 0xcd]); // one unknown tagged field (tag 0, 2 bytes), skipped
        out
    }

    #[test]
    fn a_request_is_encoded_as_derived_by_hand_from_the_schemas() {
        let mut expected = vec![0, 0, 0, 37]; // size of what follows
        expected.extend([0, 3, 0, 12, 0, 0, 0, 7]); // api key 3, version 12, correlation id 7
        expected.extend([0, 2, b'w', b's', 0]); // client id as int16-length string, tagged fields
        expected.extend([2]); // topics: compact array of 1
        expected.extend([0; 16]); // topic id: zero
        expected.extend([3, b't', b'1', 0]); // name as compact string, tagged fields
        expected.extend([0, 0, 0]); // allow_auto_topic_creation, include_topic_authorized_operations, tagged

        assert_eq!(encode_request(7, "ws", "t1"), expected);
    }

    #[test]
    fn a_topic_with_an_id_and_three_partitions_is_decoded_with_sorted_partitions() {
        let bytes = answer(0, "t1", ID, &[2, 0, 1]);

        let entry = decode_response(&bytes, 7, "t1").expect("decodes");

        assert_eq!(entry.error_code, 0);
        assert_eq!(entry.metadata, TopicMetadata { id: Some(Uuid::from_bytes(ID)), partitions: vec![0, 1, 2] });
    }

    #[test]
    fn an_unknown_topic_answers_error_3_with_no_id() {
        let bytes = answer(3, "nope", [0; 16], &[]);

        let entry = decode_response(&bytes, 7, "nope").expect("decodes");

        assert_eq!(entry, TopicEntry { error_code: 3, metadata: TopicMetadata { id: None, partitions: vec![] } });
    }

    #[test]
    fn an_answer_to_another_request_or_about_another_topic_is_refused() {
        let bytes = answer(0, "t1", ID, &[0]);

        assert_eq!(decode_response(&bytes, 8, "t1"), Err(DecodeError::CorrelationId { expected: 8, found: 7 }));
        assert_eq!(decode_response(&bytes, 7, "t2"), Err(DecodeError::TopicMissing("t2".into())));
    }

    #[test]
    fn every_truncation_of_an_answer_is_an_error() {
        let bytes = answer(0, "t1", ID, &[2, 0, 1]);
        for end in 0..bytes.len() {
            assert!(decode_response(&bytes[..end], 7, "t1").is_err(), "{end} of {} bytes decoded", bytes.len());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_response(&longer, 7, "t1").is_err(), "a trailing byte was accepted");
    }

    #[test]
    fn damaged_bytes_give_errors_or_answers_but_never_panic() {
        let bytes = answer(0, "t1", ID, &[2, 0, 1]);
        for at in 0..bytes.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[at] = value;
                let _ = decode_response(&damaged, 7, "t1");
            }
        }
    }

    #[test]
    fn a_count_larger_than_the_bytes_left_is_refused_before_allocating() {
        let mut bytes = vec![0, 0, 0, 7, 0, 0, 0, 0, 0]; // header, throttle_time_ms
        bytes.extend([1, 0, 0, 0, 0, 1]); // no brokers, cluster_id null, controller_id 1
        bytes.extend([0xff, 0xff, 0xff, 0xff, 0x0f]); // topics: u32::MAX - 1 entries

        let err = decode_response(&bytes, 7, "t1").expect_err("refused");

        assert!(matches!(err, DecodeError::Invalid { what: "a length larger than the bytes left", .. }), "{err}");
    }

    #[test]
    fn varints_over_32_bits_are_refused() {
        for bytes in [&[0x80, 0x80, 0x80, 0x80, 0x10][..], &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]] {
            let mut r = Reader { bytes, at: 0 };
            assert!(matches!(r.uvarint("x"), Err(DecodeError::Invalid { .. })), "{bytes:?}");
        }
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX)] {
            let mut bytes = Vec::new();
            put_uvarint(&mut bytes, value);
            assert_eq!(Reader { bytes: &bytes, at: 0 }.uvarint("x").map(u64::from), Ok(value), "{value}");
        }
    }

    #[tokio::test]
    async fn a_frame_with_a_huge_or_negative_length_is_refused_without_reading_it() {
        for prefix in [[0x7f, 0xff, 0xff, 0xff], [0x01, 0x00, 0x00, 0x01], [0xff, 0xff, 0xff, 0xfe]] {
            let length = i32::from_be_bytes(prefix);
            let mut stream: &[u8] = &prefix;

            let frame = read_frame(&mut stream).await.expect("the prefix is read");

            assert_eq!(frame, Err(DecodeError::FrameLength(length)), "length {length}");
        }
        let mut stream: &[u8] = &[0, 0, 0, 2, 0xab, 0xcd];
        assert_eq!(read_frame(&mut stream).await.expect("read"), Ok(vec![0xab, 0xcd]));
    }
}
