//! Rows as plans and journals keep them: key values as JSON that reads back to the same
//! [`Value`]s, row images as text, and the hash of an image that tells whether a row changed.

use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use crate::dialect::Dialect;
use crate::value::{Value, hex};
use crate::{Error, Result};

/// A value as JSON: `null`, booleans, integers and text as themselves; a float as
/// `{"real": "…"}` (every digit, and infinities), bytes as `{"hex": "…"}`.
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(x) => json!({ "real": format!("{x:?}") }),
        Value::Decimal(s) | Value::Text(s) | Value::Timestamp(s) => json!(s),
        Value::Bytes(b) => json!({ "hex": hex(b) }),
    }
}

/// The value [`to_json`] wrote.
pub fn from_json(json: &Json) -> Result<Value> {
    let bad = || Error::Other(format!("`{json}` is not a value trueup wrote"));
    Ok(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Int(n.as_i64().ok_or_else(bad)?),
        Json::String(s) => Value::Text(s.clone()),
        Json::Object(map) => match (map.get("real"), map.get("hex")) {
            (Some(Json::String(real)), None) => Value::Float(real.parse().map_err(|_| bad())?),
            (None, Some(Json::String(hex))) => Value::Bytes(
                (0..hex.len())
                    .step_by(2)
                    .map(|i| {
                        hex.get(i..i + 2)
                            .and_then(|b| u8::from_str_radix(b, 16).ok())
                    })
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(bad)?,
            ),
            _ => return Err(bad()),
        },
        Json::Array(_) => return Err(bad()),
    })
}

/// Key values as one JSON array.
pub fn key_json(values: &[Value]) -> Json {
    Json::Array(values.iter().map(to_json).collect())
}

/// The values of a JSON array [`key_json`] wrote.
pub fn key_values(json: &Json) -> Result<Vec<Value>> {
    match json {
        Json::Array(items) => items.iter().map(from_json).collect(),
        other => Err(Error::Other(format!("`{other}` is not a key trueup wrote"))),
    }
}

/// A row's image as text: PostgreSQL's `to_jsonb` of the row (one text value), SQLite's
/// values as a JSON object of `columns` (sorted by name).
pub fn image_text(dialect: Dialect, columns: &[String], parts: &[Value]) -> String {
    match (dialect, parts) {
        (Dialect::Postgres, [Value::Text(jsonb)]) => jsonb.clone(),
        _ => Json::Object(
            columns
                .iter()
                .zip(parts)
                .map(|(c, v)| (c.clone(), to_json(v)))
                .collect(),
        )
        .to_string(),
    }
}

/// The values of `columns` in a SQLite image [`image_text`] wrote.
pub fn image_values(image: &str, columns: &[String]) -> Result<Vec<Value>> {
    let json: Json = serde_json::from_str(image)
        .map_err(|e| Error::Other(format!("a journaled image does not read: {e}")))?;
    columns
        .iter()
        .map(|c| match json.get(c) {
            Some(value) => from_json(value),
            None => Err(Error::Other(format!(
                "the journaled image has no column `{c}`: the table changed since the repair"
            ))),
        })
        .collect()
}

/// The hash of an image: 128 bits of its SHA-256, as hex.
pub fn image_hash(image: &str) -> String {
    hex(&Sha256::digest(image.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_written() {
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Int(-7),
            Value::Float(1_920.570_000_000_000_2),
            Value::Float(f64::INFINITY),
            Value::Text("{\"real\": 1}".into()),
            Value::Bytes(vec![0, 255, 16]),
        ];
        let json = key_json(&values);
        let text = json.to_string();
        let back = key_values(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, values);
    }

    #[test]
    fn what_is_not_a_written_value_is_an_error() {
        for text in [
            r#"{"real": "x"}"#,
            r#"{"hex": "abc"}"#,
            r#"{"other": 1}"#,
            "1.5",
            "[1]",
        ] {
            assert!(
                from_json(&serde_json::from_str(text).unwrap()).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn images_hash_by_their_text() {
        let columns = ["id".to_owned(), "name".to_owned()];
        let a = image_text(
            Dialect::Sqlite,
            &columns,
            &[Value::Int(1), Value::Text("x".into())],
        );
        assert_eq!(a, r#"{"id":1,"name":"x"}"#);
        assert_eq!(image_hash(&a), image_hash(r#"{"id":1,"name":"x"}"#));
        assert_ne!(image_hash(&a), image_hash(r#"{"id":1,"name":"y"}"#));
        assert_eq!(
            image_values(&a, &columns).unwrap(),
            [Value::Int(1), Value::Text("x".into())]
        );
        assert!(image_values(&a, &["other".to_owned()]).is_err());
        assert_eq!(image_hash(&a).len(), 32);
        let one = [Value::Text("{\"id\": 1}".into())];
        let id = ["id".to_owned()];
        assert_eq!(image_text(Dialect::Postgres, &id, &one), "{\"id\": 1}");
        assert_eq!(
            image_text(Dialect::Sqlite, &id, &one),
            r#"{"id":"{\"id\": 1}"}"#
        );
    }
}
