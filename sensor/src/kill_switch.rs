//! The 1DS kill switch and retry headers, as Microsoft's 1DS SDKs implement them: what the
//! collector's answer tells a device to stop sending, and for how long. Every rule names the
//! SDK file it comes from: the C++ SDK (microsoft/cpp_client_telemetry, the native stack a
//! Windows sensor uses) and the JavaScript SDK (npm `@microsoft/1ds-post-js` 4.4.4).
//!
//! - **Every answer counts**, whatever its status: the C++ SDK handles the headers both when
//!   it deletes sent records (200 and final statuses) and when it releases them for a retry
//!   (`lib/offline/OfflineStorageHandler.cpp`, `DeleteRecords` and `ReleaseRecords`); the JS
//!   SDK in `_retryRequestIfNeeded` for any status (`HttpManager.js`).
//! - **`kill-tokens`** names tenant tokens, comma-separated (`KillSwitch.js` splits on `,` and
//!   trims); a token's `:suffix` such as `:all` is cut off (`lib/offline/KillSwitchManager.hpp`:
//!   "Strip suffix and assume ':all' events of that tenant are killed"). A token matches the
//!   batch's tenant token exactly (`HttpManager.js`: `theBatch.iKey() === killToken`;
//!   `KillSwitchManager::isTokenBlocked` looks the whole token up).
//! - **`kill-duration`** is seconds; the JS SDK also reads the legacy `kill-duration-seconds`
//!   (`HttpManager.js`: `headers["kill-duration"] || headers["kill-duration-seconds"]`). A
//!   positive duration kills the tenant until it expires: its queued events are deleted
//!   (`OfflineStorageHandler::DeleteRecordsByKeys`) and new ones are dropped while it lasts
//!   (`isTokenBlocked` when storing; JS `isTenantKilled` before sending).
//! - **`this-request-only`** (JS `KillSwitch.js`) drops the answered batch's events of the named
//!   tenants and kills nothing for later.
//! - **`Retry-After`** (seconds, positive) blocks every tenant until it passes
//!   (`KillSwitchManager::handleResponse` / `isTokenBlocked`). (The JS SDK ignores it and
//!   backs off by its own `RetryPolicy.js`; the sensor follows the native stack.)
//! - **`time-delta-millis`** is the collector's clock skew: the C++ SDK sends
//!   `time-delta-to-apply-millis: use-collector-delta` on its first upload, then echoes the
//!   delta the collector gave (`lib/system/ClockSkewDelta.h`).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// The collector's header naming killed tenant tokens.
pub const KILL_TOKENS_HEADER: &str = "kill-tokens";
/// How long they are killed: seconds or `this-request-only`.
pub const KILL_DURATION_HEADER: &str = "kill-duration";
/// The legacy spelling of [`KILL_DURATION_HEADER`] the JS SDK still reads.
pub const KILL_DURATION_SECONDS_HEADER: &str = "kill-duration-seconds";
/// The collector's clock skew, milliseconds.
pub const TIME_DELTA_HEADER: &str = "time-delta-millis";
/// The skew a device asks the collector to apply (or `use-collector-delta`).
pub const TIME_DELTA_TO_APPLY_HEADER: &str = "time-delta-to-apply-millis";
/// What a device sends in [`TIME_DELTA_TO_APPLY_HEADER`] before the collector gave a delta.
pub const USE_COLLECTOR_DELTA: &str = "use-collector-delta";

/// What one answer said about a tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directive {
    /// The answered batch's events must be dropped (killed now, or `this-request-only`).
    pub drop_batch: bool,
    /// The tenant is killed (all its queued events must be dropped) until then.
    pub killed_until: Option<Instant>,
    /// Nothing may be sent, for any tenant, until then (`Retry-After`).
    pub blocked_until: Option<Instant>,
}

/// The state a device keeps from the collector's answers.
#[derive(Debug, Default)]
pub struct KillSwitch {
    killed: BTreeMap<String, Instant>,
    retry_after: Option<Instant>,
    time_delta: Option<String>,
    asked_for_delta: bool,
}

impl KillSwitch {
    /// A fresh switch: nothing killed, no delta asked for yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one answer (any status) for a batch of `tenant_token`'s events, at `now`.
    pub fn handle(
        &mut self,
        headers: &http::HeaderMap,
        tenant_token: &str,
        now: Instant,
    ) -> Directive {
        let mut directive = Directive::default();
        if let Some(secs) = seconds(headers, http::header::RETRY_AFTER.as_str()) {
            let until = now + secs;
            self.retry_after = Some(self.retry_after.map_or(until, |t| t.max(until)));
        }
        if let Some(delta) = header(headers, TIME_DELTA_HEADER) {
            self.time_delta = Some(delta.trim().to_owned());
        }
        let named = headers
            .get_all(KILL_TOKENS_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.split(':').next().unwrap_or_default().trim())
            .any(|t| !t.is_empty() && t == tenant_token);
        if named {
            let duration = header(headers, KILL_DURATION_HEADER)
                .or_else(|| header(headers, KILL_DURATION_SECONDS_HEADER));
            match duration.map(str::trim) {
                Some("this-request-only") => directive.drop_batch = true,
                Some(text) => {
                    if let Some(secs) = text.parse::<u64>().ok().filter(|s| *s > 0) {
                        let until = now + Duration::from_secs(secs);
                        self.killed.insert(tenant_token.to_owned(), until);
                        directive.drop_batch = true;
                    }
                }
                // No duration: the C++ SDK ignores the kill (`timeinSecs > 0` required).
                None => {}
            }
        }
        directive.killed_until = self.killed_until(tenant_token, now);
        directive.blocked_until = self.blocked_until(now);
        directive
    }

    /// Until when `tenant_token` is killed, if it is at `now` (an expired kill is forgotten).
    pub fn killed_until(&mut self, tenant_token: &str, now: Instant) -> Option<Instant> {
        match self.killed.get(tenant_token) {
            Some(until) if *until > now => Some(*until),
            Some(_) => {
                self.killed.remove(tenant_token);
                None
            }
            None => None,
        }
    }

    /// Until when nothing may be sent (`Retry-After`), if that is still ahead of `now`.
    pub fn blocked_until(&mut self, now: Instant) -> Option<Instant> {
        match self.retry_after {
            Some(until) if until > now => Some(until),
            Some(_) => {
                self.retry_after = None;
                None
            }
            None => None,
        }
    }

    /// The value of [`TIME_DELTA_TO_APPLY_HEADER`] for the next upload: `use-collector-delta`
    /// the first time, then the delta the collector gave, if any (`ClockSkewDelta::GetDelta`).
    pub fn delta_to_apply(&mut self) -> Option<String> {
        if !self.asked_for_delta {
            self.asked_for_delta = true;
            return Some(USE_COLLECTOR_DELTA.to_owned());
        }
        self.time_delta.clone().filter(|d| !d.is_empty())
    }
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A positive whole number of seconds (the C++ SDK's `tryParseSeconds`: delay-seconds only).
fn seconds(headers: &http::HeaderMap, name: &str) -> Option<Duration> {
    header(headers, name)?
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "org1-mdelab";

    fn answer(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_kill_with_a_duration_drops_the_batch_and_lasts_until_it_expires() {
        // KillSwitchManager.hpp: kill-tokens + kill-duration > 0 → addToken; isTokenBlocked.
        let now = Instant::now();
        let mut ks = KillSwitch::new();
        let d = ks.handle(
            &answer(&[
                ("kill-tokens", "other-x, org1-mdelab"),
                ("kill-duration", "30"),
            ]),
            TOKEN,
            now,
        );
        assert!(d.drop_batch);
        assert_eq!(d.killed_until, Some(now + Duration::from_secs(30)));
        assert!(
            ks.killed_until(TOKEN, now + Duration::from_secs(29))
                .is_some()
        );
        assert!(
            ks.killed_until(TOKEN, now + Duration::from_secs(30))
                .is_none()
        );
    }

    #[test]
    fn the_all_suffix_is_cut_and_matching_is_exact() {
        // KillSwitchManager.hpp strips ':all'; HttpManager.js compares iKey === killToken.
        let now = Instant::now();
        let mut ks = KillSwitch::new();
        let kill = |t: &str| answer(&[("kill-tokens", t), ("kill-duration", "60")]);
        assert!(ks.handle(&kill("org1-mdelab:all"), TOKEN, now).drop_batch);
        let mut ks = KillSwitch::new();
        assert!(
            !ks.handle(&kill("org1"), TOKEN, now).drop_batch,
            "a tenant id is not a token"
        );
        assert!(!ks.handle(&kill("org1-mdelab-x"), TOKEN, now).drop_batch);
        // Several kill-tokens headers (the C++ SDK reads every one).
        let mut h = answer(&[("kill-tokens", "a-b"), ("kill-duration", "60")]);
        h.append("kill-tokens", "org1-mdelab".parse().unwrap());
        assert!(ks.handle(&h, TOKEN, now).drop_batch);
    }

    #[test]
    fn this_request_only_drops_the_batch_and_kills_nothing_later() {
        // KillSwitch.js: "this-request-only" returns the tokens and records no expiry.
        let now = Instant::now();
        let mut ks = KillSwitch::new();
        let d = ks.handle(
            &answer(&[
                ("kill-tokens", TOKEN),
                ("kill-duration", "this-request-only"),
            ]),
            TOKEN,
            now,
        );
        assert!(d.drop_batch);
        assert_eq!(d.killed_until, None);
    }

    #[test]
    fn the_legacy_duration_header_is_read_and_a_missing_duration_kills_nothing() {
        // HttpManager.js: headers["kill-duration"] || headers["kill-duration-seconds"].
        let now = Instant::now();
        let mut ks = KillSwitch::new();
        let d = ks.handle(
            &answer(&[("kill-tokens", TOKEN), ("kill-duration-seconds", "5")]),
            TOKEN,
            now,
        );
        assert_eq!(d.killed_until, Some(now + Duration::from_secs(5)));
        let mut ks = KillSwitch::new();
        let d = ks.handle(&answer(&[("kill-tokens", TOKEN)]), TOKEN, now);
        assert_eq!(d, Directive::default());
    }

    #[test]
    fn retry_after_blocks_every_tenant_until_it_passes() {
        // KillSwitchManager.hpp: Retry-After > 0 → isTokenBlocked is true for all tokens.
        let now = Instant::now();
        let mut ks = KillSwitch::new();
        let d = ks.handle(&answer(&[("retry-after", "7")]), TOKEN, now);
        assert_eq!(d.blocked_until, Some(now + Duration::from_secs(7)));
        assert!(!d.drop_batch);
        assert!(ks.blocked_until(now + Duration::from_secs(8)).is_none());
        // An HTTP-date or 0 is not a delay the SDK acts on.
        let mut ks = KillSwitch::new();
        assert_eq!(
            ks.handle(&answer(&[("retry-after", "0")]), TOKEN, now)
                .blocked_until,
            None
        );
    }

    #[test]
    fn the_collector_delta_is_asked_for_then_echoed() {
        // ClockSkewDelta.h: first "use-collector-delta", then the delta the collector gave.
        let now = Instant::now();
        let mut ks = KillSwitch::new();
        assert_eq!(ks.delta_to_apply().as_deref(), Some(USE_COLLECTOR_DELTA));
        assert_eq!(ks.delta_to_apply(), None);
        ks.handle(&answer(&[("time-delta-millis", "-1500")]), TOKEN, now);
        assert_eq!(ks.delta_to_apply().as_deref(), Some("-1500"));
    }
}
