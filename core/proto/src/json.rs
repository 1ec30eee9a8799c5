//! Decoding JSON with errors that name the failing field as a JSON Pointer (RFC 6901), so that
//! a wrong type or a missing field is reported as `/messages/3/body`, not "malformed JSON".

use serde::de::DeserializeOwned;

use crate::problem::FieldError;

/// Deserializes a JSON document, reporting the failing field as a JSON Pointer. Syntax errors
/// and trailing garbage are reported at the root (`""`).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FieldError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let pointer = pointer(err.path());
        let inner = err.into_inner();
        match inner.classify() {
            // serde_json reports a wrong JSON type for an enum (a number for `perm`) as a syntax
            // error; in a well-formed document it is the field's fault.
            serde_json::error::Category::Syntax
                if !pointer.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() =>
            {
                let message = inner.to_string();
                let message = plain(message.find(" at line ").map_or(message.as_str(), |at| &message[..at]));
                FieldError::new(pointer, format!("has the wrong type or value ({message})"))
            }
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                FieldError::new("", format!("malformed JSON: {inner}"))
            }
            serde_json::error::Category::Io | serde_json::error::Category::Data => {
                field_error("", &pointer, &inner.to_string())
            }
        }
    })?;
    de.end().map_err(|e| FieldError::new("", format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Deserializes an already parsed value; `prefix` is the pointer of `value` in its document.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value, prefix: &str) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let pointer = pointer(err.path());
        field_error(prefix, &pointer, &err.into_inner().to_string())
    })
}

/// Deserializes from any serde deserializer (a query string, say), with pointer errors.
pub fn deserialize<'de, T, D>(de: D) -> Result<T, FieldError>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
    D::Error: std::fmt::Display,
{
    serde_path_to_error::deserialize(de).map_err(|err| {
        let pointer = pointer(err.path());
        field_error("", &pointer, &err.into_inner().to_string())
    })
}

/// A serde message in the words of the JSON document: no Rust type names (`expected struct
/// CreateTopic`, `untagged enum StartIn`), and JSON's names for its types.
fn plain(message: &str) -> String {
    if let Some(at) = message.find("expected struct ") {
        return format!("{}expected a JSON object", plain(&message[..at]));
    }
    if message.starts_with("data did not match any variant of untagged enum ") {
        return "is none of the accepted forms".to_owned();
    }
    message
        .replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: map", "invalid type: object")
        .replace("expected a sequence", "expected an array")
}

/// Builds the field error of a serde message; a missing field names the field itself.
fn field_error(prefix: &str, pointer: &str, message: &str) -> FieldError {
    // serde_json appends " at line L column C"; the pointer says where already.
    let message = match message.find(" at line ") {
        Some(at) => &message[..at],
        None => message,
    };
    let message = &plain(message);
    let field = match message.strip_prefix("missing field `").and_then(|s| s.strip_suffix('`')) {
        Some(name) => format!("{prefix}{pointer}/{}", escape_pointer(name)),
        None => format!("{prefix}{pointer}"),
    };
    FieldError::new(field, message)
}

/// A `serde_path_to_error` path as a JSON Pointer.
fn pointer(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            serde_path_to_error::Segment::Seq { index } => {
                out.push('/');
                out.push_str(&index.to_string());
            }
            serde_path_to_error::Segment::Map { key } => {
                out.push('/');
                out.push_str(&escape_pointer(key));
            }
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {}
        }
    }
    out
}

/// Escapes one JSON Pointer token (RFC 6901).
pub fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        messages: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        body: String,
    }

    #[test]
    fn wrong_type_points_at_the_field() {
        let err = parse::<Body>(br#"{"messages": [{"body": "a"}, {"body": 5}]}"#).unwrap_err();
        assert_eq!(err.field, "/messages/1/body");
    }

    #[test]
    fn missing_field_points_at_the_missing_field() {
        let err = parse::<Body>(br#"{"messages": [{}]}"#).unwrap_err();
        assert_eq!(err.field, "/messages/0/body");
    }

    #[test]
    fn malformed_json_and_trailing_garbage_point_at_the_root() {
        assert_eq!(parse::<Body>(b"{").unwrap_err().field, "");
        let err = parse::<Body>(br#"{"messages": []} x"#).unwrap_err();
        assert_eq!(err.field, "");
        assert!(err.message.contains("malformed"), "{}", err.message);
    }

    #[test]
    fn messages_name_json_types_and_no_rust_type() {
        let err = parse::<Body>(br#"{"messages": [1]}"#).unwrap_err();
        assert_eq!(err.field, "/messages/0");
        assert_eq!(err.message, "invalid type: integer `1`, expected a JSON object");
        let err = parse::<Body>(br#"{"messages": {"body": "a"}}"#).unwrap_err();
        assert_eq!(err.message, "invalid type: object, expected an array");
        let err = parse::<crate::ws::StartIn>(br#""middle""#).unwrap_err();
        assert_eq!(err.message, "is none of the accepted forms");
    }

    #[test]
    fn values_keep_their_prefix_and_tokens_are_escaped() {
        let err = from_value::<Item>(serde_json::json!({}), "/messages/2").unwrap_err();
        assert_eq!(err.field, "/messages/2/body");
        assert_eq!(escape_pointer("a/b~c"), "a~1b~0c");
    }
}
