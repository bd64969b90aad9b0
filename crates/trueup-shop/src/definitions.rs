//! The definitions the check plugins apply, written out plainly to check the planted truth
//! against: the unit tests run them on the generated rows, the integration tests
//! (`tests/common`, which include this file) on the rows read back from the databases.
//!
//! They are deliberately independent of the generator's own code (`names.rs`, `plan.rs`).

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// Keys that are hashes already are their own hash.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Normalizes a name: lowercase, every character other than an ASCII letter or digit a space,
/// runs of spaces one space, trimmed.
pub fn normalize(name: &str) -> String {
    let spaced: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The Levenshtein distance of two strings, on chars.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut next = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            next[j + 1] = (row[j] + usize::from(ca != cb))
                .min(row[j + 1] + 1)
                .min(next[j] + 1);
        }
        row = next;
    }
    row[b.len()]
}

/// Whether two names are near-duplicates: equal once normalized, or both normalized forms
/// of 8 characters or more at distance ≤ 1, or both of 12 or more at distance ≤ 2.
pub fn near_duplicates(a: &str, b: &str) -> bool {
    let (a, b) = (normalize(a), normalize(b));
    if a == b {
        return true;
    }
    let (la, lb) = (a.chars().count(), b.chars().count());
    if la < 8 || lb < 8 {
        return false;
    }
    let most = if la >= 12 && lb >= 12 { 2 } else { 1 };
    levenshtein(&a, &b) <= most
}

/// The ids of `names` that have a near-duplicate among the others: exact, without comparing
/// every pair. Two strings at edit distance ≤ 2 have a common string left by deleting at most
/// two characters from each, so only names sharing such a deletion (by hash) are compared.
pub fn with_near_duplicates(names: &[(i64, String)]) -> BTreeSet<i64> {
    let mut keyed: Vec<(u64, usize)> = Vec::new();
    for (i, (_, name)) in names.iter().enumerate() {
        for hash in deletion_hashes(&normalize(name)) {
            keyed.push((hash, i));
        }
    }
    keyed.sort_unstable();
    keyed.dedup();
    let mut found = BTreeSet::new();
    for group in keyed.chunk_by(|a, b| a.0 == b.0) {
        for (x, &(_, i)) in group.iter().enumerate() {
            for &(_, j) in &group[x + 1..] {
                let ((a, name_a), (b, name_b)) = (&names[i], &names[j]);
                if !(found.contains(a) && found.contains(b)) && near_duplicates(name_a, name_b) {
                    found.insert(*a);
                    found.insert(*b);
                }
            }
        }
    }
    found
}

/// The pairs (probe, other) of a probe and a name of `names` (another id) that are
/// near-duplicates: each probe against all names, the names streamed once.
pub fn near_duplicates_of(
    probes: &[(i64, String)],
    names: impl Iterator<Item = (i64, String)>,
) -> BTreeSet<(i64, i64)> {
    let mut index: HashMap<u64, Vec<usize>, BuildHasherDefault<Identity>> = HashMap::default();
    for (i, (_, name)) in probes.iter().enumerate() {
        for hash in deletion_hashes(&normalize(name)) {
            index.entry(hash).or_default().push(i);
        }
    }
    let mut found = BTreeSet::new();
    for (id, name) in names {
        let mut candidates: Vec<usize> = deletion_hashes(&normalize(&name))
            .filter_map(|hash| index.get(&hash))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        for i in candidates {
            let (probe, probe_name) = &probes[i];
            if *probe != id && near_duplicates(probe_name, &name) {
                found.insert((*probe, id));
            }
        }
    }
    found
}

/// Hashes of the strings left by deleting up to two characters of `s` (polynomial hashes
/// from prefix hashes: equal strings hash alike, and a collision only adds a comparison).
fn deletion_hashes(s: &str) -> impl Iterator<Item = u64> {
    const BASE: u64 = 0x0100_0000_01b3;
    let chars: Vec<u64> = s.chars().map(|c| u64::from(u32::from(c)) + 1).collect();
    let n = chars.len();
    let mut prefix = vec![0u64; n + 1];
    let mut power = vec![1u64; n + 1];
    for (k, &c) in chars.iter().enumerate() {
        prefix[k + 1] = prefix[k].wrapping_mul(BASE).wrapping_add(c);
        power[k + 1] = power[k].wrapping_mul(BASE);
    }
    // The hash of s[a..b], and of a string of hash `head` followed by one of hash `tail`.
    let part = |a: usize, b: usize| prefix[b].wrapping_sub(prefix[a].wrapping_mul(power[b - a]));
    let join = |head: u64, tail: u64, tail_len: usize| {
        head.wrapping_mul(power[tail_len]).wrapping_add(tail)
    };
    let mut hashes = vec![part(0, n)];
    for i in 0..n {
        let before = part(0, i);
        hashes.push(join(before, part(i + 1, n), n - i - 1));
        for j in i + 1..n {
            let head = join(before, part(i + 1, j), j - i - 1);
            hashes.push(join(head, part(j + 1, n), n - j - 1));
        }
    }
    hashes.into_iter()
}

/// Whether a non-NULL email is malformed.
pub fn email_malformed(email: &str) -> bool {
    if email.len() > 254 {
        return true;
    }
    if email
        .chars()
        .any(|c| c.is_whitespace() || c.is_ascii_control())
    {
        return true;
    }
    let parts: Vec<&str> = email.split('@').collect();
    let [local, domain] = parts.as_slice() else {
        return true;
    };
    let bad_local = local.is_empty()
        || local.len() > 64
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..");
    let bad_domain = domain.is_empty()
        || !domain.contains('.')
        || domain.starts_with(['.', '-'])
        || domain.ends_with(['.', '-'])
        || domain.contains("..")
        || domain
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    bad_local || bad_domain
}

/// Whether `gtin` is a valid GTIN-13: 13 ASCII digits, the last the GS1 check digit of the
/// first 12 (weights 1, 3, 1, 3, … from the left; check = (10 − sum mod 10) mod 10).
pub fn gtin_valid(gtin: &str) -> bool {
    let digits: Vec<u32> = gtin.chars().filter_map(|c| c.to_digit(10)).collect();
    if gtin.len() != 13 || digits.len() != 13 {
        return false;
    }
    let sum: u32 = digits[..12]
        .iter()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { *d } else { 3 * d })
        .sum();
    (10 - sum % 10) % 10 == digits[12]
}

/// The median of sorted values (the mean of the two middle values for an even count).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        f64::midpoint(sorted[n / 2 - 1], sorted[n / 2])
    }
}

/// The ids whose value is a robust outlier: |value − median| > threshold × MAD, MAD =
/// median(|value − median|), over all the values.
pub fn robust_outliers(values: &[(i64, f64)], threshold: f64) -> BTreeSet<i64> {
    if values.is_empty() {
        return BTreeSet::new();
    }
    let mut sorted: Vec<f64> = values.iter().map(|&(_, v)| v).collect();
    sorted.sort_by(f64::total_cmp);
    let center = median(&sorted);
    let mut deviations: Vec<f64> = sorted.iter().map(|v| (v - center).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    let mad = median(&deviations);
    values
        .iter()
        .filter(|&&(_, v)| (v - center).abs() > threshold * mad)
        .map(|&(id, _)| id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_and_compare_as_defined() {
        assert_eq!(normalize("  Mary-Ann  O'Brien "), "mary ann o brien");
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert!(near_duplicates("John Smith", "JOHN  smith"));
        // 7 characters: only equal names are duplicates.
        assert!(!near_duplicates("Ann Lee", "Ann Lea"));
        // 8 to 11 characters: distance 1.
        assert!(near_duplicates("John Smith", "Jon Smith"));
        assert!(!near_duplicates("John Smith", "Jon Smiht"));
        // 12 or more: distance 2.
        assert!(near_duplicates("Jennifer Smith", "Jennifer Simth"));
        assert!(!near_duplicates("Jennifer Smith", "Jenifer Simth"));
    }

    #[test]
    fn the_indexed_search_agrees_with_all_pairs() {
        let names: Vec<(i64, String)> = [
            "John Smith",
            "Jon Smith",
            "Jennifer Smith",
            "Jennifer Simth",
            "Ann Lee",
            "Ann Lea",
            "ANN  LEE",
            "Mary Jones",
            "Robert Brown",
        ]
        .iter()
        .zip(1..)
        .map(|(n, id)| (id, (*n).to_owned()))
        .collect();
        let mut all_pairs = BTreeSet::new();
        for (a, na) in &names {
            for (b, nb) in &names {
                if a != b && near_duplicates(na, nb) {
                    all_pairs.insert(*a);
                }
            }
        }
        assert_eq!(with_near_duplicates(&names), all_pairs);
        assert_eq!(all_pairs, BTreeSet::from([1, 2, 3, 4, 5, 7]));
        let probes = vec![(1, "John Smith".to_owned())];
        assert_eq!(
            near_duplicates_of(&probes, names.into_iter()),
            BTreeSet::from([(1, 2)])
        );
    }

    #[test]
    fn emails_follow_the_syntax() {
        assert!(!email_malformed("customer1@example.com"));
        assert!(!email_malformed("a.b-c@sub.example-shop.com"));
        for bad in [
            "customer1.example.com",
            "a@b@example.com",
            "a b@example.com",
            "a@examplecom",
            "a@example.com.",
            ".a@example.com",
            "a.@example.com",
            "a..b@example.com",
            "a@example..com",
            "a@-example.com",
            "a@example.com-",
            "a@exa_mple.com",
            "@example.com",
            "a@",
            "a\t@example.com",
        ] {
            assert!(email_malformed(bad), "{bad}");
        }
        assert!(email_malformed(&format!("{}@example.com", "a".repeat(65))));
        assert!(!email_malformed(&format!("{}@example.com", "a".repeat(64))));
        assert!(email_malformed(&format!("a@{}.com", "b".repeat(250))));
    }

    #[test]
    fn gtins_follow_gs1() {
        assert!(gtin_valid("4006381333931"));
        assert!(!gtin_valid("4006381333932"));
        assert!(!gtin_valid("400638133393"));
        assert!(!gtin_valid("40063813O3931"));
        assert!(!gtin_valid("400638133393a"));
    }

    #[test]
    fn outliers_use_the_median_and_the_mad() {
        // Median 3.5 (an even count); deviations 0.5 ×2, 1.5 ×2, 2.5, 96.5: MAD 1.5.
        let values = [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0), (6, 100.0)];
        assert_eq!(robust_outliers(&values, 8.0), BTreeSet::from([6]));
        assert_eq!(robust_outliers(&values, 65.0), BTreeSet::new());
    }
}
