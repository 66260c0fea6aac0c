//! Unit tests of the Bond decoder on hand-built bodies: every value kind, and every way a body
//! can be broken. (The bodies the real 1DS C++ SDK sent are checked in `tests/cpp_sdk.rs`.)

use serde_json::json;

use super::*;

/// A minimal CompactBinary v1 writer, for building test bodies (the rules of
/// `lib/bond/CompactBinaryProtocolWriter.hpp`).
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn varint(&mut self, mut v: u64) -> &mut Self {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return self;
            }
            self.0.push(b | 0x80);
        }
    }
    fn zigzag(&mut self, v: i64) -> &mut Self {
        self.varint(((v << 1) ^ (v >> 63)) as u64)
    }
    fn field(&mut self, ty: u8, id: u16) -> &mut Self {
        if id <= 5 {
            self.0.push(ty | ((id as u8) << 5));
        } else if id <= 0xff {
            self.0.push(ty | (6 << 5));
            self.0.push(id as u8);
        } else {
            self.0.push(ty | (7 << 5));
            self.0.extend_from_slice(&id.to_le_bytes());
        }
        self
    }
    fn string(&mut self, s: &str) -> &mut Self {
        self.varint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn list(&mut self, ty: u8, n: u64) -> &mut Self {
        self.0.push(ty);
        self.varint(n)
    }
    fn stop(&mut self) -> &mut Self {
        self.0.push(bt::STOP);
        self
    }
    /// A `Value` struct of `kind` with a long or string or double payload.
    fn long_value(&mut self, kind: i64, long: i64) -> &mut Self {
        self.field(bt::INT32, 1).zigzag(kind);
        self.field(bt::INT64, 4).zigzag(long);
        self.stop()
    }
}

const TICKS_2026: i64 = TICKS_AT_UNIX_EPOCH + 1_796_000_000 * 10_000_000 + 1_234_567;

/// A record with one property of every value kind, the device extension and a tag.
fn full_record() -> Vec<u8> {
    let mut w = W::default();
    w.field(bt::STRING, 1).string("4.0");
    w.field(bt::STRING, 2).string("Mdelab.Fixture");
    w.field(bt::INT64, 3).zigzag(TICKS_2026);
    w.field(bt::STRING, 5).string("o:tenant1");
    // extDevice: vector<Device> with one element.
    w.field(bt::LIST, 23).list(bt::STRUCT, 1);
    w.field(bt::STRING, 2).string("s:device-7").stop();
    // tags: map<string, string>.
    w.field(bt::MAP, 51);
    w.0.extend_from_slice(&[bt::STRING, bt::STRING]);
    w.varint(1).string("k").string("v");
    // data: vector<Data> with one Data { properties }.
    w.field(bt::LIST, 70).list(bt::STRUCT, 1);
    w.field(bt::MAP, 1);
    w.0.extend_from_slice(&[bt::STRING, bt::STRUCT]);
    w.varint(12);
    w.string("s").field(bt::STRING, 3).string("mdelab").stop();
    w.string("i64").long_value(kind::INT64, -1_234_567_890_123);
    w.string("u32").long_value(kind::UINT32, 42);
    w.string("b").long_value(kind::BOOL, 1);
    w.string("bf").field(bt::INT32, 1).zigzag(kind::BOOL).stop(); // false: longValue omitted
    w.string("d").field(bt::INT32, 1).zigzag(kind::DOUBLE);
    w.field(bt::DOUBLE, 5)
        .0
        .extend_from_slice(&3.5f64.to_le_bytes());
    w.stop();
    w.string("t").long_value(kind::DATE_TIME, TICKS_2026);
    w.string("g").field(bt::INT32, 1).zigzag(kind::GUID);
    w.field(bt::LIST, 6).list(bt::LIST, 1).list(bt::UINT8, 16);
    w.0.extend_from_slice(&[
        0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ]);
    w.stop();
    w.string("ai").field(bt::INT32, 1).zigzag(kind::ARRAY_INT64);
    w.field(bt::LIST, 11).list(bt::LIST, 1).list(bt::INT64, 3);
    w.zigzag(1).zigzag(-2).zigzag(3).stop();
    w.string("as")
        .field(bt::INT32, 1)
        .zigzag(kind::ARRAY_STRING);
    w.field(bt::LIST, 10).list(bt::LIST, 1).list(bt::STRING, 2);
    w.string("x").string("y").stop();
    w.string("ad")
        .field(bt::INT32, 1)
        .zigzag(kind::ARRAY_DOUBLE);
    w.field(bt::LIST, 12).list(bt::LIST, 1).list(bt::DOUBLE, 1);
    w.0.extend_from_slice(&0.25f64.to_le_bytes());
    w.stop();
    // A PII-tagged string: attributes are read and the value stays plain.
    w.string("pii").field(bt::LIST, 2).list(bt::STRUCT, 1);
    w.field(bt::LIST, 1)
        .list(bt::STRUCT, 1)
        .field(bt::INT32, 1)
        .zigzag(9)
        .stop()
        .stop();
    w.field(bt::STRING, 3).string("user@example.com").stop();
    w.stop(); // Data
    // An unknown field from a newer schema, skipped by type.
    w.field(bt::STRING, 900).string("future");
    w.stop(); // Record
    w.0
}

#[test]
fn a_record_with_every_value_kind_decodes_to_common_schema_json() {
    let body = full_record();
    let decoded = decode_records(&body, usize::MAX).expect("well-formed");
    assert_eq!(decoded.rejected, 0);
    assert_eq!(decoded.records.len(), 1);
    let r = &decoded.records[0];
    assert_eq!(r.size, body.len());
    assert_eq!(
        r.event,
        json!({
            "ver": "4.0",
            "name": "Mdelab.Fixture",
            "time": "2026-11-30T00:53:20.1234567Z",
            "iKey": "o:tenant1",
            "ext": {"device": {"localId": "s:device-7"}},
            "tags": {"k": "v"},
            "data": {
                "s": "mdelab",
                "i64": -1_234_567_890_123_i64,
                "u32": 42,
                "b": true,
                "bf": false,
                "d": 3.5,
                "t": "2026-11-30T00:53:20.1234567Z",
                "g": "00112233-4455-6677-8899-aabbccddeeff",
                "ai": [1, -2, 3],
                "as": ["x", "y"],
                "ad": [0.25],
                "pii": "user@example.com",
            },
        })
    );
}

#[test]
fn records_are_read_back_to_back_and_unnamed_or_oversize_ones_rejected() {
    let one = full_record();
    let mut unnamed = W::default();
    unnamed.field(bt::STRING, 1).string("4.0").stop();
    let mut body = one.clone();
    body.extend_from_slice(&unnamed.0);
    body.extend_from_slice(&one);
    let decoded = decode_records(&body, usize::MAX).unwrap();
    assert_eq!((decoded.records.len(), decoded.rejected), (2, 1));
    let decoded = decode_records(&body, one.len() - 1).unwrap();
    assert_eq!((decoded.records.len(), decoded.rejected), (0, 3));
    assert_eq!(decode_records(&[], 10).unwrap(), DecodedBody::default());
}

#[test]
fn every_truncation_is_an_error_with_an_offset_inside_the_body() {
    let body = full_record();
    for cut in 1..body.len() {
        let err = decode_records(&body[..cut], usize::MAX).expect_err("truncated");
        assert!(err.offset <= cut, "cut {cut}: {err}");
        assert!(err.field.starts_with("Record[0]"), "cut {cut}: {err}");
    }
}

#[test]
fn errors_name_the_field_and_offset() {
    // A bool that is neither 0 nor 1 in ext.javascript.userConsent.
    let mut w = W::default();
    w.field(bt::STRING, 2).string("e");
    w.field(bt::LIST, 28).list(bt::STRUCT, 1);
    w.field(bt::BOOL, 210);
    let at = w.0.len();
    w.0.push(7);
    w.stop().stop();
    let err = decode_records(&w.0, usize::MAX).unwrap_err();
    assert_eq!(err.offset, at);
    assert_eq!(err.field, "Record[0].javascript[0].userConsent");
    assert!(err.reason.contains("bool"), "{err}");

    // Invalid UTF-8 in the name.
    let mut w = W::default();
    w.field(bt::STRING, 2).varint(2);
    w.0.extend_from_slice(&[b'a', 0xff]);
    let err = decode_records(&w.0, usize::MAX).unwrap_err();
    assert_eq!((err.offset, err.field.as_str()), (3, "Record[0].name"));
    assert!(err.reason.contains("UTF-8"));
}

#[test]
fn lying_counts_are_refused_before_allocating() {
    let mut w = W::default();
    w.field(bt::LIST, 70).list(bt::STRUCT, u64::from(u32::MAX));
    let err = decode_records(&w.0, usize::MAX).unwrap_err();
    assert!(err.reason.contains("elements announced"), "{err}");
    let mut w = W::default();
    w.field(bt::STRING, 2).varint(1 << 30);
    let err = decode_records(&w.0, usize::MAX).unwrap_err();
    assert!(err.reason.contains("announced"), "{err}");
}

#[test]
fn deep_nesting_is_refused() {
    let mut w = W::default();
    w.field(bt::LIST, 200);
    for _ in 0..100 {
        w.list(bt::LIST, 1);
    }
    let err = decode_records(&w.0, usize::MAX).unwrap_err();
    assert!(err.reason.contains("nested deeper"), "{err}");
}

#[test]
fn overlong_varints_and_v2_containers_and_unknown_types_are_refused() {
    let mut w = W::default();
    w.field(bt::INT64, 3);
    w.0.extend_from_slice(&[0xff; 11]);
    assert!(
        decode_records(&w.0, 1 << 20)
            .unwrap_err()
            .reason
            .contains("varint")
    );

    let mut w = W::default();
    w.field(bt::LIST, 200);
    w.0.push(bt::STRING | (2 << 5)); // v2 packs the count in the upper bits
    assert!(
        decode_records(&w.0, 1 << 20)
            .unwrap_err()
            .reason
            .contains("v2")
    );

    let mut w = W::default();
    w.0.push(25 | (1 << 5));
    assert!(
        decode_records(&w.0, 1 << 20)
            .unwrap_err()
            .reason
            .contains("unknown Bond type")
    );
}

#[test]
fn guids_need_sixteen_bytes() {
    let mut w = W::default();
    w.field(bt::STRING, 2).string("e");
    w.field(bt::LIST, 70).list(bt::STRUCT, 1);
    w.field(bt::MAP, 1);
    w.0.extend_from_slice(&[bt::STRING, bt::STRUCT]);
    w.varint(1)
        .string("g")
        .field(bt::INT32, 1)
        .zigzag(kind::GUID);
    w.field(bt::LIST, 6).list(bt::LIST, 1).list(bt::UINT8, 3);
    w.0.extend_from_slice(&[1, 2, 3]);
    w.stop().stop().stop();
    let err = decode_records(&w.0, usize::MAX).unwrap_err();
    assert_eq!(err.field, "Record[0].data[0].properties[\"g\"]");
    assert!(err.reason.contains("GUID"));
}

#[test]
fn the_fuzz_corpus_replays_without_a_panic() {
    // The inputs `cargo fuzz` kept for `fuzz/fuzz_targets/bond_records.rs` (the SDK captures
    // and what grew from them): each decodes or is refused with an offset inside the body.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/bond_records");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the fuzz corpus is committed") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        match decode_records(&data, 64 * 1024) {
            Ok(body) => assert!(body.records.iter().map(|r| r.size).sum::<usize>() <= data.len()),
            Err(e) => assert!(e.offset <= data.len(), "{e}"),
        }
        replayed += 1;
    }
    assert!(
        replayed >= 3,
        "only {replayed} corpus files in {}",
        dir.display()
    );
}
