//! Stable fingerprints: FNV-1a 64 hashes of text, the same on every machine and in every
//! version of trueup, so that findings can be matched across runs.
//!
//! A finding's fingerprint hashes its rule id and the text of its key values; a value's
//! text (not its type) counts, so `42` read as an integer from SQLite and as `int4` from
//! PostgreSQL is the same key.

use crate::value::Value;

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// An FNV-1a 64 hash being fed.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(OFFSET)
    }
}

impl Fnv {
    pub fn bytes(mut self, bytes: &[u8]) -> Self {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(PRIME);
        }
        self
    }

    /// Feeds `text` and a separator that text cannot contain, so that `("ab", "c")` and
    /// `("a", "bc")` differ.
    pub fn field(self, text: &str) -> Self {
        self.bytes(text.as_bytes()).bytes(&[0xff])
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

/// A finding's fingerprint: 64 bits, shown and parsed as 16 hex digits, stored as the
/// signed 64-bit integer with the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(i64);

impl Fingerprint {
    /// The fingerprint stored as `bits` (a signed 64-bit column, a blob record).
    pub fn from_stored(bits: i64) -> Fingerprint {
        Fingerprint(bits)
    }

    /// The signed 64-bit integer a store keeps; fingerprints sort as these do.
    pub fn stored(self) -> i64 {
        self.0
    }
}

/// 16 hex digits.
impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", u64::from_le_bytes(self.0.to_le_bytes()))
    }
}

/// Reads what [`Display`](std::fmt::Display) writes (any hex of up to 16 digits).
impl std::str::FromStr for Fingerprint {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<Fingerprint, Self::Err> {
        let bits = u64::from_str_radix(text, 16)?;
        Ok(Fingerprint(i64::from_le_bytes(bits.to_le_bytes())))
    }
}

/// The fingerprint of a finding of `rule` with `key` values.
pub fn of_key<'a>(rule: &str, key: impl IntoIterator<Item = &'a Value>) -> Fingerprint {
    let hash = key
        .into_iter()
        .fold(Fnv::default().field(rule), |hash, value| match value {
            Value::Null => hash.bytes(&[0xfe]),
            value => hash.field(&value.to_string()),
        });
    Fingerprint(i64::from_le_bytes(hash.finish().to_le_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_reference_values() {
        // From the FNV reference test suite.
        assert_eq!(Fnv::default().finish(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv::default().bytes(b"a").finish(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            Fnv::default().bytes(b"foobar").finish(),
            0x8594_4171_f739_67e8
        );
    }

    #[test]
    fn fingerprints_are_stable_and_type_blind() {
        let a = of_key("orders.orphaned", [&Value::Int(42)]);
        assert_eq!(a, of_key("orders.orphaned", [&Value::Text("42".into())]));
        assert_eq!(
            a.to_string(),
            "8342a7cec0bd5ff5",
            "a fingerprint never changes between versions"
        );
        assert_ne!(a, of_key("orders.other", [&Value::Int(42)]));
        assert_ne!(
            of_key("r", [&Value::from("ab"), &Value::from("c")]),
            of_key("r", [&Value::from("a"), &Value::from("bc")])
        );
        assert_ne!(of_key("r", [&Value::Null]), of_key("r", [&Value::from("")]));
        assert_eq!(a.to_string().parse::<Fingerprint>(), Ok(a));
        assert!("not hex".parse::<Fingerprint>().is_err());
    }
}
