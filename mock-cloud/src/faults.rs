//! Injected faults, per host pattern, service family or path: delays, HTTP statuses,
//! connection resets, truncated responses and 1DS kill-tokens. Probabilities and jitter come
//! from one seeded generator, so a run with the same seed and requests faults the same way.
//!
//! Rules are set through the admin API or loaded from a TOML file at start:
//!
//! ```toml
//! [[fault]]
//! service = "cyber-data"
//! kind = "status"
//! status = 503
//! probability = 0.3
//!
//! [[fault]]
//! host = "*.blob.core.windows.net"
//! kind = "delay"
//! ms = 200
//! jitter_ms = 50
//! times = 10
//! ```

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};

use crate::Error;
use mdelab_catalog::matches_pattern;

/// What a fault does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultAction {
    /// Wait before answering: `ms` plus a uniform random extra of up to `jitter_ms`.
    Delay {
        /// Fixed delay.
        ms: u64,
        /// Random extra, at most.
        #[serde(default)]
        jitter_ms: u64,
    },
    /// Answer this status instead of serving (408, 429, 5xx…); 429 and 503 carry `Retry-After: 1`.
    Status {
        /// The status.
        status: u16,
    },
    /// Close the connection without an answer.
    Reset,
    /// Serve, but cut the connection after this many response-body bytes.
    CloseAfter {
        /// Bytes sent before the cut.
        bytes: u64,
    },
    /// Add 1DS `kill-tokens` / `kill-duration` headers (tell the tenant to stop sending).
    KillTokens {
        /// Comma-separated tenant tokens (a `:all` suffix is allowed, as the C++ SDK expects).
        tokens: String,
        /// Seconds, or `this-request-only`.
        duration: String,
        /// Send the duration as the legacy `kill-duration-seconds` (which the JS SDK still
        /// reads) instead of `kill-duration`.
        #[serde(default)]
        legacy: bool,
    },
    /// Add `Retry-After: <seconds>` to the answer (the C++ SDK then holds every upload that
    /// long; with a `status` rule it replaces the default `1` of 429/503).
    RetryAfter {
        /// Seconds.
        seconds: u64,
    },
    /// Add the collector's clock skew `time-delta-millis: <ms>` (the SDKs echo it back in
    /// `time-delta-to-apply-millis`).
    TimeDelta {
        /// Milliseconds.
        ms: i64,
    },
}

impl FaultAction {
    /// A short description for the journal ("status 503", "delay 200ms"…).
    pub fn describe(&self) -> String {
        match self {
            Self::Delay { ms, jitter_ms: 0 } => format!("delay {ms}ms"),
            Self::Delay { ms, jitter_ms } => format!("delay {ms}ms+{jitter_ms}ms"),
            Self::Status { status } => format!("status {status}"),
            Self::Reset => "reset".into(),
            Self::CloseAfter { bytes } => format!("close after {bytes} bytes"),
            Self::KillTokens { tokens, .. } => format!("kill-tokens {tokens}"),
            Self::RetryAfter { seconds } => format!("retry-after {seconds}s"),
            Self::TimeDelta { ms } => format!("time-delta {ms}ms"),
        }
    }
}

/// One rule: where it applies, what it does, how often.
///
/// (serde cannot refuse unknown fields through `flatten`, so [`FaultRule::parse_json`] and
/// [`Faults::load_toml`] check the field names themselves: a misspelt field is an error, never
/// a silently different rule.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Assigned when the rule is added; ignored on input.
    #[serde(default)]
    pub id: u64,
    /// Exact host or `*.suffix` pattern; `None` = any host.
    #[serde(default)]
    pub host: Option<String>,
    /// Service family name (`cyber-data`, `command-and-control`…); `None` = any.
    #[serde(default)]
    pub service: Option<String>,
    /// Path prefix; `None` = any path.
    #[serde(default)]
    pub path: Option<String>,
    /// What it does.
    #[serde(flatten)]
    pub action: FaultAction,
    /// Chance of firing per matching request, 0 to 1.
    #[serde(default = "always")]
    pub probability: f64,
    /// Fire at most this many times, then expire; `None` = until removed.
    #[serde(default)]
    pub times: Option<u32>,
}

fn always() -> f64 {
    1.0
}

/// Fields every rule may have.
const COMMON_FIELDS: &[&str] = &[
    "id",
    "host",
    "service",
    "path",
    "kind",
    "probability",
    "times",
];

/// Fields each kind adds.
fn kind_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "delay" => &["ms", "jitter_ms"],
        "status" => &["status"],
        "reset" => &[],
        "close_after" => &["bytes"],
        "kill_tokens" => &["tokens", "duration", "legacy"],
        "retry_after" => &["seconds"],
        "time_delta" => &["ms"],
        _ => return None,
    })
}

/// Refuses field names that no rule of this kind has.
fn check_fields<'a>(kind: &str, mut keys: impl Iterator<Item = &'a str>) -> Result<(), Error> {
    let extra = kind_fields(kind).ok_or_else(|| Error::Faults {
        detail: format!(
            "unknown fault kind {kind:?} (expected delay, status, reset, close_after, kill_tokens, \
             retry_after or time_delta)"
        ),
    })?;
    match keys.find(|k| !COMMON_FIELDS.contains(k) && !extra.contains(k)) {
        Some(key) => Err(Error::Faults {
            detail: format!("unknown field {key:?} in a {kind} fault"),
        }),
        None => Ok(()),
    }
}

impl FaultRule {
    /// Parses one rule from JSON, refusing unknown fields.
    pub fn parse_json(value: serde_json::Value) -> Result<Self, Error> {
        let object = value.as_object().ok_or_else(|| Error::Faults {
            detail: "a fault rule is a JSON object".into(),
        })?;
        let kind = object
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default();
        check_fields(kind, object.keys().map(String::as_str))?;
        serde_json::from_value(value).map_err(|e| Error::Faults {
            detail: e.to_string(),
        })
    }
}

/// The fault rules and the seeded generator.
#[derive(Debug)]
pub struct Faults {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    rules: Vec<FaultRule>,
    next_id: u64,
    rng: StdRng,
}

/// What to do to one request, decided before it is served.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    /// Total delay.
    pub delay: Duration,
    /// Answer this status instead of serving.
    pub status: Option<u16>,
    /// Close without answering.
    pub reset: bool,
    /// Cut the response body after this many bytes.
    pub close_after: Option<u64>,
    /// 1DS kill headers to add: (tokens, duration, the legacy duration header).
    pub kill_tokens: Option<(String, String, bool)>,
    /// `Retry-After` seconds to add.
    pub retry_after: Option<u64>,
    /// `time-delta-millis` to add.
    pub time_delta_ms: Option<i64>,
    /// What fired, for the journal.
    pub applied: Vec<String>,
}

impl Faults {
    /// No rules yet; randomness from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            inner: Mutex::new(Inner {
                rules: Vec::new(),
                next_id: 1,
                rng: StdRng::seed_from_u64(seed),
            }),
        }
    }

    /// Validates and adds a rule; returns its id.
    pub fn add(&self, mut rule: FaultRule) -> Result<u64, Error> {
        validate(&rule)?;
        let mut inner = self.lock();
        rule.id = inner.next_id;
        inner.next_id += 1;
        let id = rule.id;
        inner.rules.push(rule);
        Ok(id)
    }

    /// Parses a TOML fault file (`[[fault]]` tables) and adds every rule; returns their ids.
    pub fn load_toml(&self, text: &str) -> Result<Vec<u64>, Error> {
        let bad = |detail: String| Error::Faults { detail };
        let table: toml::Table = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if let Some(key) = table.keys().find(|k| *k != "fault") {
            return Err(bad(format!(
                "unknown top-level key {key:?} (rules go in [[fault]] tables)"
            )));
        }
        let items = table
            .get("fault")
            .and_then(toml::Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let mut rules = Vec::new();
        for item in items {
            let fields = item
                .as_table()
                .ok_or_else(|| bad("each [[fault]] must be a table".into()))?;
            let kind = fields
                .get("kind")
                .and_then(toml::Value::as_str)
                .unwrap_or_default();
            check_fields(kind, fields.keys().map(String::as_str))?;
            let rule: FaultRule = item
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| bad(e.to_string()))?;
            validate(&rule)?;
            rules.push(rule);
        }
        rules.into_iter().map(|rule| self.add(rule)).collect()
    }

    /// Removes a rule; whether it existed.
    pub fn remove(&self, id: u64) -> bool {
        let mut inner = self.lock();
        let before = inner.rules.len();
        inner.rules.retain(|r| r.id != id);
        inner.rules.len() != before
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// The rules in force.
    pub fn list(&self) -> Vec<FaultRule> {
        self.lock().rules.clone()
    }

    /// Decides the faults for one request; rules with `times` count down and expire.
    pub fn decide(&self, host: &str, service: Option<&str>, path: &str) -> Decision {
        let mut decision = Decision::default();
        let mut inner = self.lock();
        let Inner { rules, rng, .. } = &mut *inner;
        for rule in rules.iter_mut() {
            let applies = rule
                .host
                .as_deref()
                .is_none_or(|p| matches_pattern(p, host))
                && rule.service.as_deref().is_none_or(|s| service == Some(s))
                && rule.path.as_deref().is_none_or(|p| path.starts_with(p))
                && rule.times != Some(0);
            if !applies
                || (rule.probability < 1.0 && !rng.gen_bool(rule.probability.clamp(0.0, 1.0)))
            {
                continue;
            }
            if let Some(times) = rule.times.as_mut() {
                *times -= 1;
            }
            decision.applied.push(rule.action.describe());
            match &rule.action {
                FaultAction::Delay { ms, jitter_ms } => {
                    let jitter = if *jitter_ms > 0 {
                        rng.gen_range(0..=*jitter_ms)
                    } else {
                        0
                    };
                    decision.delay += Duration::from_millis(ms + jitter);
                }
                FaultAction::Status { status } => {
                    decision.status = decision.status.or(Some(*status))
                }
                FaultAction::Reset => decision.reset = true,
                FaultAction::CloseAfter { bytes } => decision.close_after = Some(*bytes),
                FaultAction::KillTokens {
                    tokens,
                    duration,
                    legacy,
                } => {
                    decision.kill_tokens = Some((tokens.clone(), duration.clone(), *legacy));
                }
                FaultAction::RetryAfter { seconds } => decision.retry_after = Some(*seconds),
                FaultAction::TimeDelta { ms } => decision.time_delta_ms = Some(*ms),
            }
        }
        rules.retain(|r| r.times != Some(0));
        decision
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn validate(rule: &FaultRule) -> Result<(), Error> {
    let bad = |detail: String| Err(Error::Faults { detail });
    if !(0.0..=1.0).contains(&rule.probability) {
        return bad(format!(
            "probability {} is not between 0 and 1",
            rule.probability
        ));
    }
    if let FaultAction::Status { status } = rule.action
        && !(100..=599).contains(&status)
    {
        return bad(format!("status {status} is not an HTTP status"));
    }
    if let FaultAction::Delay { ms, jitter_ms } = rule.action
        && ms + jitter_ms > 600_000
    {
        return bad("a delay longer than 10 minutes would outlast every client timeout".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(action: FaultAction) -> FaultRule {
        FaultRule {
            id: 0,
            host: None,
            service: None,
            path: None,
            action,
            probability: 1.0,
            times: None,
        }
    }

    #[test]
    fn rules_match_by_host_service_and_path() {
        let faults = Faults::new(1);
        faults
            .add(FaultRule {
                host: Some("*.blob.core.windows.net".into()),
                ..rule(FaultAction::Status { status: 503 })
            })
            .unwrap();
        faults
            .add(FaultRule {
                service: Some("cyber-data".into()),
                ..rule(FaultAction::Reset)
            })
            .unwrap();
        faults
            .add(FaultRule {
                path: Some("/slow".into()),
                ..rule(FaultAction::Delay {
                    ms: 5,
                    jitter_ms: 0,
                })
            })
            .unwrap();
        assert_eq!(
            faults.decide("a.blob.core.windows.net", None, "/").status,
            Some(503)
        );
        assert!(
            faults
                .decide("us-v20.events.data.microsoft.com", Some("cyber-data"), "/x")
                .reset
        );
        assert_eq!(
            faults.decide("h", None, "/slow/x").delay,
            Duration::from_millis(5)
        );
        assert_eq!(faults.decide("h", None, "/fast"), Decision::default());
    }

    #[test]
    fn times_expire_rules_and_probability_is_seeded() {
        let faults = Faults::new(7);
        faults
            .add(FaultRule {
                times: Some(2),
                ..rule(FaultAction::Status { status: 429 })
            })
            .unwrap();
        assert_eq!(faults.decide("h", None, "/").status, Some(429));
        assert_eq!(faults.decide("h", None, "/").status, Some(429));
        assert_eq!(faults.decide("h", None, "/").status, None);
        assert!(faults.list().is_empty());

        let run = |seed| {
            let f = Faults::new(seed);
            f.add(FaultRule {
                probability: 0.5,
                ..rule(FaultAction::Reset)
            })
            .unwrap();
            (0..64)
                .map(|_| f.decide("h", None, "/").reset)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3), "same seed, same faults");
        let fired = run(3).iter().filter(|r| **r).count();
        assert!((10..54).contains(&fired), "about half fire: {fired}");
    }

    #[test]
    fn toml_file_loads_and_bad_rules_are_refused() {
        let faults = Faults::new(1);
        let ids = faults
            .load_toml("[[fault]]\nservice = \"cyber-data\"\nkind = \"status\"\nstatus = 503\n\n[[fault]]\nkind = \"kill_tokens\"\ntokens = \"t1\"\nduration = \"60\"\n")
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert!(faults.load_toml("[[fault]]\nkind = \"explode\"\n").is_err());
        assert!(
            faults
                .load_toml("[[fault]]\nkind = \"status\"\nstatus = 999\n")
                .is_err()
        );
        assert!(
            faults
                .load_toml("[[fault]]\nkind = \"reset\"\nprobability = 2.0\n")
                .is_err()
        );
        assert!(
            faults
                .load_toml("[[fault]]\nkind = \"reset\"\nbogus = 1\n")
                .is_err(),
            "unknown fields are refused"
        );
    }
}
