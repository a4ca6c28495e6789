//! Secrets out of logged error text: an error chain or panic message can quote a database URL
//! with its password, or a `token=…` pair, and the log is copied everywhere.

use std::borrow::Cow;

/// Keys whose `key=value` values are replaced (matched case-insensitively, `_`/`-` alike).
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "api_key",
    "apikey",
    "client_secret",
];

const REDACTED: &str = "[redacted]";

/// `text` with URL passwords (`postgres://app:pw@db`) and the values of secret-looking
/// `key=value` pairs replaced by `[redacted]`. Borrowed when there is nothing to hide. For
/// error text that is logged or shown (a readiness check's error, a panic message).
///
/// ```
/// let text = hardening_errors::redact_secrets("connect postgres://app:hunter2@db-7/users failed");
/// assert_eq!(text, "connect postgres://app:[redacted]@db-7/users failed");
/// ```
pub fn redact_secrets(text: &str) -> Cow<'_, str> {
    if !text.contains("://") && !text.contains('=') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        // URL userinfo: scheme://user:password@host
        if text[i..].starts_with("://") {
            let start = i + 3;
            let end = text[start..]
                .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
                .map_or(text.len(), |e| start + e);
            let authority = &text[start..end];
            if let Some(at) = authority.rfind('@')
                && let Some(colon) = authority[..at].find(':')
            {
                out.push_str("://");
                out.push_str(&authority[..=colon]);
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
                changed = true;
                i = end;
                continue;
            }
        }
        // key=value with a secret-looking key.
        if bytes[i] == b'=' {
            let key_start = text[..i]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .map_or(0, |p| p + 1);
            let key = &text[key_start..i];
            if SECRET_KEYS
                .iter()
                .any(|k| key.replace('-', "_").eq_ignore_ascii_case(k))
            {
                // A quoted value (`token='…'`) ends at its closing quote.
                let quote = text[i + 1..]
                    .chars()
                    .next()
                    .filter(|c| matches!(c, '\'' | '"'));
                let value_start = i + 1 + quote.map_or(0, char::len_utf8);
                let value_end = text[value_start..]
                    .find(|c: char| match quote {
                        Some(q) => c == q,
                        None => {
                            c.is_whitespace() || matches!(c, '&' | ';' | ',' | '\'' | '"' | ')')
                        }
                    })
                    .map_or(text.len(), |e| value_start + e);
                if value_end > value_start {
                    out.push_str(&text[i..value_start]);
                    out.push_str(REDACTED);
                    changed = true;
                    i = value_end;
                    continue;
                }
            }
        }
        let ch = text[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_secret_pairs_are_redacted() {
        assert_eq!(
            redact_secrets("connection refused: postgres://app:hunter2@db-7/users SELECT 1"),
            "connection refused: postgres://app:[redacted]@db-7/users SELECT 1"
        );
        assert_eq!(
            redact_secrets("handler panicked: password=hunter2 at src/db.rs:42"),
            "handler panicked: password=[redacted] at src/db.rs:42"
        );
        assert_eq!(
            redact_secrets("GET /cb?code=1&Access-Token=abc.def&x=2"),
            "GET /cb?code=1&Access-Token=[redacted]&x=2"
        );
        assert_eq!(
            redact_secrets("SELECT * FROM users WHERE token='s3cr3t'"),
            "SELECT * FROM users WHERE token='[redacted]'"
        );
        assert_eq!(
            redact_secrets("redis://cache:6379/0"),
            "redis://cache:6379/0"
        );
        assert_eq!(redact_secrets("https://user@host/x"), "https://user@host/x");
        assert!(matches!(
            redact_secrets("plain text, a=b"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            redact_secrets("ünïcode password=ø x"),
            "ünïcode password=[redacted] x"
        );
    }
}
