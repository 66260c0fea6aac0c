//! Fault injection: per-name misbehaviour switched on and off while the server runs, to test
//! how a client copes with a broken resolver.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::table::{PatternMap, normalize};

/// A way to misbehave for the names a pattern matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer SERVFAIL.
    ServFail,
    /// Answer NXDOMAIN even if the name is in the table.
    NxDomain,
    /// Send nothing at all, so the client times out.
    Drop,
    /// Answer normally, but only after this delay.
    Delay(Duration),
}

/// A cheap, cloneable handle on the running server's faults.
///
/// Patterns follow the [`crate::NameTable`] rules (exact names, `*.suffix` wildcards, exact
/// beats wildcard, longest suffix wins) and are checked before the table and the zones, so a
/// fault also applies to names the server would otherwise refuse.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<PatternMap<Fault>>>,
}

impl Faults {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the names `pattern` matches misbehave as `fault`, replacing any fault previously set
    /// for that same pattern.
    pub fn set(&self, pattern: &str, fault: Fault) {
        self.lock().insert(pattern, fault);
    }

    /// Removes the fault set for `pattern` (the pattern itself, not every pattern matching the
    /// same names), returning it.
    pub fn clear(&self, pattern: &str) -> Option<Fault> {
        self.lock().remove(pattern)
    }

    /// Removes every fault.
    pub fn clear_all(&self) {
        self.lock().clear();
    }

    /// The fault applying to `name`, if any.
    pub fn lookup(&self, name: &str) -> Option<Fault> {
        self.lookup_normalized(&normalize(name))
    }

    pub(crate) fn lookup_normalized(&self, name: &str) -> Option<Fault> {
        self.lock().lookup_normalized(name).copied()
    }

    // Every operation is a single map update, so a poisoned lock still holds a consistent map.
    fn lock(&self) -> MutexGuard<'_, PatternMap<Fault>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_lookup_clear() {
        let faults = Faults::new();
        faults.set("*.example.com", Fault::ServFail);
        faults.set("slow.example.com", Fault::Delay(Duration::from_millis(5)));
        assert_eq!(faults.lookup("a.EXAMPLE.com."), Some(Fault::ServFail));
        assert_eq!(
            faults.lookup("slow.example.com"),
            Some(Fault::Delay(Duration::from_millis(5)))
        );
        assert_eq!(faults.lookup("example.com"), None);
        assert_eq!(faults.clear("*.example.com"), Some(Fault::ServFail));
        assert_eq!(faults.lookup("a.example.com"), None);
        faults.clear_all();
        assert_eq!(faults.lookup("slow.example.com"), None);
    }
}
