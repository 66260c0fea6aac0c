//! The one wall clock of the mock cloud: every timestamp it records or compares (journal
//! entries, events, blobs, devices, Live Response sessions, SAS expiry) is read from a
//! [`Clock`] held in the shared state, so a test can fix or step time.
//!
//! Durations that drive behaviour (holds, timeouts) use the Tokio clock instead, which tests
//! pause and advance; this clock only says what time it is.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A wall clock: the system's (the default), or a manual one a test sets and advances.
///
/// Clones share the same time: advancing a manual clock is seen by every holder.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A manual clock standing at `now_ms` milliseconds since the Unix epoch until it is
    /// [`set`](Self::set) or [`advance`](Self::advance)d.
    pub fn manual(now_ms: u64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicU64::new(now_ms))),
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Milliseconds since the Unix epoch (0 if the system clock is before it).
    pub fn now_ms(&self) -> u64 {
        match &self.manual {
            Some(ms) => ms.load(Ordering::Relaxed),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// Whole seconds since the Unix epoch.
    pub fn now_unix(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// Sets a manual clock to `now_ms`; the system clock cannot be set, so this does nothing
    /// there.
    pub fn set(&self, now_ms: u64) {
        if let Some(ms) = &self.manual {
            ms.store(now_ms, Ordering::Relaxed);
        }
    }

    /// Moves a manual clock forward by `by`; does nothing to the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(ms) = &self.manual {
            let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
            ms.fetch_add(by, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_moved_and_clones_share_it() {
        let clock = Clock::manual(1_000);
        let twin = clock.clone();
        assert_eq!((clock.now_ms(), clock.now_unix()), (1_000, 1));
        clock.advance(Duration::from_millis(2_500));
        assert_eq!(twin.now_ms(), 3_500);
        twin.set(10);
        assert_eq!(clock.now_ms(), 10);
        assert!(clock.is_manual());
    }

    #[test]
    fn the_system_clock_is_after_2020_and_ignores_set() {
        let clock = Clock::system();
        clock.set(0);
        clock.advance(Duration::from_secs(1));
        assert!(!clock.is_manual());
        assert!(clock.now_ms() > 1_577_836_800_000, "{}", clock.now_ms());
    }

    #[tokio::test]
    async fn the_cloud_stamps_journal_entries_and_sessions_with_the_injected_clock() {
        use crate::config::ServiceConfig;
        use crate::journal::JournalFilter;
        use crate::routes::testkit::{app_with, send};

        let clock = Clock::manual(1_700_000_000_000);
        let app = app_with(ServiceConfig {
            clock: clock.clone(),
            ..ServiceConfig::default()
        });
        let host = "winatp-gw-cus.microsoft.com";
        send(&app, http::Method::GET, host, "/test", &[], "").await;
        clock.advance(Duration::from_secs(5));
        let session = app.state().live_response().start("dev-1", Vec::new(), None);
        let times: Vec<u64> = app
            .state()
            .journal()
            .entries(&JournalFilter::default())
            .iter()
            .map(|e| e.time_ms)
            .collect();
        assert_eq!(times, [1_700_000_000_000]);
        assert_eq!(session.created_ms, 1_700_000_005_000);
    }
}
