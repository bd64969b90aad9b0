//! One finding per key: a row whose key its rule already reported is no second finding but
//! a repeat, counted on the rule, so that a run, its diff and its baseline agree.

use std::collections::{HashMap, HashSet};

use crate::fingerprint::Fingerprint;

/// The fingerprints each running rule reported so far (8 bytes a finding, freed when the
/// rule finishes) and how many rows repeated one.
#[derive(Debug, Default)]
pub struct Distinct {
    rules: HashMap<String, (HashSet<Fingerprint>, u64)>,
}

impl Distinct {
    /// Whether the finding of `rule` with `fingerprint` is the first with its key; when it
    /// is not, it is counted as a repeat.
    pub fn first(&mut self, rule: &str, fingerprint: Fingerprint) -> bool {
        if !self.rules.contains_key(rule) {
            self.rules.insert(rule.to_owned(), Default::default());
        }
        let (seen, repeats) = self.rules.get_mut(rule).expect("inserted above");
        let first = seen.insert(fingerprint);
        if !first {
            *repeats += 1;
        }
        first
    }

    /// Ends `rule`: forgets its keys and returns how many of its rows repeated a key.
    pub fn finish(&mut self, rule: &str) -> u64 {
        self.rules.remove(rule).map_or(0, |(_, repeats)| repeats)
    }
}

#[cfg(test)]
mod tests {
    use super::{Distinct, Fingerprint};

    #[test]
    fn a_repeated_key_is_counted_once_per_rule() {
        let mut distinct = Distinct::default();
        let one = Fingerprint::from_stored(1);
        assert!(distinct.first("a", one));
        assert!(!distinct.first("a", one));
        assert!(!distinct.first("a", one));
        assert!(distinct.first("b", one));
        assert_eq!(distinct.finish("a"), 2);
        assert_eq!(distinct.finish("b"), 0);
        assert!(distinct.first("a", one), "a finished rule starts afresh");
    }
}
