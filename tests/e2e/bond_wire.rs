//! The sensor's Bond encoder against the bytes Microsoft's 1DS C++ SDK really wrote
//! (`mock-cloud/tests/fixtures/1ds-cpp`): each record the lab decodes, the sensor encodes back
//! to the very same bytes, wherever JSON keeps the SDK's value kinds (strings, int64, double;
//! GUID and date-time properties become strings in JSON and so cannot round-trip).

use std::path::PathBuf;

use mdelab_mock_cloud::bond::decode_records;
use mdelab_sensor::bond::encode_events;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../mock-cloud/tests/fixtures/1ds-cpp")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_sensor_writes_the_sdks_bytes_for_each_record_the_lab_reads() {
    for capture in ["plain-batch50.body", "plain-twotenants.body"] {
        let body = fixture(capture);
        let decoded = decode_records(&body, usize::MAX).expect("the SDK's body decodes");
        let mut offset = 0;
        for (i, record) in decoded.records.iter().enumerate() {
            let sdk = &body[offset..offset + record.size];
            let ours = encode_events([&record.event]);
            assert_eq!(
                ours, sdk,
                "{capture} record {i} ({}) differs from the SDK's bytes",
                record.event["name"]
            );
            offset += record.size;
        }
        assert_eq!(offset, body.len());
        assert_eq!(
            encode_events(decoded.records.iter().map(|r| &r.event)),
            body
        );
    }
}

#[test]
fn records_with_every_json_kind_round_trip_through_the_lab_decoder() {
    let body = fixture("plain-kinds.body");
    let decoded = decode_records(&body, usize::MAX).unwrap();
    let events: Vec<_> = decoded.records.iter().map(|r| r.event.clone()).collect();
    // GUIDs, date-times and PII tags are strings once in JSON: the bytes differ, the JSON not.
    let again = decode_records(&encode_events(&events), usize::MAX).unwrap();
    let back: Vec<_> = again.records.into_iter().map(|r| r.event).collect();
    assert_eq!(back, events);
}
