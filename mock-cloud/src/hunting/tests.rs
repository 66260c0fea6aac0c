//! Tests of hunting: the DeviceNetworkEvents table built from events and the KQL subset.

use serde_json::json;

use super::*;
use crate::store::events::NewEvent;

/// A store holding five connection events of two devices, as the sensor reports them.
fn store() -> EventStore {
    let events = EventStore::new(100);
    let rows = [
        (
            "dev-a",
            "ConnectionSuccess",
            "10.0.0.5",
            8080,
            "",
            "msedge.exe",
        ),
        (
            "dev-a",
            "ConnectionSuccess",
            "10.0.0.5",
            8080,
            "",
            "MsSense.exe",
        ),
        (
            "dev-a",
            "ConnectionSuccess",
            "93.184.216.34",
            443,
            "www.contoso-benign.example",
            "msedge.exe",
        ),
        (
            "dev-b",
            "ConnectionFailed",
            "10.0.0.5",
            8080,
            "",
            "msedge.exe",
        ),
        (
            "dev-b",
            "ExploitGuardNetworkProtectionBlocked",
            "10.0.0.5",
            443,
            "smartscreentestratings2.net",
            "msedge.exe",
        ),
    ];
    for (device, action, ip, port, url, process) in rows {
        events.push(NewEvent {
            cost: 300,
            received_ms: 0,
            device_id: Some(device.into()),
            tenant: Some("org1".into()),
            name: NETWORK_EVENT_NAME.into(),
            host: "us-v20.events.data.microsoft.com".into(),
            event: json!({"name": NETWORK_EVENT_NAME, "time": "2026-11-22T05:00:00Z", "data": {
                "ActionType": action, "RemoteIP": ip, "RemotePort": port, "RemoteUrl": url,
                "LocalIP": "127.0.0.77", "InitiatingProcessFileName": process, "Protocol": "Tcp"}}),
        });
    }
    // Not a network event: must not show up.
    events.push(NewEvent {
        cost: 20,
        received_ms: 0,
        device_id: Some("dev-a".into()),
        tenant: None,
        name: "Other".into(),
        host: "".into(),
        event: json!({"name": "Other"}),
    });
    events
}

fn q(query: &str) -> HuntResult {
    run(query, &store()).unwrap_or_else(|e| panic!("{query}: {e}"))
}

fn err(query: &str) -> QueryError {
    run(query, &store()).expect_err(query)
}

#[test]
fn table_alone_returns_every_network_event_with_the_documented_columns() {
    let all = q("DeviceNetworkEvents");
    assert_eq!(all.rows.len(), 5);
    assert_eq!(all.columns, NETWORK_COLUMNS.map(str::to_owned).to_vec());
    assert_eq!(all.rows[2][5], "www.contoso-benign.example");
    assert_eq!(all.rows[0][4], 8080);
}

#[test]
fn where_with_eq_ne_and_or_and_parentheses() {
    assert_eq!(
        q(r#"DeviceNetworkEvents | where ActionType == "ConnectionSuccess""#)
            .rows
            .len(),
        3
    );
    let real = q(
        r#"DeviceNetworkEvents | where ActionType == "ConnectionSuccess" and RemoteIP != "10.0.0.5""#,
    );
    assert_eq!(real.rows.len(), 1);
    assert_eq!(real.rows[0][5], "www.contoso-benign.example");
    assert_eq!(
        q("DeviceNetworkEvents | where DeviceId == 'dev-b' or RemotePort == 443")
            .rows
            .len(),
        3
    );
    // `and` binds tighter than `or`; parentheses change it.
    let flat = q(
        r#"DeviceNetworkEvents | where DeviceId == "dev-b" or DeviceId == "dev-a" and RemotePort == 443"#,
    );
    assert_eq!(flat.rows.len(), 3);
    let grouped = q(
        r#"DeviceNetworkEvents | where (DeviceId == "dev-b" or DeviceId == "dev-a") and RemotePort == 443"#,
    );
    assert_eq!(grouped.rows.len(), 2);
    assert_eq!(
        q(r#"DeviceNetworkEvents | where ActionType == "connectionsuccess""#)
            .rows
            .len(),
        0,
        "== is case-sensitive"
    );
}

#[test]
fn has_matches_whole_terms_and_contains_substrings_ignoring_case() {
    assert_eq!(
        q(r#"DeviceNetworkEvents | where RemoteUrl has "SMARTSCREENTESTRATINGS2""#)
            .rows
            .len(),
        1
    );
    assert_eq!(
        q(r#"DeviceNetworkEvents | where RemoteUrl has "smartscreen""#)
            .rows
            .len(),
        0,
        "not a whole term"
    );
    assert_eq!(
        q(r#"DeviceNetworkEvents | where RemoteUrl contains "smartscreen""#)
            .rows
            .len(),
        1
    );
    assert_eq!(
        q(r#"DeviceNetworkEvents | where InitiatingProcessFileName !has "msedge""#)
            .rows
            .len(),
        1
    );
    assert_eq!(
        q(r#"DeviceNetworkEvents | where RemoteUrl !contains "example""#)
            .rows
            .len(),
        4
    );
}

#[test]
fn project_take_limit_count_and_summarize() {
    let p = q("DeviceNetworkEvents | project DeviceId, RemoteUrl | take 2");
    assert_eq!(p.columns, vec!["DeviceId", "RemoteUrl"]);
    assert_eq!(
        p.rows,
        vec![
            vec![json!("dev-a"), json!("")],
            vec![json!("dev-a"), json!("")]
        ]
    );
    assert_eq!(q("DeviceNetworkEvents | limit 4").rows.len(), 4);
    assert_eq!(q("DeviceNetworkEvents | count").rows, vec![vec![json!(5)]]);
    let s = q("DeviceNetworkEvents | summarize count() by DeviceId, ActionType");
    assert_eq!(s.columns, vec!["DeviceId", "ActionType", "count_"]);
    assert_eq!(
        s.rows[0],
        vec![json!("dev-a"), json!("ConnectionSuccess"), json!(3)]
    );
    assert_eq!(s.rows.len(), 3);
    assert_eq!(
        q("DeviceNetworkEvents | summarize count()").rows,
        vec![vec![json!(5)]]
    );
    // Stages see the previous stage's columns.
    let e = err("DeviceNetworkEvents | project DeviceId | where RemoteIP == 'x'");
    assert!(
        e.message.contains("unknown column \"RemoteIP\"")
            && e.message.contains("columns here: DeviceId"),
        "{e}"
    );
}

#[test]
fn unsupported_or_malformed_queries_get_precise_errors() {
    let cases = [
        (
            "DeviceNetworkEvents | extend x = 1",
            "unsupported operator \"extend\"",
            22,
        ),
        (
            "DeviceProcessEvents | take 1",
            "unknown table \"DeviceProcessEvents\"",
            0,
        ),
        (
            "DeviceNetworkEvents | where RemoteIP startswith '10.'",
            "unsupported comparison \"startswith\"",
            37,
        ),
        (
            "DeviceNetworkEvents | where RemoteIP = '10.0.0.5'",
            "'=' is assignment in KQL",
            37,
        ),
        (
            "DeviceNetworkEvents | summarize dcount(RemoteIP) by DeviceId",
            "unsupported aggregation \"dcount\"",
            32,
        ),
        (
            "DeviceNetworkEvents | where RemotePort == 443 and",
            "expected a column name, found the end of the query",
            49,
        ),
        (
            "DeviceNetworkEvents | take ten",
            "take takes a whole number of rows",
            22,
        ),
        (
            "DeviceNetworkEvents | where RemoteUrl has \"unterminated",
            "unterminated string literal",
            42,
        ),
        (
            "DeviceNetworkEvents | where Timestamp > ago(1h)",
            "unsupported comparison '>'",
            38,
        ),
        (
            "DeviceNetworkEvents take 10",
            "expected '|' before the next operator",
            20,
        ),
        ("", "empty query", 0),
        (
            "DeviceNetworkEvents | where remoteip == 'x'",
            "unknown column \"remoteip\"",
            28,
        ),
        (
            "DeviceNetworkEvents | where RemoteIP == tolower('X')",
            "unsupported function tolower()",
            37,
        ),
    ];
    for (query, message, position) in cases {
        let e = err(query);
        assert!(e.message.contains(message), "{query}: {e}");
        assert_eq!(e.position, position, "{query}: {e}");
    }
}

#[test]
fn deep_nesting_long_chains_and_huge_queries_are_refused_with_a_position() {
    let deep = format!(
        "DeviceNetworkEvents | where {}RemotePort == 443{}",
        "(".repeat(5_000),
        ")".repeat(5_000)
    );
    let err = kql::parse(&deep).unwrap_err();
    assert!(err.message.contains("nested deeper"), "{err:?}");
    assert_eq!(
        err.position,
        "DeviceNetworkEvents | where ".len() + kql::MAX_NESTING
    );

    let chain = (0..20_000)
        .map(|i| format!("RemotePort == {i}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let err = kql::parse(&format!("DeviceNetworkEvents | where {chain}")).unwrap_err();
    assert!(
        err.message.contains("bytes") || err.message.contains("comparisons"),
        "{err:?}"
    );
    let chain = (0..300)
        .map(|i| format!("RemotePort == {i}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let err = kql::parse(&format!("DeviceNetworkEvents | where {chain}")).unwrap_err();
    assert!(err.message.contains("comparisons"), "{err:?}");
    // Within the bounds, nesting and chains still work.
    let ok = format!(
        "DeviceNetworkEvents | where {}RemotePort == 443{}",
        "(".repeat(kql::MAX_NESTING),
        ")".repeat(kql::MAX_NESTING)
    );
    assert!(kql::parse(&ok).is_ok());
}

#[test]
fn has_works_on_characters_not_bytes() {
    // `where RemoteUrl has "é"` over `café` once sliced inside `é` and panicked.
    assert!(has_term("https://café.example/x", "café"));
    assert!(!has_term("café", "é"));
    assert!(has_term("a é b", "é"));
    assert!(!has_term("éé", "é"));
    assert!(has_term("Straße-Süd", "süd"));
}
