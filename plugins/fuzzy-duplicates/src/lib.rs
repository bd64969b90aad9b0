//! `fuzzy-duplicates`: reports rows whose value is a near-duplicate of another row's, such
//! as `Anna Smith`, `anna  smith` and `Anna Smyth`.
//!
//! # The definition
//!
//! A value is **normalized**: lowercased, every character that is not an ASCII letter or
//! digit becomes a space, runs of spaces collapse to one, and the ends are trimmed
//! ([`normalize`]). Values that normalize to nothing (and NULLs) are skipped. Two values
//! are **near-duplicates** ([`near`]) when their normalized forms are equal, or both have
//! at least 8 characters and their Levenshtein distance is at most 2 when both have at
//! least 12 characters, at most 1 otherwise. Every row with at least one near-duplicate is
//! reported, once, naming one of them.
//!
//! # How it scales
//!
//! Comparing all pairs is out of the question for 100k rows, so candidates are found by
//! an index that cannot miss a pair, then verified with an exact, banded Levenshtein
//! ([`within`]):
//!
//! - Equal normalized forms are grouped by a hash map: only distinct forms go further.
//! - Forms up to [`LONG`] characters use **symmetric deletion** (as in SymSpell): if
//!   `lev(a, b) ≤ k`, deleting at most `k` characters from each gives a common string (a
//!   substitution is a deletion on both sides, an insertion one on the other side). Each
//!   form is indexed under the hashes of its variants with up to 1 deletion (up to 2 when
//!   it has 12 characters or more); forms sharing a variant hash are candidates.
//! - Longer forms use the **pigeonhole principle** (as in PassJoin): split a form into 3
//!   segments; 2 edits leave one segment intact, and it appears in the other form shifted
//!   by at most 2 positions. Each form is indexed under its 3 segments; a form probes the
//!   substrings of its own at those positions.
//! - An index entry is one `u64`: the top bits of the hash and the form's number, sorted so
//!   that equal hashes are neighbours. At most [`PASS_ENTRIES`] deletion variants are in
//!   memory at a time (more forms take several passes, each over one range of hashes); for
//!   segments, only the forms of three consecutive lengths are (a pair's lengths differ by
//!   at most 2). Hash collisions only add candidates, which the verification throws out.

use std::collections::HashMap;

use trueup_plugin_sdk::{Columns, Finding, Findings, Key, Plugin, Row, Value, export};

/// The configuration of a rule that runs this plugin: its `[rule.detector.config]` table.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The query column whose values are compared, usually a name. Values are compared
    /// after normalizing: lowercased, every character other than an ASCII letter or digit
    /// made a space, runs of spaces collapsed, ends trimmed. Two values are near-duplicates
    /// when their normalized forms are equal, or both have at least 8 characters and differ
    /// by at most 1 edit (at most 2 when both have 12 characters or more): an edit is
    /// inserting, deleting or replacing one character. NULL values, and values that
    /// normalize to nothing, are skipped.
    pub column: String,
}

/// Normalized forms shorter than this are near-duplicates only when equal.
pub const MIN_FUZZY_LEN: usize = 8;
/// Normalized forms at least this long may be 2 edits apart (shorter ones: 1).
pub const TWO_EDITS_LEN: usize = 12;
/// The longest forms indexed by deletion variants; longer ones are indexed by segments.
/// (A form of `n` characters has about n²/2 variants of 2 deletions.)
pub const LONG: usize = 32;

/// `value` normalized (see [`normalize_into`]).
pub fn normalize(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    normalize_into(value, &mut out);
    out
}

/// Writes `value` normalized into `out` (cleared first): lowercased, every character that
/// is not an ASCII letter or digit a space, runs of spaces collapsed to one, trimmed.
pub fn normalize_into(value: &str, out: &mut String) {
    out.clear();
    let mut space = false;
    for c in value.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        } else {
            space = true;
        }
    }
}

/// Whether two **normalized** forms are near-duplicates: equal, or both at least
/// [`MIN_FUZZY_LEN`] long and within 1 edit (2 when both are at least [`TWO_EDITS_LEN`]).
pub fn near(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() < MIN_FUZZY_LEN || b.len() < MIN_FUZZY_LEN {
        return false;
    }
    within(a, b, allowed_edits(a.len(), b.len()))
}

/// How many edits two forms of these lengths (both at least [`MIN_FUZZY_LEN`]) may be apart.
fn allowed_edits(a: usize, b: usize) -> usize {
    if a >= TWO_EDITS_LEN && b >= TWO_EDITS_LEN {
        2
    } else {
        1
    }
}

/// The Levenshtein distance of `a` and `b`, by characters (normalized forms are ASCII, so
/// bytes are characters). Plain and quadratic: the reference [`within`] is tested against.
pub fn levenshtein(a: &[u8], b: &[u8]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let value = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = value;
        }
    }
    row[b.len()]
}

/// Whether `lev(a, b) ≤ k`, for `k ≤ 2`: the dynamic programme on the band of diagonals
/// `-k..=k` only, stopping as soon as a row exceeds `k`. No allocation.
pub fn within(a: &[u8], b: &[u8], k: usize) -> bool {
    assert!(k <= 2, "within() handles at most 2 edits");
    let (n, m) = (a.len(), b.len());
    if n.abs_diff(m) > k {
        return false;
    }
    // Common ends cost nothing: skip them.
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a, b) = (&a[..a.len() - suffix], &b[..b.len() - suffix]);
    let (n, m) = (a.len(), b.len());

    // band[k + d] is D[i][i + d]; anything above k is stored as k + 1.
    let big = k + 1;
    let width = 2 * k + 1;
    let mut previous = [big; 5];
    let mut current = [big; 5];
    for d in 0..=k.min(m) {
        previous[k + d] = d;
    }
    for i in 1..=n {
        let mut row_min = big;
        for slot in 0..width {
            let value = match (i + slot).checked_sub(k) {
                Some(j) if j <= m => {
                    if j == 0 {
                        i.min(big)
                    } else {
                        let diagonal = previous[slot] + usize::from(a[i - 1] != b[j - 1]);
                        let up = if slot + 1 < width {
                            previous[slot + 1] + 1
                        } else {
                            big
                        };
                        let left = if slot > 0 { current[slot - 1] + 1 } else { big };
                        diagonal.min(up).min(left).min(big)
                    }
                }
                _ => big,
            };
            current[slot] = value;
            row_min = row_min.min(value);
        }
        if row_min > k {
            return false;
        }
        std::mem::swap(&mut previous, &mut current);
    }
    // D[n][m] is on diagonal m - n, which the length check keeps within the band.
    previous[k + m - n] <= k
}

/// Polynomial hashes of every prefix of a form, to hash any of its substrings, or the form
/// less one or two characters, in constant time.
#[derive(Default)]
struct Hasher {
    prefix: Vec<u64>,
    power: Vec<u64>,
}

/// The polynomial hash's base: odd, with well-mixed bits.
const BASE: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher {
    fn load(&mut self, text: &[u8]) {
        self.prefix.clear();
        self.prefix.push(0);
        let mut h = 0u64;
        for &c in text {
            h = h.wrapping_mul(BASE).wrapping_add(u64::from(c) + 1);
            self.prefix.push(h);
        }
        while self.power.len() <= text.len() {
            let next = self.power.last().map_or(1, |p| p.wrapping_mul(BASE));
            self.power.push(next);
        }
    }

    /// The hash of `text[from..to]`.
    fn range(&self, from: usize, to: usize) -> u64 {
        self.prefix[to].wrapping_sub(self.prefix[from].wrapping_mul(self.power[to - from]))
    }

    /// The hash of `a` followed by `b`, of `b_len` characters.
    fn join(&self, a: u64, b: u64, b_len: usize) -> u64 {
        a.wrapping_mul(self.power[b_len]).wrapping_add(b)
    }
}

/// A 64-bit finalizer (splitmix64's), so that the top bits, which index entries keep, are
/// as good as the rest.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn length_tag(len: usize) -> u64 {
    u64::try_from(len)
        .unwrap_or(u64::MAX)
        .wrapping_mul(0xD6E8_FEB8_6659_FD93)
}

/// The segment entries of the long forms of one length, sorted.
struct Level {
    len: usize,
    segments: Vec<u64>,
}

/// Packs a hash and a form number into one sortable entry: the hash's top bits, then the
/// number.
#[derive(Clone, Copy)]
struct Packing {
    bits: u32,
}

impl Packing {
    fn entry(self, hash: u64, id: usize) -> u64 {
        let id = u64::try_from(id).expect("form numbers fit in 64 bits");
        if self.bits == 0 {
            return hash;
        }
        ((hash >> self.bits) << self.bits) | id
    }

    /// The hash part of an entry, as [`Packing::range`] takes it.
    fn hash(self, entry: u64) -> u64 {
        entry.checked_shr(self.bits).unwrap_or(0)
    }

    fn id(self, entry: u64) -> usize {
        let mask = (1u64 << self.bits) - 1;
        usize::try_from(entry & mask).expect("form numbers fit in usize")
    }

    /// The entries of `sorted` whose hash part is `hash` (see [`Packing::hash`]).
    fn range(self, sorted: &[u64], hash: u64) -> &[u64] {
        let from = sorted.partition_point(|&e| self.hash(e) < hash);
        let to = from + sorted[from..].partition_point(|&e| self.hash(e) == hash);
        &sorted[from..to]
    }
}

/// Records that forms `a` and `b` are near-duplicates (each keeps its first partner).
fn link(partner: &mut [Option<usize>], a: usize, b: usize) {
    if partner[a].is_none() {
        partner[a] = Some(b);
    }
    if partner[b].is_none() {
        partner[b] = Some(a);
    }
}

/// The segments of a form of `len` characters: `[i·len/3, (i+1)·len/3)` for `i` in 0..3.
fn segment(len: usize, i: usize) -> (usize, usize) {
    (i * len / 3, (i + 1) * len / 3)
}

/// How many deletion-variant entries (8 bytes each) are in memory at a time: when the
/// forms have more variants, they are indexed in several passes, each keeping the variants
/// of one range of hashes.
pub const PASS_ENTRIES: usize = 1 << 21;

/// For each **normalized** form, another form that is a near-duplicate of it but not equal
/// (one per form, the first found), or `None`. Forms shorter than [`MIN_FUZZY_LEN`] get
/// `None`: they are near-duplicates only of equal forms. Every form that has a fuzzy
/// near-duplicate gets one (the index cannot miss a pair); which one is unspecified.
pub fn fuzzy_partners<S: AsRef<str>>(forms: &[S]) -> Vec<Option<usize>> {
    let texts: Vec<&[u8]> = forms.iter().map(|f| f.as_ref().as_bytes()).collect();
    let mut partner = vec![None; forms.len()];
    let packing = Packing {
        bits: usize::BITS - forms.len().leading_zeros(),
    };
    by_deletions(&texts, packing, PASS_ENTRIES, &mut partner);
    by_segments(&texts, packing, &mut partner);
    partner
}

/// Pairs of forms of at most [`LONG`] characters: forms sharing a deletion variant.
fn by_deletions(
    texts: &[&[u8]],
    packing: Packing,
    pass_entries: usize,
    partner: &mut [Option<usize>],
) {
    let ids: Vec<usize> = (0..texts.len())
        .filter(|&id| (MIN_FUZZY_LEN..=LONG).contains(&texts[id].len()))
        .collect();
    let total: usize = ids.iter().map(|&id| variant_count(texts[id].len())).sum();
    let pass_count = total.div_ceil(pass_entries).max(1);
    let passes = u64::try_from(pass_count).unwrap_or(u64::MAX);
    let mut hasher = Hasher::default();
    // A pass gets about its share of the variants: reserve it once, with a margin, rather
    // than let the vector double (and briefly need half as much again).
    let share = total / pass_count;
    let mut entries: Vec<u64> = Vec::with_capacity(share + share / 16 + 1024);
    let mut members: Vec<usize> = Vec::new();
    for pass in 0..passes {
        entries.clear();
        for &id in &ids {
            hasher.load(texts[id]);
            deletion_variants(&hasher, texts[id].len(), |hash| {
                // The pass of a hash: its top 32 bits scaled to 0..passes (no division).
                if ((hash >> 32) * passes) >> 32 == pass {
                    entries.push(packing.entry(hash, id));
                }
            });
        }
        entries.sort_unstable();
        entries.dedup();
        for bucket in entries.chunk_by(|&x, &y| packing.hash(x) == packing.hash(y)) {
            if bucket.len() < 2 {
                continue;
            }
            members.clear();
            members.extend(bucket.iter().map(|&e| packing.id(e)));
            for &a in &members {
                if partner[a].is_some() {
                    continue;
                }
                if let Some(&b) = members
                    .iter()
                    .find(|&&b| b != a && near_bytes(texts[a], texts[b]))
                {
                    link(partner, a, b);
                }
            }
        }
    }
}

/// How many deletion variants a form of `len` characters has (counting repeats).
fn variant_count(len: usize) -> usize {
    1 + len
        + if len >= TWO_EDITS_LEN {
            len * (len - 1) / 2
        } else {
            0
        }
}

/// Pairs of forms of which one is longer than [`LONG`] characters (then both are at least
/// `LONG − 1`): the longer probes the segments of the shorter (or as long).
fn by_segments(texts: &[&[u8]], packing: Packing, partner: &mut [Option<usize>]) {
    let mut order: Vec<usize> = (0..texts.len())
        .filter(|&id| texts[id].len() + 1 >= LONG && texts[id].len() >= MIN_FUZZY_LEN)
        .collect();
    order.sort_by_key(|&id| texts[id].len());
    let mut hasher = Hasher::default();
    let mut window: Vec<Level> = Vec::new();
    for group in order.chunk_by(|&a, &b| texts[a].len() == texts[b].len()) {
        let len = texts[group[0]].len();
        window.retain(|level| level.len + 2 >= len);
        let mut level = Level {
            len,
            segments: Vec::with_capacity(3 * group.len()),
        };
        for &id in group {
            hasher.load(texts[id]);
            for i in 0..3 {
                let (from, to) = segment(len, i);
                let hash = segment_key(hasher.range(from, to), len, i);
                level.segments.push(packing.entry(hash, id));
            }
        }
        level.segments.sort_unstable();
        window.push(level);
        if len <= LONG {
            continue;
        }
        // Each form probes the segments of the forms of this length and the two below.
        for &a in group {
            hasher.load(texts[a]);
            for indexed in &window {
                let other_len = indexed.len;
                for i in 0..3 {
                    let (from, to) = segment(other_len, i);
                    let size = to - from;
                    let first = from.saturating_sub(2);
                    let last = (from + 2).min(len - size);
                    for at in first..=last {
                        let key = segment_key(hasher.range(at, at + size), other_len, i);
                        let hash = packing.hash(packing.entry(key, 0));
                        for &entry in packing.range(&indexed.segments, hash) {
                            let b = packing.id(entry);
                            if b == a || (partner[a].is_some() && partner[b].is_some()) {
                                continue;
                            }
                            if near_bytes(texts[a], texts[b]) {
                                link(partner, a, b);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// [`near`] on two forms known to differ and to be at least [`MIN_FUZZY_LEN`] long.
fn near_bytes(a: &[u8], b: &[u8]) -> bool {
    a != b && within(a, b, allowed_edits(a.len(), b.len()))
}

/// Calls `emit` with the hash of every variant of the loaded form (of `len` characters)
/// less up to 1 character, or up to 2 when it has [`TWO_EDITS_LEN`] or more. Variants that
/// are the same string have the same hash (the caller deduplicates).
fn deletion_variants(hasher: &Hasher, len: usize, mut emit: impl FnMut(u64)) {
    emit(mix(hasher.range(0, len) ^ length_tag(len)));
    for i in 0..len {
        let h = hasher.join(hasher.range(0, i), hasher.range(i + 1, len), len - i - 1);
        emit(mix(h ^ length_tag(len - 1)));
    }
    if len >= TWO_EDITS_LEN {
        for i in 0..len {
            for j in i + 1..len {
                let left = hasher.join(hasher.range(0, i), hasher.range(i + 1, j), j - i - 1);
                let h = hasher.join(left, hasher.range(j + 1, len), len - j - 1);
                emit(mix(h ^ length_tag(len - 2)));
            }
        }
    }
}

/// The index key of segment `i` (hash `hash`) of a form of `len` characters.
fn segment_key(hash: u64, len: usize, i: usize) -> u64 {
    mix(mix(hash ^ length_tag(len)) ^ length_tag(i + 1).rotate_left(17))
}

/// The values of a column, grouped by normalized form, row by row.
#[derive(Default)]
pub struct Collector {
    ids: HashMap<Box<str>, usize>,
    forms: Vec<Box<str>>,
    /// The first two rows of each form (`usize::MAX`: none).
    first_rows: Vec<[usize; 2]>,
    /// Each row's form.
    rows: Vec<usize>,
    scratch: String,
}

impl Collector {
    /// Adds the next row's value; `false` when it normalizes to nothing (then it is not a
    /// row of the collector: the next value added takes its number).
    pub fn add(&mut self, value: &str) -> bool {
        normalize_into(value, &mut self.scratch);
        if self.scratch.is_empty() {
            return false;
        }
        let row = self.rows.len();
        let form = match self.ids.get(self.scratch.as_str()) {
            Some(&form) => {
                let first = &mut self.first_rows[form];
                if first[1] == usize::MAX {
                    first[1] = row;
                }
                form
            }
            None => {
                let form = self.forms.len();
                let text: Box<str> = self.scratch.as_str().into();
                self.ids.insert(text.clone(), form);
                self.forms.push(text);
                self.first_rows.push([row, usize::MAX]);
                form
            }
        };
        self.rows.push(form);
        true
    }

    /// The number of rows added (not counting skipped values).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// For each row, another row whose value is a near-duplicate of its own, or `None`.
    /// A row whose normalized form other rows share names one of those; otherwise the
    /// first row of a near form.
    pub fn similar(&self) -> Vec<Option<usize>> {
        let partners = fuzzy_partners(&self.forms);
        self.rows
            .iter()
            .enumerate()
            .map(|(row, &form)| {
                let [first, second] = self.first_rows[form];
                if second != usize::MAX {
                    Some(if row == first { second } else { first })
                } else {
                    partners[form].map(|other| self.first_rows[other][0])
                }
            })
            .collect()
    }
}

/// For each value, the index of another value it is a near-duplicate of, or `None` (also
/// for NULL-like values that normalize to nothing).
pub fn near_duplicates(values: &[&str]) -> Vec<Option<usize>> {
    let mut collector = Collector::default();
    let mut index = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        if collector.add(value) {
            index.push(i);
        }
    }
    let mut out = vec![None; values.len()];
    for (row, similar) in collector.similar().into_iter().enumerate() {
        out[index[row]] = similar.map(|other| index[other]);
    }
    out
}

/// The plugin: collects the column's values and keys, compares them in `finish`.
pub struct FuzzyDuplicates {
    column: usize,
    collector: Collector,
    keys: Vec<Key>,
    values: Vec<Box<str>>,
}

impl Plugin for FuzzyDuplicates {
    const NAME: &'static str = "fuzzy-duplicates";
    const DESCRIPTION: &'static str = "Reports rows whose value is a near-duplicate of another row's (case, punctuation, a typo or two)";
    type Config = Config;

    fn new(config: Config, columns: &Columns) -> Result<Self, String> {
        Ok(FuzzyDuplicates {
            column: columns.require(&config.column)?,
            collector: Collector::default(),
            keys: Vec::new(),
            values: Vec::new(),
        })
    }

    fn check(&mut self, row: &Row<'_>) -> Option<Finding> {
        let value = row.get(self.column);
        let owned;
        let text = match value {
            Value::Null | Value::Bytes(_) => return None,
            Value::Text(s) | Value::Decimal(s) | Value::Timestamp(s) => s,
            other => {
                owned = other.to_string();
                &owned
            }
        };
        if self.collector.add(text) {
            self.keys.push(row.key());
            self.values.push(text.into());
        }
        None
    }

    fn finish(&mut self, findings: &mut Findings) {
        let similar = self.collector.similar();
        let keys = std::mem::take(&mut self.keys);
        for ((key, similar), value) in keys.into_iter().zip(similar).zip(&self.values) {
            if let Some(other) = similar {
                let other = &self.values[other];
                findings.push(
                    Finding::new(format!("near-duplicate of {other:?}"))
                        .key(key)
                        .detail("value", &**value)
                        .detail("similar_to", &**other),
                );
            }
        }
    }
}

export!(FuzzyDuplicates);

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (PCG-like), so that failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next()).unwrap() % n
        }

        fn pick(&mut self, bytes: &[u8]) -> u8 {
            bytes[self.below(bytes.len())]
        }
    }

    /// The definition, pair by pair: which values have a near-duplicate.
    fn brute_force(values: &[&str]) -> Vec<bool> {
        let forms: Vec<String> = values.iter().map(|v| normalize(v)).collect();
        let mut found = vec![false; values.len()];
        for i in 0..values.len() {
            for j in i + 1..values.len() {
                if forms[i].is_empty() || forms[j].is_empty() {
                    continue;
                }
                let (a, b) = (forms[i].as_bytes(), forms[j].as_bytes());
                // The distance is at least the difference in length: skip the hopeless.
                if a.len().abs_diff(b.len()) > 2 {
                    continue;
                }
                let near = a == b
                    || (a.len() >= 8
                        && b.len() >= 8
                        && levenshtein(a, b) <= if a.len() >= 12 && b.len() >= 12 { 2 } else { 1 });
                if near {
                    found[i] = true;
                    found[j] = true;
                }
            }
        }
        found
    }

    fn assert_matches_brute_force(values: &[&str]) {
        let fast = near_duplicates(values);
        let slow = brute_force(values);
        for (i, value) in values.iter().enumerate() {
            assert_eq!(
                fast[i].is_some(),
                slow[i],
                "value {i} {value:?}: index says {:?}",
                fast[i].map(|j| values[j])
            );
            if let Some(j) = fast[i] {
                assert_ne!(i, j);
                assert!(
                    near(&normalize(value), &normalize(values[j])),
                    "{value:?} named {:?}",
                    values[j]
                );
            }
        }
    }

    /// `base` with `edits` random insertions, deletions or substitutions.
    fn mutate(rng: &mut Rng, base: &[u8], edits: usize, alphabet: &[u8]) -> Vec<u8> {
        let mut out = base.to_vec();
        for _ in 0..edits {
            match rng.below(3) {
                0 => {
                    let at = rng.below(out.len() + 1);
                    out.insert(at, rng.pick(alphabet));
                }
                1 if !out.is_empty() => {
                    let at = rng.below(out.len());
                    out.remove(at);
                }
                _ if !out.is_empty() => {
                    let at = rng.below(out.len());
                    out[at] = rng.pick(alphabet);
                }
                _ => out.push(rng.pick(alphabet)),
            }
        }
        out
    }

    /// Values around a few random bases, with up to 3 edits each: many pairs at distance
    /// 0 to 6, across the length thresholds (8, 12) and the index switch ([`LONG`]).
    fn random_values(
        seed: u64,
        count: usize,
        lengths: (usize, usize),
        alphabet: &[u8],
    ) -> Vec<String> {
        let mut rng = Rng(seed);
        let bases: Vec<Vec<u8>> = (0..1 + count / 8)
            .map(|_| {
                let len = lengths.0 + rng.below(lengths.1 - lengths.0 + 1);
                (0..len).map(|_| rng.pick(alphabet)).collect()
            })
            .collect();
        (0..count)
            .map(|_| {
                let base = &bases[rng.below(bases.len())];
                let edits = rng.below(4);
                let mut value = mutate(&mut rng, base, edits, alphabet);
                // Case and punctuation that normalizing removes.
                if rng.below(4) == 0 {
                    value.make_ascii_uppercase();
                }
                if rng.below(6) == 0 {
                    value.push(b'!');
                }
                String::from_utf8(value).unwrap()
            })
            .collect()
    }

    #[test]
    fn normalizing() {
        assert_eq!(normalize("Anna Smith"), "anna smith");
        assert_eq!(normalize("  ANNA   smith!! "), "anna smith");
        assert_eq!(normalize("Anna-Smith"), "anna smith");
        assert_eq!(normalize("anna_smith"), "anna smith");
        assert_eq!(normalize("O'Brien, Pat"), "o brien pat");
        assert_eq!(normalize("José Müller"), "jos m ller");
        assert_eq!(normalize("Room 101"), "room 101");
        assert_eq!(normalize("\t\n"), "");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("---"), "");
        // Lowercasing comes first: the Kelvin sign lowercases to an ASCII k.
        assert_eq!(normalize("\u{212A}elvin"), "kelvin");
        // Dotted capital I lowercases to i and a combining dot, which becomes a space.
        assert_eq!(normalize("\u{130}stanbul"), "i stanbul");
    }

    #[test]
    fn the_definition() {
        // Equal after normalizing, at any length.
        assert!(near("ab", "ab"));
        // Shorter than 8: only equal.
        assert!(!near("annasmi", "annasmo"));
        assert!(!near("anna smith", "anna s")); // one side short
        // 8 to 11: one edit.
        assert!(near("anna smith", "anna smyth"));
        assert!(near("anna smith", "anna smit"));
        assert!(near("annasmit", "annasmith"));
        assert!(!near("anna smith", "anne smyth"));
        // 12 and more on both sides: two edits.
        assert!(near("anna smithson", "anne smythson"));
        assert!(!near("anna smithson", "anne smythsen"));
        // One side 11, the other 12: one edit only.
        assert!(near("anna smiths", "anna smithss"));
        assert!(!near("anna smitha", "anna smithbb"));
        assert!(!near("anna smitxx", "anna smithyy"));
    }

    #[test]
    fn banded_distance_agrees_with_the_plain_one() {
        let mut rng = Rng(7);
        for _ in 0..20_000 {
            let len = rng.below(14);
            let a: Vec<u8> = (0..len).map(|_| rng.pick(b"abc")).collect();
            let edits = rng.below(5);
            let b = mutate(&mut rng, &a, edits, b"abc");
            let distance = levenshtein(&a, &b);
            for k in 0..=2 {
                assert_eq!(within(&a, &b, k), distance <= k, "{a:?} {b:?} k={k}");
            }
        }
        assert_eq!(levenshtein(b"kitten", b"sitting"), 3);
        assert_eq!(levenshtein(b"", b"abc"), 3);
        assert!(within(b"", b"", 0));
        assert!(within(b"ab", b"", 2));
        assert!(!within(b"abc", b"", 2));
    }

    #[test]
    fn the_index_finds_what_brute_force_finds_short_values() {
        for seed in 0..40 {
            let values = random_values(seed, 300, (6, 16), b"ab c");
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            assert_matches_brute_force(&values);
        }
    }

    #[test]
    fn the_index_finds_what_brute_force_finds_around_the_long_switch() {
        for seed in 100..130 {
            let values = random_values(seed, 300, (LONG - 4, LONG + 6), b"abc d");
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            assert_matches_brute_force(&values);
        }
    }

    #[test]
    fn the_index_finds_what_brute_force_finds_wide_alphabet() {
        for seed in 200..220 {
            let values = random_values(
                seed,
                400,
                (4, 60),
                b"abcdefghijklmnopqrstuvwxyz0123456789 -.",
            );
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            assert_matches_brute_force(&values);
        }
    }

    #[test]
    fn several_passes_find_the_same_pairs_as_one() {
        for seed in 300..310 {
            let values = random_values(seed, 300, (8, 24), b"ab c");
            let forms: Vec<String> = values.iter().map(|v| normalize(v)).collect();
            let texts: Vec<&[u8]> = forms.iter().map(|f| f.as_bytes()).collect();
            let packing = Packing {
                bits: usize::BITS - texts.len().leading_zeros(),
            };
            let mut one = vec![None; texts.len()];
            by_deletions(&texts, packing, usize::MAX, &mut one);
            let mut many = vec![None; texts.len()];
            by_deletions(&texts, packing, 1000, &mut many);
            let found = |p: &[Option<usize>]| p.iter().map(Option::is_some).collect::<Vec<_>>();
            assert_eq!(found(&one), found(&many));
        }
    }

    #[test]
    fn repetitive_values_whose_variants_coincide() {
        let values = [
            "aaaaaaaaaaaa",
            "aaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaa",
            "abababababababababababababababababababab",
            "ababababababababababababababababababab",
            "abababababababababababababababababab",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "zzzzzzzz",
            "zzzzzzz",
        ];
        assert_matches_brute_force(&values);
    }

    #[test]
    fn what_is_reported() {
        let values = [
            "Anna Smith",  // 0: form shared with 1
            "anna  SMITH", // 1
            "Anna Smyth",  // 2: one edit from 0 and 1
            "Bob",         // 3: short, alone
            "bob!",        // 4: short but equal to 3 after normalizing
            "Bobby Tables",
            "",     // 6: skipped
            "!!!",  // 7: skipped
            "!!!",  // 8: skipped even though equal
            "Carl", // 9
        ];
        let found = near_duplicates(&values);
        assert_eq!(found[0], Some(1));
        assert_eq!(found[1], Some(0));
        assert_eq!(found[2], Some(0));
        assert_eq!(found[3], Some(4));
        assert_eq!(found[4], Some(3));
        assert_eq!(found[5], None);
        assert_eq!(&found[6..], &[None, None, None, None]);
    }

    #[test]
    fn many_rows_in_reasonable_time() {
        // Names like the demo shop's, with near-duplicates planted; debug builds are slow,
        // so this is a smoke test of the scaling, not a benchmark.
        let first = [
            "Anna", "Bob", "Carla", "Dmitri", "Emma", "Farid", "Greta", "Hiro", "Ines", "Jonas",
            "Kemal", "Lena", "Marco", "Nora", "Oskar", "Priya", "Quinn", "Rosa", "Sven", "Tara",
        ];
        let last = [
            "Smith", "Novak", "Garcia", "Okafor", "Schmidt", "Tanaka", "Rossi", "Dubois",
            "Kowalski", "Jensen", "Silva", "Haddad", "Murphy", "Nguyen", "Petrov", "Larsen",
        ];
        let mut values: Vec<String> = Vec::new();
        for i in 0..20_000usize {
            let name = format!(
                "{} {} {i}",
                first[i % first.len()],
                last[i / 7 % last.len()]
            );
            values.push(name);
        }
        values.push("Anna Smith 0!".to_owned()); // equal to row 0 after normalizing
        values.push("Anna Smith 1x".to_owned());
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let found = near_duplicates(&refs);
        // "Anna Smith 0" vs "Anna Smith 1x" etc.: numbers make near pairs among neighbours.
        let reported = found.iter().filter(|f| f.is_some()).count();
        assert!(reported > 0);
        assert_eq!(found[20_000], Some(0));
        // Check a sample of rows against the definition directly.
        let forms: Vec<String> = refs.iter().map(|v| normalize(v)).collect();
        for i in (0..refs.len()).step_by(997) {
            let any = (0..refs.len()).any(|j| j != i && near(&forms[i], &forms[j]));
            assert_eq!(found[i].is_some(), any, "{}", refs[i]);
        }
    }
}
