//! Turns the plain-text body of an axum extractor rejection into a client-safe detail.
//!
//! axum's rejection texts embed what the client sent (`Cannot parse `id` with value `<input>``,
//! `invalid type: string "<input>"`), and custom `Deserialize` impls can say anything. This
//! module reads only the shapes it knows, keeps the parts that come from the service's own
//! code (field names, parameter names, expected kinds) and drops every value the client
//! sent. Anything it does not recognise yields `None`, and the caller uses a generic detail.

use std::fmt::Write as _;

/// Longest field or parameter name echoed back; longer ones are left out.
pub(crate) const MAX_NAME: usize = 40;

/// A client-safe detail for a rejection body, or `None` for a text this module does not know.
pub(crate) fn describe(text: &str) -> Option<String> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("Failed to parse the request body as JSON") {
        return Some(json_syntax(rest.strip_prefix(": ").unwrap_or("")));
    }
    // axum's data-error prefixes (longest first where one starts another) and what they parsed.
    const DATA_ERRORS: &[(&str, &str)] = &[
        (
            "Failed to deserialize the JSON body into the target type",
            "the JSON body",
        ),
        ("Failed to deserialize query string", "the query string"),
        ("Failed to deserialize form body", "the form body"),
        ("Failed to deserialize form", "the form"),
    ];
    for (prefix, place) in DATA_ERRORS {
        if let Some(rest) = text.strip_prefix(prefix) {
            return Some(data_error(place, rest.strip_prefix(": ").unwrap_or("")));
        }
    }
    if let Some(rest) = text.strip_prefix("Invalid URL: ") {
        return Some(path_error(rest));
    }
    Some(
        match text {
            "Expected request with `Content-Type: application/json`" => {
                "the request body must be JSON, sent with `Content-Type: application/json`"
            }
            "Form requests must have `Content-Type: application/x-www-form-urlencoded`" => {
                "the request body must be a form, sent with `Content-Type: application/x-www-form-urlencoded`"
            }
            _ if text.starts_with("Request body didn't contain valid UTF-8") => {
                "the request body is not valid UTF-8"
            }
            _ if text.starts_with("Failed to buffer the request body") => {
                "the request body could not be read"
            }
            _ => return None,
        }
        .to_owned(),
    )
}

/// `expected value at line 1 column 2` → `the request body is not valid JSON: expected value (line 1, column 2)`.
fn json_syntax(msg: &str) -> String {
    let (msg, position) = split_position(msg);
    // A syntax error's path, if any, is the place the parser had reached.
    let msg = match msg.split_once(": ") {
        Some((path, rest)) if safe_path(path).is_some() => rest,
        _ => msg,
    };
    let mut out = String::from("the request body is not valid JSON");
    const KNOWN: &[&str] = &[
        "EOF while parsing",
        "expected",
        "trailing comma",
        "trailing characters",
        "key must be",
        "invalid escape",
        "invalid number",
        "number out of range",
        "invalid unicode code point",
        "control character",
        "lone leading surrogate",
        "unexpected end of hex escape",
        "recursion limit exceeded",
    ];
    if KNOWN.iter().any(|k| msg.starts_with(k)) && is_plain(msg, 120) {
        let _ = write!(out, ": {msg}");
    }
    out.push_str(&position);
    out
}

/// `user.age: invalid type: string "x", expected u8 at line 1 column 9`
/// → `invalid value in the JSON body at `user.age`: expected u8, found a string (line 1, column 9)`.
fn data_error(place: &str, msg: &str) -> String {
    let (msg, position) = split_position(msg);
    let (path, msg) = match msg.split_once(": ") {
        Some((path, rest)) if is_serde_message(rest) => (safe_path(path), rest),
        _ => (None, msg),
    };
    let mut out = String::new();
    match serde_reason(msg) {
        Reason::Missing(field) => {
            let _ = write!(out, "{place} is missing the required field `{field}`");
            if let Some(path) = path {
                let _ = write!(out, " in `{path}`");
            }
        }
        Reason::Unknown(field) => {
            let _ = write!(out, "{place} has an unknown field");
            if let Some(field) = field {
                let _ = write!(out, " `{field}`");
            }
        }
        Reason::Duplicate(field) => {
            let _ = write!(out, "{place} has the field `{field}` more than once");
        }
        Reason::Invalid(why) => {
            let _ = write!(out, "invalid value in {place}");
            if let Some(path) = path {
                let _ = write!(out, " at `{path}`");
            }
            if let Some(why) = why {
                let _ = write!(out, ": {why}");
            }
        }
    }
    out.push_str(&position);
    out
}

enum Reason {
    Missing(String),
    Unknown(Option<String>),
    Duplicate(String),
    Invalid(Option<String>),
}

fn is_serde_message(msg: &str) -> bool {
    [
        "invalid type: ",
        "invalid value: ",
        "invalid length ",
        "missing field `",
        "unknown field `",
        "unknown variant `",
        "duplicate field `",
    ]
    .iter()
    .any(|p| msg.starts_with(p))
        || std_parse_reason(msg).is_some()
}

/// Reads serde's standard messages (serde::de::Error's defaults) and std's parse errors.
fn serde_reason(msg: &str) -> Reason {
    if let Some(field) = msg
        .strip_prefix("missing field `")
        .and_then(until_tick)
        .and_then(safe_name)
    {
        return Reason::Missing(field.to_owned());
    }
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        return Reason::Unknown(until_tick(rest).and_then(safe_name).map(str::to_owned));
    }
    if let Some(field) = msg
        .strip_prefix("duplicate field `")
        .and_then(until_tick)
        .and_then(safe_name)
    {
        return Reason::Duplicate(field.to_owned());
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        // The last separator is serde's own: the client's value may contain one too. An
        // enum without variants has none (`…`, there are no variants`).
        let expected = (!rest.ends_with("`, there are no variants"))
            .then(|| rest.rsplit_once("`, expected ").map(|(_, e)| e))
            .flatten();
        return Reason::Invalid(Some(match expected.filter(|e| is_plain(e, 160)) {
            Some(expected) => format!("unknown variant, expected {expected}"),
            None => "unknown variant".to_owned(),
        }));
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            // `<kind> <the client's value>, expected <what the code wants>`
            let Some((unexpected, expected)) = rest.rsplit_once(", expected ") else {
                return Reason::Invalid(None);
            };
            let kind = value_kind(unexpected);
            let mut why = String::new();
            if let Some(expected) = expected_kind(expected) {
                let _ = write!(why, "expected {expected}");
            }
            if let Some(kind) = kind.filter(|_| prefix == "invalid type: ") {
                let sep = if why.is_empty() { "" } else { ", " };
                let _ = write!(why, "{sep}found {kind}");
            }
            return Reason::Invalid((!why.is_empty()).then_some(why));
        }
    }
    if let Some((len, expected)) = msg
        .strip_prefix("invalid length ")
        .and_then(|rest| rest.split_once(", expected "))
        .filter(|(len, _)| len.bytes().all(|b| b.is_ascii_digit()))
    {
        return Reason::Invalid(Some(match expected_kind(expected) {
            Some(expected) => format!("expected {expected}, found {len} element(s)"),
            None => format!("wrong number of elements ({len})"),
        }));
    }
    Reason::Invalid(std_parse_reason(msg).map(str::to_owned))
}

/// What serde says a type expects, without the service's own type names.
fn expected_kind(expected: &str) -> Option<&str> {
    if expected.starts_with("struct ") || expected.starts_with("map") {
        Some("an object")
    } else if expected.starts_with("tuple") || expected.starts_with("a sequence") {
        Some("an array")
    } else if expected.starts_with("unit struct ") {
        Some("null")
    } else if expected.starts_with("enum ") {
        Some("one of the allowed values")
    } else {
        is_plain(expected, 80).then_some(expected)
    }
}

/// The messages of std's `ParseIntError`, `ParseFloatError` and `ParseBoolError`: fixed texts.
fn std_parse_reason(msg: &str) -> Option<&'static str> {
    Some(match msg {
        "invalid digit found in string" => "expected an integer",
        "cannot parse integer from empty string" => "expected an integer, found an empty value",
        "number too large to fit in target type" => "the number is too large",
        "number too small to fit in target type" => "the number is too small",
        "invalid float literal" => "expected a number",
        "cannot parse float from empty string" => "expected a number, found an empty value",
        "provided string was not `true` or `false`" => "expected `true` or `false`",
        _ => return None,
    })
}

/// serde's `Unexpected` display → its kind, without the value.
fn value_kind(unexpected: &str) -> Option<&'static str> {
    const KINDS: &[(&str, &str)] = &[
        ("boolean", "a boolean"),
        ("integer", "an integer"),
        ("floating point", "a number"),
        ("character", "a character"),
        ("string", "a string"),
        ("byte array", "bytes"),
        ("null", "null"),
        ("Option value", "a value"),
        ("unit", "nothing"),
        ("sequence", "an array"),
        ("map", "an object"),
        ("enum", "an enum"),
        ("newtype", "a value"),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| unexpected.starts_with(prefix))
        .map(|(_, kind)| *kind)
}

/// `Cannot parse `id` with value `abc` to a `u32`` → `path parameter must be an integer`.
fn path_error(msg: &str) -> String {
    if msg.starts_with("Cannot parse `") {
        // `key` with value `v` to a `T` (a struct's field) and `v` to a `T` (a single value)
        // cannot be told apart: a client's value may hold "` with value `" itself, making
        // its first part look like a key. So no name is given, only the expected type.
        let expected = msg
            .rsplit_once(" to a `")
            .and_then(|(_, t)| t.strip_suffix('`'));
        return describe_param(None, None, expected);
    }
    if let Some(rest) = msg.strip_prefix("Cannot parse value at index ") {
        let index = rest
            .split_once(' ')
            .and_then(|(i, _)| i.parse::<usize>().ok());
        let expected = msg
            .rsplit_once(" to a `")
            .and_then(|(_, t)| t.strip_suffix('`'));
        return describe_param(None, index, expected);
    }
    if let Some(name) = msg
        .strip_prefix("Invalid UTF-8 in `")
        .and_then(until_tick)
        .and_then(safe_name)
    {
        return format!("path parameter `{name}` is not valid UTF-8");
    }
    "a path parameter is invalid".to_owned()
}

fn describe_param(name: Option<&str>, index: Option<usize>, expected: Option<&str>) -> String {
    let mut out = String::from("path parameter");
    if let Some(name) = name {
        let _ = write!(out, " `{name}`");
    } else if let Some(index) = index {
        let _ = write!(out, " {}", index + 1);
    }
    let kind = expected.map(|t| match t {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "bool" => "`true` or `false`",
        "char" => "a single character",
        _ => "a valid value",
    });
    match kind {
        Some(kind) => {
            let _ = write!(out, " must be {kind}");
        }
        None => out.push_str(" is invalid"),
    }
    out
}

/// Strips serde_json's ` at line L column C` suffix and formats it as ` (line L, column C)`.
fn split_position(msg: &str) -> (&str, String) {
    match msg.rsplit_once(" at line ").and_then(|(m, pos)| {
        let (line, column) = pos.split_once(" column ")?;
        let line: u32 = line.parse().ok()?;
        let column: u32 = column.parse().ok()?;
        Some((m, format!(" (line {line}, column {column})")))
    }) {
        Some(split) => split,
        None => (msg, String::new()),
    }
}

fn until_tick(s: &str) -> Option<&str> {
    s.split_once('`').map(|(name, _)| name)
}

/// A field or parameter name safe to echo: short, ASCII identifier characters.
fn safe_name(name: &str) -> Option<&str> {
    (!name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')))
    .then_some(name)
}

/// A serde_path_to_error path (`items[0].sku`) safe to echo: each name in it no longer than
/// a field name echoed alone (a map's keys are the client's).
fn safe_path(path: &str) -> Option<&str> {
    (!path.is_empty()
        && path.len() <= 2 * MAX_NAME
        && path.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']' | b'?')
        })
        && path
            .split(['.', '[', ']'])
            .all(|name| name.len() <= MAX_NAME))
    .then_some(path)
}

/// Text from the service's own types (expected kinds, variant lists): printable, short, and
/// free of quotes that would carry a client's string.
fn is_plain(s: &str, max: usize) -> bool {
    s.len() <= max
        && s.bytes().all(|b| {
            (b.is_ascii_graphic() || b == b' ') && !matches!(b, b'"' | b'\\' | b'<' | b'>')
        })
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn json_syntax_keeps_position_drops_input() {
        let d =
            describe("Failed to parse the request body as JSON: expected value at line 1 column 9")
                .unwrap();
        assert_eq!(
            d,
            "the request body is not valid JSON: expected value (line 1, column 9)"
        );
    }

    #[test]
    fn json_data_names_field_not_value() {
        let d = describe(
            "Failed to deserialize the JSON body into the target type: user.age: invalid type: string \"s3cr3t\", expected u8 at line 1 column 20",
        )
        .unwrap();
        assert_eq!(
            d,
            "invalid value in the JSON body at `user.age`: expected u8, found a string (line 1, column 20)"
        );
        let d = describe("Failed to deserialize the JSON body into the target type: missing field `email` at line 1 column 2").unwrap();
        assert_eq!(
            d,
            "the JSON body is missing the required field `email` (line 1, column 2)"
        );
        let d = describe("Failed to deserialize the JSON body into the target type: invalid value: integer `-5`, expected u8 at line 1 column 2").unwrap();
        assert_eq!(
            d,
            "invalid value in the JSON body: expected u8 (line 1, column 2)"
        );
    }

    #[test]
    fn unknown_messages_become_generic() {
        let d = describe(
            "Failed to deserialize the JSON body into the target type: when: premature end of input SELECT secret",
        )
        .unwrap();
        assert_eq!(d, "invalid value in the JSON body");
        assert_eq!(describe("database password=hunter2 rejected"), None);
    }

    #[test]
    fn query_and_path() {
        let d =
            describe("Failed to deserialize query string: limit: invalid digit found in string")
                .unwrap();
        assert_eq!(
            d,
            "invalid value in the query string at `limit`: expected an integer"
        );
        let d =
            describe("Invalid URL: Cannot parse `id` with value `<script>` to a `u32`").unwrap();
        assert_eq!(d, "path parameter must be a non-negative integer");
        // A single value that holds "` with value `": its first part is the client's, not a key.
        let d = describe("Invalid URL: Cannot parse `hunter2` with value `x` to a `u32`").unwrap();
        assert_eq!(d, "path parameter must be a non-negative integer");
        let d = describe("Invalid URL: Cannot parse `<script>` to a `i64`").unwrap();
        assert_eq!(d, "path parameter must be an integer");
        let d = describe("Invalid URL: Cannot parse value at index 1 with value `x` to a `bool`")
            .unwrap();
        assert_eq!(d, "path parameter 2 must be `true` or `false`");
    }

    #[test]
    fn unknown_variants_never_echo_the_clients_value() {
        let d = describe(
            "Failed to deserialize the JSON body into the target type: unknown variant `x`, expected EVIL`, expected one of `red`, `green` at line 1 column 30",
        )
        .unwrap();
        assert!(!d.contains("EVIL"), "{d}");
        assert_eq!(
            d,
            "invalid value in the JSON body: unknown variant, expected one of `red`, `green` (line 1, column 30)"
        );
    }

    /// An enum without variants: serde's message ends `there are no variants`, so the last
    /// "`, expected " in it was the client's own, and its text after that was echoed.
    #[test]
    fn an_enum_without_variants_never_echoes_the_clients_value() {
        let d = describe(
            "Failed to deserialize the JSON body into the target type: e: unknown variant `x`, expected EVIL`, there are no variants at line 1 column 30",
        )
        .unwrap();
        assert_eq!(
            d,
            "invalid value in the JSON body at `e`: unknown variant (line 1, column 30)"
        );
    }

    /// A path is at most 80 bytes, but each of its names at most 40, as a field name: one
    /// long map key (the client's) in a short path is not echoed either.
    #[test]
    fn paths_with_a_long_map_key_are_dropped() {
        let key = "MkVttToYy0zQDoPkf9r53jFXrhR1XGDfpiYHXTJBapMx5Och";
        let d = describe(&format!(
            "Failed to deserialize the JSON body into the target type: labels.{key}.v: invalid type: integer `1`, expected a string at line 1 column 68"
        ))
        .unwrap();
        assert_eq!(
            d,
            "invalid value in the JSON body: expected a string, found an integer (line 1, column 68)"
        );
        let forty = "k".repeat(40);
        let d = describe(&format!(
            "Failed to deserialize the JSON body into the target type: labels.{forty}.v: invalid type: integer `1`, expected a string at line 1 column 60"
        ))
        .unwrap();
        assert!(d.contains(&format!("`labels.{forty}.v`")), "{d}");
    }

    #[test]
    fn long_unknown_field_names_are_dropped() {
        let long = "a".repeat(500);
        let d = describe(&format!(
            "Failed to deserialize the JSON body into the target type: unknown field `{long}`, expected `name` at line 1 column 600"
        ))
        .unwrap();
        assert_eq!(d, "the JSON body has an unknown field (line 1, column 600)");
    }
}
