//! Canonical JSON, so that the same content hashes the same whatever its key order or spacing.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Hex SHA-256 of `value` written canonically: object keys sorted, no insignificant
/// whitespace. Independent of how `serde_json` orders its maps.
pub fn content_hash(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    hex::encode(Sha256::digest(out.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_whitespace_do_not_change_the_hash() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":"s"}}"#).unwrap();
        let b: Value =
            serde_json::from_str("{ \"a\" : {\"x\":\"s\", \"y\":[1, 2]},\n \"b\": 1 }").unwrap();
        assert_eq!(content_hash(&a), content_hash(&b));
    }

    #[test]
    fn different_content_gives_a_different_hash() {
        assert_ne!(
            content_hash(&json!({"a": 1})),
            content_hash(&json!({"a": 2}))
        );
        assert_ne!(
            content_hash(&json!({"a": [1, 2]})),
            content_hash(&json!({"a": [2, 1]}))
        );
    }

    #[test]
    fn hash_is_hex_sha256_of_sorted_compact_json() {
        let expected = hex::encode(Sha256::digest(br#"{"a":1,"b":"x"}"#));
        assert_eq!(content_hash(&json!({"b": "x", "a": 1})), expected);
    }
}
