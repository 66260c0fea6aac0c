//! Microsoft's real 1DS JavaScript SDK (npm `@microsoft/1ds-core-js` + `@microsoft/1ds-post-js`,
//! pinned in `tests/js/1ds/package.json`, installed by `.ci/run`) uploads to the lab through the
//! lab's CONNECT proxy, trusting only the lab bundle: the collector's answers, the events it
//! stored, the SDK's kill switch and its retry after a 503, each as the SDK itself reports them.

use std::path::PathBuf;
use std::process::Command;

use mdelab::Lab;
use mdelab_mock_cloud::faults::FaultAction;
use mdelab_mock_cloud::store::events::EventFilter;
use serde_json::Value;

/// The collector the SDK posts to (US cyber data, standard model).
const COLLECTOR: &str = "https://us-v20.events.data.microsoft.com/OneCollector/1.0/";

/// `EventsDiscardedReason.KillSwitch` of `@microsoft/1ds-core-js`: the SDK's reason for events
/// it dropped because the collector killed their tenant.
const DISCARDED_BY_KILL_SWITCH: u64 = 4;

/// The SDK's smallest back-off before its first retry: `BaseBackoff` 3000 ms ×
/// `RandomizationLowerThreshold` 0.8 (`RetryPolicy.js` of `@microsoft/1ds-post-js` 4.4.4).
const MIN_FIRST_RETRY_MS: u64 = 2_400;

fn driver_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js/1ds");
    assert!(
        dir.join("node_modules/@microsoft/1ds-post-js").exists(),
        "the 1DS JS SDK is not installed: run `npm ci --prefix tests/js/1ds` (.ci/run does)"
    );
    dir
}

/// What the SDK did: every request with its answer, and its own notifications.
#[derive(Debug, Default)]
struct SdkRun {
    posts: Vec<Value>,
    sent: u64,
    discarded: Vec<(u64, u64)>,
    posts_after_kill: Option<u64>,
    done: Value,
}

/// Runs one scenario of `drive.cjs` against `lab` with tenant token `tenant`.
async fn drive(lab: &Lab, scenario: &str, tenant: &str) -> SdkRun {
    let dir = driver_dir();
    let mut cmd = mdelab_tests::tool("node", "nodejs");
    cmd.current_dir(&dir)
        .arg("drive.cjs")
        .arg(scenario)
        .env("MDELAB_PROXY", lab.connect_proxy().addr.to_string())
        .env("MDELAB_CA", lab.manifest().trust_bundle)
        .env("MDELAB_COLLECTOR", COLLECTOR)
        .env("MDELAB_TENANT", tenant)
        .env("MDELAB_DEADLINE_MS", "30000");
    let output = tokio::task::spawn_blocking(move || run(cmd))
        .await
        .expect("node ran");
    let mut run = SdkRun::default();
    for line in output.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("the driver printed {line:?}: {e}"));
        if let Some(post) = v.get("post") {
            run.posts.push(post.clone());
        } else if let Some(n) = v.get("sent").and_then(Value::as_u64) {
            run.sent += n;
        } else if let Some(n) = v.get("discarded").and_then(Value::as_u64) {
            run.discarded
                .push((n, v["reason"].as_u64().unwrap_or(u64::MAX)));
        } else if let Some(n) = v.get("posts_after_kill").and_then(Value::as_u64) {
            run.posts_after_kill = Some(n);
        } else if let Some(done) = v.get("done") {
            run.done = done.clone();
        }
    }
    assert_eq!(
        run.done["timeout"],
        Value::Bool(false),
        "the SDK did not finish: {output}"
    );
    run
}

fn run(mut cmd: Command) -> String {
    let out = cmd.output().expect("node starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "drive.cjs failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn stored(lab: &Lab, tenant_id: &str) -> Vec<Value> {
    let filter = EventFilter {
        tenant: Some(tenant_id.into()),
        name: Some("Mdelab.JsSdk".into()),
        ..EventFilter::default()
    };
    lab.cloud()
        .events()
        .query(&filter)
        .into_iter()
        .map(|e| e.event.clone())
        .collect()
}

fn collector_rule(action: FaultAction) -> mdelab_mock_cloud::faults::FaultRule {
    mdelab_tests::fault_rule("cyber-data", "/OneCollector", action, 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_js_sdk_uploads_through_the_connect_proxy_and_the_lab_stores_every_event() {
    let lab = mdelab_tests::start_lab().await;
    let tenant = "1d5a11a0000000000000000000000001-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee-0001";
    let run = drive(&lab, "upload", tenant).await;

    assert_eq!(run.sent, 50, "{run:?}");
    assert!(run.discarded.is_empty(), "{run:?}");
    let first = &run.posts[0];
    assert_eq!(first["status"], 200);
    let answer: Value = serde_json::from_str(first["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer, serde_json::json!({"acc": 50, "rej": 0}));
    // What the SDK itself sent (its own header names), as the collector read it.
    let headers = &first["request_headers"];
    assert_eq!(headers["apikey"], tenant);
    assert_eq!(headers["Client-Id"], "NO_AUTH");
    assert!(
        headers["upload-time"]
            .as_str()
            .is_some_and(|t| t.parse::<u64>().is_ok())
    );

    let events = stored(&lab, "1d5a11a0000000000000000000000001");
    assert_eq!(events.len(), 50);
    let mut indexes: Vec<u64> = events
        .iter()
        .map(|e| {
            e["data"]["index"]
                .as_u64()
                .expect("the SDK's data survives")
        })
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..50).collect::<Vec<_>>());
    assert!(events.iter().all(|e| e["data"]["scenario"] == "upload"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_token_answer_makes_the_js_sdk_drop_that_tenant() {
    let lab = mdelab_tests::start_lab().await;
    let tenant = "1d5a11a0000000000000000000000002-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee-0002";
    lab.cloud()
        .faults()
        .add(collector_rule(FaultAction::KillTokens {
            tokens: tenant.into(),
            duration: "60".into(),
            legacy: false,
        }))
        .expect("rule accepted");
    let run = drive(&lab, "kill", tenant).await;

    assert_eq!(run.posts.len(), 1, "{run:?}");
    assert_eq!(run.posts[0]["kill_tokens"], tenant);
    assert_eq!(run.posts[0]["kill_duration"], "60");
    // The answered batch was accepted; every later event was dropped before sending.
    assert_eq!(run.sent, 10);
    assert_eq!(run.discarded, vec![(5, DISCARDED_BY_KILL_SWITCH)]);
    assert_eq!(run.posts_after_kill, Some(0));
    assert_eq!(stored(&lab, "1d5a11a0000000000000000000000002").len(), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_for_this_request_only_drops_the_answered_batch_and_nothing_after() {
    let lab = mdelab_tests::start_lab().await;
    let tenant = "1d5a11a0000000000000000000000003-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee-0003";
    lab.cloud()
        .faults()
        .add(collector_rule(FaultAction::KillTokens {
            tokens: tenant.into(),
            duration: "this-request-only".into(),
            legacy: false,
        }))
        .expect("rule accepted");
    let run = drive(&lab, "kill-this-request", tenant).await;

    assert_eq!(run.discarded, vec![(10, DISCARDED_BY_KILL_SWITCH)]);
    assert_eq!(run.sent, 5);
    assert_eq!(run.posts.len(), 2, "{run:?}");
    assert_eq!(run.posts[1]["kill_tokens"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_js_sdk_backs_off_after_a_503_and_delivers_on_retry() {
    let lab = mdelab_tests::start_lab().await;
    let tenant = "1d5a11a0000000000000000000000004-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee-0004";
    lab.cloud()
        .faults()
        .add(collector_rule(FaultAction::Status { status: 503 }))
        .expect("rule accepted");
    let run = drive(&lab, "retry", tenant).await;

    assert_eq!(run.posts.len(), 2, "{run:?}");
    assert_eq!(run.posts[0]["status"], 503);
    assert_eq!(run.posts[0]["retry_after"], "1");
    assert_eq!(run.posts[1]["status"], 200);
    let gap = run.posts[1]["at_ms"].as_u64().unwrap() - run.posts[0]["at_ms"].as_u64().unwrap();
    assert!(
        gap >= MIN_FIRST_RETRY_MS,
        "the SDK retried after {gap} ms, sooner than its own policy allows"
    );
    assert_eq!(run.sent, 5);
    assert_eq!(stored(&lab, "1d5a11a0000000000000000000000004").len(), 5);
}
