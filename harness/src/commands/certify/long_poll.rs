//! The CnC long-poll check: one poll held `--hold` seconds through the proxy, on its own task,
//! must end with the gateway's 204 after the full hold.

use std::time::{Duration, Instant};

use mdelab_sensor::{
    self as sensor, ClientKind, DeviceTrust, Network, Origin, Outcome, Route, Verdict, wire,
};

use super::inspection::is_lab_issuer;
use super::model::{Family, Item, sensor_check};

/// One held CnC poll, owning everything it needs so it can run on its own task.
pub(super) struct LongPoll {
    /// The CnC gateway.
    pub(super) origin: Origin,
    /// The poll's path.
    pub(super) path: String,
    /// The device polling.
    pub(super) device: String,
    /// How long the poll is held.
    pub(super) hold: Duration,
    /// SYSTEM's route through the proxy.
    pub(super) route: Route,
    /// The device's trust.
    pub(super) trust: DeviceTrust,
    /// How the device reaches the lab.
    pub(super) network: Network,
}

impl LongPoll {
    /// Holds the poll and judges how it ended.
    pub(super) async fn run(self) -> Item {
        let hold_secs = self.hold.as_secs();
        let request = wire::cnc_poll(&self.path, self.hold, &self.device)
            // Room beyond the hold for a slow proxy; a proxy that holds longer still fails.
            .timeout(self.hold + Duration::from_secs(10).max(self.hold / 4));
        let target = format!(
            "GET https://{}{}?hold={hold_secs}",
            self.origin.host, self.path
        );
        let started = Instant::now();
        let result = sensor::send(
            &self.origin,
            ClientKind::Sensor,
            &self.route,
            &self.trust,
            &self.network,
            &request,
        )
        .await;
        let elapsed = started.elapsed();
        let secs = elapsed.as_secs_f64();
        // The cloud answers 204 exactly when the hold ends; allow for timer granularity.
        let held_fully = elapsed + Duration::from_millis(100) >= self.hold;
        let mut reason = None;
        let observed = match result {
            Ok(response) if response.status == 204 && held_fully => Outcome::new(
                Verdict::Connected { status: 204 },
                format!(
                    "204 No Content after the full {hold_secs} s hold: the proxy kept the idle tunnel open"
                ),
                response.served_issuer,
            ),
            Ok(response) if response.status == 204 => {
                reason = Some(format!(
                    "the lab answered the CnC poll after {secs:.0} s, before the {hold_secs} s asked: its hold cap is lower (a lab setting, not the proxy: start it with `mdelab up --cnc-max-hold {hold_secs}`)"
                ));
                Outcome::new(
                    Verdict::Other {
                        detail: "the lab's hold cap is below --hold".into(),
                    },
                    format!(
                        "204 after only {secs:.1} s of the {hold_secs} s asked: the lab caps CnC holds lower (mdelab up --cnc-max-hold)"
                    ),
                    response.served_issuer,
                )
            }
            Ok(response) => Outcome::new(
                Verdict::Connected {
                    status: response.status,
                },
                format!("the gateway answered {} after {secs:.1} s", response.status),
                response.served_issuer,
            ),
            Err(outcome) => {
                // Past the TLS handshake (the lab's chain was served), a broken exchange is the
                // proxy cutting the held tunnel.
                let after_handshake = outcome.served_issuer.as_deref().is_some_and(is_lab_issuer);
                if !after_handshake {
                    // Refused before the poll began (407, inspection…): nothing was held.
                    return self.item(target, outcome, None);
                }
                if matches!(outcome.verdict, Verdict::Other { .. } | Verdict::Timeout) {
                    reason = Some(format!(
                        "the proxy cut the CnC long poll to {} after {secs:.0} s of a {hold_secs} s hold",
                        self.origin.host
                    ));
                }
                let evidence = format!(
                    "after {secs:.1} s of a {hold_secs} s hold: {}",
                    outcome.evidence
                );
                Outcome {
                    evidence,
                    ..outcome
                }
            }
        };
        self.item(target, observed, reason)
    }

    /// The long-poll item of this poll.
    fn item(&self, target: String, observed: Outcome, reason: Option<String>) -> Item {
        Item {
            family: Family::LongPoll,
            host: self.origin.host.clone(),
            pinned: self.origin.pinned,
            check: sensor_check(
                target,
                "CONNECT",
                Verdict::Connected { status: 204 },
                observed,
            ),
            reason,
        }
    }
}
