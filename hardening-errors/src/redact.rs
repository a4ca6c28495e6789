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
    if !text.contains("://") && !text.contains('=') && !text.contains(':') && !text.contains(' ') {
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
        // `key=value` or JSON's `"key": "value"` with a secret-looking key, or a scheme and
        // its credentials (`Bearer …`, `Basic …`).
        let separator = match bytes[i] {
            b'=' => Some((
                word_start(&text[..i], |c| {
                    c.is_ascii_alphanumeric() || c == '_' || c == '-'
                }),
                i + 1,
            )),
            b'"' if text[i + 1..].trim_start().starts_with(':') => text[..i]
                .rfind('"')
                .map(|p| (p + 1, i + 1 + text[i + 1..].find(':').unwrap_or(0) + 1)),
            b' ' => Some((0, i + 1)).filter(|_| auth_scheme_before(text, i)),
            _ => None,
        };
        if let Some((key_start, after)) = separator
            && (bytes[i] == b' ' || is_secret_key(&text[key_start..i]))
        {
            let after = after + (text[after..].len() - text[after..].trim_start().len());
            {
                // A quoted value (`token='…'`) ends at its closing quote.
                let quote = text[after..]
                    .chars()
                    .next()
                    .filter(|c| matches!(c, '\'' | '"'));
                let value_start = after + quote.map_or(0, char::len_utf8);
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

/// A secret-looking key: one of [`SECRET_KEYS`], alone or as the last word of a longer one
/// (`db_password`, `github-token`, `x_api_key`), case and `-`/`_` aside.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace('-', "_");
    SECRET_KEYS.iter().any(|k| {
        key.strip_suffix(k)
            .is_some_and(|rest| rest.is_empty() || rest.ends_with('_'))
    })
}

/// Where the run of `in_word` characters that ends `text` starts (a char boundary).
fn word_start(text: &str, in_word: impl Fn(char) -> bool) -> usize {
    text.char_indices()
        .rev()
        .find(|(_, c)| !in_word(*c))
        .map_or(0, |(p, c)| p + c.len_utf8())
}

/// `text[..space]` ends with an HTTP authentication scheme whose credentials follow
/// (`Authorization: Bearer eyJ…`).
fn auth_scheme_before(text: &str, space: usize) -> bool {
    let word = &text[word_start(&text[..space], |c| c.is_ascii_alphabetic())..space];
    ["bearer", "basic"]
        .iter()
        .any(|scheme| word.eq_ignore_ascii_case(scheme))
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
        assert_eq!(redact_secrets("password=hunter2"), "password=[redacted]");
        // A key right after a character of several bytes (this once sliced inside it).
        assert_eq!(
            redact_secrets("ø=1 øtoken=2 é Bearer x"),
            "ø=1 øtoken=[redacted] é Bearer [redacted]"
        );
    }

    #[test]
    fn no_text_makes_it_panic() {
        // Every string of up to 4 pieces from these (some of several bytes): the separators
        // it looks for next to characters that are not ASCII.
        let pieces = [
            "=",
            "\"",
            ":",
            " ",
            "@",
            "/",
            "://",
            "'",
            "ø",
            "é=",
            "token",
            "Bearer",
            "a:b@",
            "\":",
            "password=",
        ];
        let mut text = String::new();
        let n = pieces.len();
        for code in 0..n.pow(4) {
            text.clear();
            let mut c = code;
            for _ in 0..4 {
                text.push_str(pieces[c % n]);
                c /= n;
            }
            let _ = redact_secrets(&text);
        }
    }

    #[test]
    fn longer_keys_json_and_authorization_schemes_are_redacted() {
        assert_eq!(
            redact_secrets("config: db_password=hunter2 GITHUB-TOKEN=ghp_x x_api_key='k'"),
            "config: db_password=[redacted] GITHUB-TOKEN=[redacted] x_api_key='[redacted]'"
        );
        // Only a whole word: `tokens` and `passwordless` are not secret keys.
        assert_eq!(
            redact_secrets("tokens=3 passwordless=true"),
            "tokens=3 passwordless=true"
        );
        assert_eq!(
            redact_secrets(r#"bad body {"user":"bob","password": "hunter2","db_token":"t"}"#),
            r#"bad body {"user":"bob","password": "[redacted]","db_token":"[redacted]"}"#
        );
        assert_eq!(
            redact_secrets("upstream sent Authorization: Bearer eyJhbGc.x.y to us"),
            "upstream sent Authorization: Bearer [redacted] to us"
        );
        assert_eq!(
            redact_secrets("authorization: basic dXNlcjpwdw=="),
            "authorization: basic [redacted]"
        );
        assert_eq!(
            redact_secrets("the token expired at 12:00"),
            "the token expired at 12:00"
        );
    }
}
