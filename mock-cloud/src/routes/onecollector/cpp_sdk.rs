//! The collector against bodies Microsoft's 1DS C++ SDK really sent (`tests/fixtures/1ds-cpp`,
//! with what was logged in `events.json`): each is accepted whole, and every event decodes to
//! what the SDK was asked to log, property by property; broken variants get precise 400s.

use std::path::PathBuf;

use axum::http::Method;
use serde_json::{Value, json};

use super::super::testkit::{Answer, app as fresh_app, app_with, send};
use crate::config::ServiceConfig;
use crate::routes::App;
use crate::store::events::EventFilter;

const HOST: &str = "us-v20.events.data.microsoft.com";

/// Every event of the captures was logged with this timestamp (1704164645678 ms, per the
/// fixtures' README), which the SDK sends as .NET ticks.
const FIXED_TIME: &str = "2024-01-02T03:04:05.6780000Z";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/1ds-cpp")
}

/// What `logger.cpp` logged, per capture.
fn logged(capture: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join("events.json")).expect("events.json");
    let all: Value = serde_json::from_str(&text).expect("events.json is JSON");
    all["captures"][capture].clone()
}

/// The captured request: the SDK's own headers (less the transport's) and body.
fn captured(capture: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let dir = fixtures();
    let head = std::fs::read_to_string(dir.join(format!("{capture}.headers.txt"))).unwrap();
    let body = std::fs::read(dir.join(format!("{capture}.body"))).unwrap();
    let skip = [
        "host",
        "connection",
        "upgrade",
        "http2-settings",
        "content-length",
    ];
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| !skip.contains(&k.to_ascii_lowercase().as_str()))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (headers, body)
}

async fn post_capture(app: &App, capture: &str, body: Vec<u8>) -> Answer {
    let (headers, _) = captured(capture);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    send(
        app,
        Method::POST,
        HOST,
        "/OneCollector/1.0/",
        &headers,
        body,
    )
    .await
}

fn stored(app: &App, name: &str) -> Vec<Value> {
    let filter = EventFilter {
        name: Some(name.into()),
        ..EventFilter::default()
    };
    app.state()
        .events()
        .query(&filter)
        .into_iter()
        .map(|e| e.event.clone())
        .collect()
}

/// What a logged property must look like in the stored JSON event.
fn expected(prop: &Value) -> Value {
    let wire = &prop["wire"];
    if let Some(s) = wire.get("stringValue") {
        // PII- or customer-content-tagged values travel as strings.
        return s.clone();
    }
    match prop["kind"].as_str().unwrap() {
        "int64" | "int32" | "int16" | "int8" | "uint8" | "uint16" | "uint32" | "uint64" => {
            // Every integer kind is widened to int64 by the SDK (uint64 wraps).
            wire.get("longValue").unwrap_or(&prop["value"]).clone()
        }
        "time_ticks_t" => json!(FIXED_TIME),
        _ => prop["value"].clone(),
    }
}

#[tokio::test]
async fn every_captured_body_is_accepted_whole() {
    for capture in [
        "plain-kinds",
        "deflate-kinds",
        "gzipcfg-kinds",
        "plain-batch50",
        "deflate-batch50",
        "plain-twotenants",
    ] {
        let app = fresh_app();
        let (_, body) = captured(capture);
        let answer = post_capture(&app, capture, body).await;
        let count = logged(capture)["record_count"].as_u64().unwrap();
        assert_eq!(answer.status, 200, "{capture}: {}", answer.text());
        assert_eq!(answer.json(), json!({"acc": count, "rej": 0}), "{capture}");
    }
}

#[tokio::test]
async fn every_logged_property_arrives_as_logged() {
    for capture in ["plain-kinds", "deflate-kinds", "gzipcfg-kinds"] {
        let app = fresh_app();
        let (_, body) = captured(capture);
        assert_eq!(post_capture(&app, capture, body).await.status, 200);
        let log = logged(capture);
        for event in log["events"].as_array().unwrap() {
            let name = event["name"].as_str().unwrap();
            let got = stored(&app, name);
            assert_eq!(got.len(), 1, "{capture}: {name}");
            let got = &got[0];
            assert_eq!(got["iKey"], "o:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "{name}");
            assert_eq!(got["time"], FIXED_TIME, "{name}");
            for prop in event["properties"].as_array().unwrap() {
                let key = prop["name"].as_str().unwrap();
                let part = if prop["data_category"] == "PartB" {
                    "baseData"
                } else {
                    "data"
                };
                assert_eq!(
                    got[part][key],
                    expected(prop),
                    "{capture}: {name}.{part}.{key} ({})",
                    prop["kind"]
                );
            }
        }
        // Record-level settings of the kinds scenario.
        let typed = &stored(&app, "MdeLab.Fixture.Typed")[0];
        assert_eq!(typed["baseType"], "custom.mdelab.custom.type");
        let deferred = &stored(&app, "MdeLab.Fixture.LatencyCostDeferred")[0];
        assert_eq!(deferred["popSample"], 50.0);
        // The SDK's own ext.sdk block and the device id (prefix and newline stripped).
        let scalars = &stored(&app, "MdeLab.Fixture.Scalars")[0];
        assert_eq!(scalars["ext"]["sdk"]["ver"], "EVT-Linux-C++-No-3.10.173.1");
        let stored_device = app.state().events().query(&EventFilter {
            name: Some("MdeLab.Fixture.Scalars".into()),
            ..EventFilter::default()
        })[0]
            .device_id
            .clone()
            .expect("the device comes from ext.device.localId");
        assert!(!stored_device.starts_with("c:") && !stored_device.ends_with('\n'));
    }
}

#[tokio::test]
async fn a_batch_of_fifty_and_two_tenants_arrive_whole() {
    let app = fresh_app();
    let (_, body) = captured("deflate-batch50");
    assert_eq!(
        post_capture(&app, "deflate-batch50", body).await.status,
        200
    );
    let batch = stored(&app, "MdeLab.Fixture.Batch");
    let mut seqs: Vec<i64> = batch
        .iter()
        .map(|e| {
            let seq = e["data"]["seq"].as_i64().unwrap();
            assert_eq!(e["data"]["label"], format!("batch-item-{seq}"));
            assert_eq!(e["data"]["half"], json!(seq as f64 * 0.5));
            seq
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..50).collect::<Vec<_>>());

    let app = fresh_app();
    let (_, body) = captured("plain-twotenants");
    assert_eq!(
        post_capture(&app, "plain-twotenants", body).await.status,
        200
    );
    let tenant_of = |name: &str| -> Vec<Option<String>> {
        app.state()
            .events()
            .query(&EventFilter {
                name: Some(name.into()),
                ..EventFilter::default()
            })
            .into_iter()
            .map(|e| e.tenant.as_deref().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        tenant_of("MdeLab.Fixture.TenantA"),
        vec![Some("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned()); 3]
    );
    assert_eq!(
        tenant_of("MdeLab.Fixture.TenantB"),
        vec![Some("11111111111111111111111111111111".to_owned()); 2]
    );
}

#[tokio::test]
async fn truncated_corrupted_and_oversized_captures_get_precise_refusals() {
    let (_, body) = captured("plain-kinds");

    // Cut inside the third record: the whole body is refused with where it broke.
    let offsets = &logged("plain-kinds")["record_offsets_in_uncompressed_body"];
    let cut = offsets[2].as_u64().unwrap() as usize + 40;
    let app = fresh_app();
    let a = post_capture(&app, "plain-kinds", body[..cut].to_vec()).await;
    assert_eq!(a.status, 400, "{}", a.text());
    let j = a.json();
    assert_eq!(j["error"], "bad_bond");
    let message = j["message"].as_str().unwrap();
    assert!(message.contains("Record[2]"), "{message}");
    let at: usize = message
        .split("at byte ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the message gives the offset");
    assert!(
        (offsets[2].as_u64().unwrap() as usize..cut).contains(&at),
        "{message}"
    );
    assert_eq!(app.state().events().stats().accepted, 0);

    // A field header of an unknown Bond type at the start of the first record.
    let mut corrupt = body.clone();
    corrupt[0] = 0x1f | (1 << 5);
    let a = post_capture(&app, "plain-kinds", corrupt).await;
    assert_eq!(a.status, 400);
    let message = a.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("at byte 1") && message.contains("unknown Bond type 31"),
        "{message}"
    );

    // A body larger than the collector takes, as sent or as inflated.
    let small = app_with(ServiceConfig {
        onecollector_max_body: 1_000,
        ..ServiceConfig::default()
    });
    assert_eq!(post_capture(&small, "plain-kinds", body).await.status, 413);
    let small = app_with(ServiceConfig {
        onecollector_max_decompressed: 2_000,
        ..ServiceConfig::default()
    });
    let (_, deflated) = captured("deflate-kinds");
    let a = post_capture(&small, "deflate-kinds", deflated).await;
    assert_eq!(
        (a.status.as_u16(), a.json()["error"].clone()),
        (413, json!("decompressed_too_large"))
    );
}
