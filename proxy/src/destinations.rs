//! The destination policy: which `host:port` a client may reach, and where it really goes.
//!
//! The lab resolves catalog names itself (every "cloud" host is a loopback listener), so a proxy
//! is told the socket address behind each name instead of asking DNS. Anything not listed is
//! denied unless the caller explicitly allows unlisted destinations: a lab proxy must never turn
//! into an open relay by accident.

use std::fmt;
use std::net::SocketAddr;

/// A host pattern: an exact host or `*.suffix`, compared case-insensitively.
///
/// `*.example.com` matches `a.example.com` and `a.b.example.com` but not `example.com`, the way
/// a wildcard certificate or a proxy bypass list reads.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// The whole host must be equal.
    Exact(String),
    /// The host must end with `.` + this suffix.
    Suffix(String),
}

impl HostPattern {
    /// Parses `host` or `*.suffix`.
    pub(crate) fn parse(pattern: &str) -> Self {
        let pattern = normalize_host(pattern);
        match pattern.strip_prefix("*.") {
            Some(suffix) => Self::Suffix(suffix.to_owned()),
            None => Self::Exact(pattern),
        }
    }

    /// Whether a normalised host matches.
    pub(crate) fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(exact) => host == exact,
            // One or more whole labels before the suffix: never an empty one
            // (`a..blob.core.windows.net` is not a name).
            Self::Suffix(suffix) => host
                .strip_suffix(suffix.as_str())
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|labels| labels.split('.').all(|l| !l.is_empty())),
        }
    }

    /// How specific the pattern is, so that the most specific of several matches wins.
    fn specificity(&self) -> (bool, usize) {
        match self {
            Self::Exact(host) => (true, host.len()),
            Self::Suffix(suffix) => (false, suffix.len()),
        }
    }
}

impl fmt::Debug for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(host) => write!(f, "{host}"),
            Self::Suffix(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// A set of host patterns (a bypass list), matched case-insensitively.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostSet {
    patterns: Vec<HostPattern>,
}

impl HostSet {
    /// Parses each entry as a [`HostPattern`], skipping blank ones.
    pub(crate) fn new<S: AsRef<str>>(patterns: &[S]) -> Self {
        Self {
            patterns: patterns
                .iter()
                .map(AsRef::as_ref)
                .filter(|p| !p.trim().is_empty())
                .map(HostPattern::parse)
                .collect(),
        }
    }

    /// Whether any pattern matches `host` (normalised here).
    pub(crate) fn matches(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.patterns.iter().any(|p| p.matches(&host))
    }
}

/// Lowercases a host and drops IPv6 brackets and a trailing root dot, so that every spelling of
/// one name compares equal.
pub(crate) fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// Where a requested destination goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Listed: dial this address instead of resolving the name.
    Mapped(SocketAddr),
    /// Not listed, but unlisted destinations are allowed: resolve the name and dial it.
    Resolve,
    /// Not listed: answer 403 and dial nothing.
    Denied,
}

#[derive(Clone, Debug)]
struct Entry {
    pattern: HostPattern,
    port: u16,
    target: SocketAddr,
}

/// The destination table of a proxy: `(host pattern, port) → socket address`, plus whether
/// unlisted destinations are resolved (default: denied).
///
/// When several entries match, an exact host beats a wildcard and a longer wildcard suffix beats
/// a shorter one; among equals the first added wins.
#[derive(Clone, Debug, Default)]
pub struct Destinations {
    entries: Vec<Entry>,
    allow_unlisted: bool,
}

impl Destinations {
    /// An empty table that denies everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry (builder style): `pattern` is an exact host or `*.suffix`.
    #[must_use]
    pub fn map(mut self, pattern: &str, port: u16, target: SocketAddr) -> Self {
        self.add(pattern, port, target);
        self
    }

    /// Adds an entry in place: `pattern` is an exact host or `*.suffix`.
    pub fn add(&mut self, pattern: &str, port: u16, target: SocketAddr) -> &mut Self {
        self.entries.push(Entry {
            pattern: HostPattern::parse(pattern),
            port,
            target,
        });
        self
    }

    /// Whether unlisted destinations are resolved with the system resolver and dialled
    /// (default `false`: they are denied with 403). Only ever enable this on purpose.
    #[must_use]
    pub fn allow_unlisted(mut self, allow: bool) -> Self {
        self.allow_unlisted = allow;
        self
    }

    /// Whether unlisted destinations are allowed.
    pub fn allows_unlisted(&self) -> bool {
        self.allow_unlisted
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Decides where `host:port` goes.
    pub fn route(&self, host: &str, port: u16) -> Route {
        let host = normalize_host(host);
        let best = self
            .entries
            .iter()
            .filter(|e| e.port == port && e.pattern.matches(&host))
            // `max_by_key` keeps the last of equals; reversing makes the first added win.
            .rev()
            .max_by_key(|e| e.pattern.specificity());
        match best {
            Some(entry) => Route::Mapped(entry.target),
            None if self.allow_unlisted => Route::Resolve,
            None => Route::Denied,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn exact_and_wildcard_hosts_match_case_insensitively() {
        let d = Destinations::new()
            .map("winatp-gw-cus.microsoft.com", 443, addr(1))
            .map("*.Blob.Core.Windows.NET", 443, addr(2));
        assert_eq!(
            d.route("WINATP-GW-CUS.microsoft.com", 443),
            Route::Mapped(addr(1))
        );
        assert_eq!(
            d.route("winatp-gw-cus.microsoft.com.", 443),
            Route::Mapped(addr(1))
        );
        assert_eq!(
            d.route("x.blob.core.windows.net", 443),
            Route::Mapped(addr(2))
        );
        assert_eq!(
            d.route("a.b.blob.core.windows.net", 443),
            Route::Mapped(addr(2))
        );
        assert_eq!(d.route("blob.core.windows.net", 443), Route::Denied);
        assert_eq!(d.route("xblob.core.windows.net", 443), Route::Denied);
        // An empty label is no name.
        assert_eq!(d.route("a..blob.core.windows.net", 443), Route::Denied);
        assert_eq!(d.route(".blob.core.windows.net", 443), Route::Denied);
        assert_eq!(d.route("winatp-gw-cus.microsoft.com", 80), Route::Denied);
        assert_eq!(d.route("evil.example", 443), Route::Denied);
    }

    #[test]
    fn most_specific_entry_wins() {
        let d = Destinations::new()
            .map("*.microsoft.com", 443, addr(1))
            .map("*.wd.microsoft.com", 443, addr(2))
            .map("x.cp.wd.microsoft.com", 443, addr(3));
        assert_eq!(d.route("a.microsoft.com", 443), Route::Mapped(addr(1)));
        assert_eq!(
            d.route("a.cp.wd.microsoft.com", 443),
            Route::Mapped(addr(2))
        );
        assert_eq!(
            d.route("x.cp.wd.microsoft.com", 443),
            Route::Mapped(addr(3))
        );
    }

    #[test]
    fn first_of_equal_entries_wins() {
        let d = Destinations::new()
            .map("a.example", 443, addr(1))
            .map("A.example", 443, addr(2));
        assert_eq!(d.route("a.example", 443), Route::Mapped(addr(1)));
    }

    #[test]
    fn unlisted_destinations_are_denied_unless_allowed() {
        let mut d = Destinations::new();
        d.add("[::1]", 8443, addr(4));
        assert_eq!(d.route("::1", 8443), Route::Mapped(addr(4)));
        assert_eq!(d.route("example.org", 443), Route::Denied);
        let d = d.allow_unlisted(true);
        assert_eq!(d.route("example.org", 443), Route::Resolve);
        assert!(d.allows_unlisted());
    }

    #[test]
    fn host_sets_match_exact_and_suffix_patterns() {
        let set = HostSet::new(&["Exact.example", "*.suffix.example", "  "]);
        assert!(set.matches("exact.EXAMPLE"));
        assert!(set.matches("a.suffix.example"));
        assert!(!set.matches("suffix.example"));
        assert!(!set.matches("other.example"));
        assert!(!HostSet::default().matches("exact.example"));
    }
}
