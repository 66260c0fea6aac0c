//! The name table the server answers from, and the name patterns shared with [`crate::fault`].
//!
//! A pattern is either an exact name (`login.microsoftonline.com`) or a wildcard `*.suffix`
//! (`*.blob.core.windows.net`). Matching is case-insensitive and ignores a trailing dot, because
//! DNS names are case-insensitive and callers mix `name` and `name.` freely.

use std::collections::HashMap;
use std::net::IpAddr;

/// Lowercases a name or pattern and strips trailing dots, the one spelling used for matching.
pub(crate) fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `name` is `zone` itself or lies below it (both normalized). The empty zone is the
/// root, which contains every name.
pub(crate) fn is_in_zone(name: &str, zone: &str) -> bool {
    zone.is_empty() || name == zone || is_strictly_below(name, zone)
}

/// Whether `name` lies strictly below `ancestor` (both normalized, `ancestor` not empty).
fn is_strictly_below(name: &str, ancestor: &str) -> bool {
    name.len() > ancestor.len()
        && name.ends_with(ancestor)
        && name.as_bytes()[name.len() - ancestor.len() - 1] == b'.'
}

/// A parsed pattern: only a leading `*.` label makes a wildcard, as in DNS zone files.
enum Pattern {
    Exact(String),
    Wildcard(String),
}

impl Pattern {
    fn parse(pattern: &str) -> Self {
        let pattern = normalize(pattern);
        match pattern.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() => Self::Wildcard(suffix.to_owned()),
            _ => Self::Exact(pattern),
        }
    }
}

/// A map from name patterns to values, with the table's matching rules: exact beats wildcard,
/// and the longest wildcard suffix wins.
#[derive(Debug, Clone)]
pub(crate) struct PatternMap<V> {
    exact: HashMap<String, V>,
    /// Keyed by the suffix after `*.`.
    wildcard: HashMap<String, V>,
}

// Not derived: the derive would needlessly require `V: Default`.
impl<V> Default for PatternMap<V> {
    fn default() -> Self {
        Self {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        }
    }
}

impl<V> PatternMap<V> {
    /// Sets the value of `pattern`, returning the one it replaces.
    pub(crate) fn insert(&mut self, pattern: &str, value: V) -> Option<V> {
        match Pattern::parse(pattern) {
            Pattern::Exact(name) => self.exact.insert(name, value),
            Pattern::Wildcard(suffix) => self.wildcard.insert(suffix, value),
        }
    }

    /// Removes `pattern` (the pattern itself, not the names it matches).
    pub(crate) fn remove(&mut self, pattern: &str) -> Option<V> {
        match Pattern::parse(pattern) {
            Pattern::Exact(name) => self.exact.remove(&name),
            Pattern::Wildcard(suffix) => self.wildcard.remove(&suffix),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.exact.clear();
        self.wildcard.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.exact.len() + self.wildcard.len()
    }

    /// The value for `name`, which must already be normalized.
    pub(crate) fn lookup_normalized(&self, name: &str) -> Option<&V> {
        if let Some(value) = self.exact.get(name) {
            return Some(value);
        }
        // Walking the dots left to right tries the longest proper suffix first, so the most
        // specific wildcard wins; the name itself is never tried, so `*.x` does not match `x`.
        name.match_indices('.')
            .find_map(|(dot, _)| self.wildcard.get(&name[dot + 1..]))
    }

    /// Whether some pattern's owner name lies strictly below `name` (normalized), which makes
    /// `name` an empty non-terminal: it exists in the DNS tree even without records of its own.
    pub(crate) fn has_descendant(&self, name: &str) -> bool {
        if name.is_empty() {
            return self.len() > 0;
        }
        // A wildcard's owner is `*.suffix`, so `suffix` itself is already an ancestor of it.
        self.exact
            .keys()
            .any(|owner| is_strictly_below(owner, name))
            || self
                .wildcard
                .keys()
                .any(|suffix| suffix == name || is_strictly_below(suffix, name))
    }

    /// Every pattern, spelled normalized (wildcards with their `*.`), with its value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (String, &V)> {
        self.exact
            .iter()
            .map(|(name, value)| (name.clone(), value))
            .chain(
                self.wildcard
                    .iter()
                    .map(|(suffix, value)| (format!("*.{suffix}"), value)),
            )
    }

    /// The name under which each pattern lives: the name itself, or a wildcard's suffix.
    pub(crate) fn base_names(&self) -> impl Iterator<Item = &str> {
        self.exact
            .keys()
            .chain(self.wildcard.keys())
            .map(String::as_str)
    }
}

/// The names the server knows: each exact name or `*.suffix` wildcard maps to its addresses.
///
/// Matching rules: case-insensitive, trailing dot ignored; an exact entry beats any wildcard;
/// among wildcards the longest suffix wins; `*.suffix` matches names below `suffix` at any depth
/// but not `suffix` itself.
#[derive(Debug, Clone, Default)]
pub struct NameTable {
    map: PatternMap<Vec<IpAddr>>,
}

impl NameTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `pattern` (`name` or `*.suffix`) to `addrs`, replacing (not merging) any earlier
    /// entry for the same pattern, which is returned.
    ///
    /// Only a leading `*.` makes a wildcard; a `*` elsewhere is an ordinary character.
    pub fn insert(&mut self, pattern: &str, addrs: Vec<IpAddr>) -> Option<Vec<IpAddr>> {
        self.map.insert(pattern, addrs)
    }

    /// The addresses `name` resolves to, or `None` when no entry matches it.
    pub fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        self.map
            .lookup_normalized(&normalize(name))
            .map(Vec::as_slice)
    }

    /// The number of entries (patterns, not names matched).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Every entry, as its normalized pattern and addresses, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (String, &[IpAddr])> {
        self.map
            .iter()
            .map(|(pattern, addrs)| (pattern, addrs.as_slice()))
    }

    /// The zones [`crate::Config::new`] derives: the last two labels of every entry's name,
    /// with a wildcard's `*` removed, sorted and deduplicated.
    pub fn derived_zones(&self) -> Vec<String> {
        let mut zones: Vec<String> = self
            .map
            .base_names()
            .map(|name| {
                let start = name
                    .rmatch_indices('.')
                    .nth(1)
                    .map_or(0, |(dot, _)| dot + 1);
                name[start..].to_owned()
            })
            .collect();
        zones.sort();
        zones.dedup();
        zones
    }

    pub(crate) fn lookup_normalized(&self, name: &str) -> Option<&[IpAddr]> {
        self.map.lookup_normalized(name).map(Vec::as_slice)
    }

    pub(crate) fn has_descendant(&self, name: &str) -> bool {
        self.map.has_descendant(name)
    }
}

impl<S: AsRef<str>> FromIterator<(S, Vec<IpAddr>)> for NameTable {
    fn from_iter<I: IntoIterator<Item = (S, Vec<IpAddr>)>>(entries: I) -> Self {
        let mut table = Self::new();
        for (pattern, addrs) in entries {
            table.insert(pattern.as_ref(), addrs);
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table() -> NameTable {
        [
            ("exact.microsoft.com", vec![ip("10.0.0.1")]),
            ("*.blob.core.windows.net", vec![ip("10.0.0.2")]),
            ("*.core.windows.net", vec![ip("10.0.0.3")]),
            ("special.blob.core.windows.net.", vec![ip("10.0.0.4")]),
            ("Mixed.Case.COM", vec![ip("::1")]),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn exact_match_is_case_insensitive_and_dot_tolerant() {
        let t = table();
        assert_eq!(t.lookup("exact.microsoft.com"), Some(&[ip("10.0.0.1")][..]));
        assert_eq!(
            t.lookup("EXACT.Microsoft.com."),
            Some(&[ip("10.0.0.1")][..])
        );
        assert_eq!(t.lookup("mixed.case.com"), Some(&[ip("::1")][..]));
        assert_eq!(t.lookup("other.microsoft.com"), None);
        assert_eq!(t.lookup("microsoft.com"), None);
    }

    #[test]
    fn wildcard_matches_any_depth_but_not_its_suffix() {
        let t = table();
        assert_eq!(
            t.lookup("foo.blob.core.windows.net"),
            Some(&[ip("10.0.0.2")][..])
        );
        assert_eq!(
            t.lookup("a.b.blob.core.windows.net"),
            Some(&[ip("10.0.0.2")][..])
        );
        // `blob.core.windows.net` is not matched by `*.blob...`, but it is below `*.core...`.
        assert_eq!(
            t.lookup("blob.core.windows.net"),
            Some(&[ip("10.0.0.3")][..])
        );
        assert_eq!(t.lookup("core.windows.net"), None);
        assert_eq!(
            t.lookup("xblob.core.windows.net"),
            Some(&[ip("10.0.0.3")][..])
        );
    }

    #[test]
    fn exact_beats_wildcard_and_longest_suffix_wins() {
        let t = table();
        assert_eq!(
            t.lookup("Special.Blob.core.windows.net"),
            Some(&[ip("10.0.0.4")][..])
        );
        assert_eq!(
            t.lookup("x.blob.core.windows.net"),
            Some(&[ip("10.0.0.2")][..])
        );
        assert_eq!(
            t.lookup("x.table.core.windows.net"),
            Some(&[ip("10.0.0.3")][..])
        );
    }

    #[test]
    fn insert_replaces_and_star_elsewhere_is_literal() {
        let mut t = NameTable::new();
        assert_eq!(t.insert("a.example.com", vec![ip("1.1.1.1")]), None);
        assert_eq!(
            t.insert("A.example.com.", vec![ip("2.2.2.2")]),
            Some(vec![ip("1.1.1.1")])
        );
        assert_eq!(t.lookup("a.example.com"), Some(&[ip("2.2.2.2")][..]));
        t.insert("a.*.example.com", vec![ip("3.3.3.3")]);
        assert_eq!(t.lookup("a.b.example.com"), None);
        assert_eq!(t.lookup("a.*.example.com"), Some(&[ip("3.3.3.3")][..]));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn descendants_make_empty_non_terminals() {
        let t = table();
        assert!(t.has_descendant("microsoft.com"));
        assert!(t.has_descendant("blob.core.windows.net"));
        assert!(t.has_descendant("windows.net"));
        assert!(!t.has_descendant("exact.microsoft.com"));
        assert!(!t.has_descendant("crosoft.com"));
        assert!(!t.has_descendant("foo.blob.core.windows.net"));
    }

    #[test]
    fn derived_zones_are_the_last_two_labels() {
        let mut t = table();
        t.insert("localhost", vec![ip("127.0.0.1")]);
        assert_eq!(
            t.derived_zones(),
            vec!["case.com", "localhost", "microsoft.com", "windows.net"]
        );
    }

    #[test]
    fn zone_membership_respects_label_boundaries() {
        assert!(is_in_zone("a.microsoft.com", "microsoft.com"));
        assert!(is_in_zone("microsoft.com", "microsoft.com"));
        assert!(!is_in_zone("notmicrosoft.com", "microsoft.com"));
        assert!(is_in_zone("anything.org", ""));
    }
}
