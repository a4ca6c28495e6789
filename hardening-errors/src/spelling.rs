//! The known name a misspelled one most likely meant, for the "did you mean …?" of
//! configuration errors.

/// The name of `known` that `name` is most likely a typo of: at most three letters added,
/// removed or changed, ASCII case and surrounding spaces aside. The nearest; the first of
/// equally near ones.
///
/// ```
/// use hardening_errors::closest_name;
///
/// let known = ["img-src", "script-src", "style-src"];
/// assert_eq!(closest_name("scirpt-src", &known), Some("script-src"));
/// assert_eq!(closest_name(" IMG_SRC", &known), Some("img-src"));
/// assert_eq!(closest_name("nonsense", &known), None);
/// ```
pub fn closest_name<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let name = name.trim();
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The name of `known` that `name` is a near miss of: at most one letter added, removed or
/// changed for a known name of four letters or fewer, two for a longer one (ASCII case and
/// surrounding spaces aside). For a word that may well be meant as something else, where
/// [`closest_name`]'s three letters would catch too much: `tracing` is three letters from
/// `trace`, and a target name in `RUST_LOG`, not a misspelt level.
///
/// ```
/// use hardening_errors::near_miss;
///
/// let levels = ["trace", "debug", "info", "warn", "error", "off"];
/// assert_eq!(near_miss("infoo", &levels), Some("info"));
/// assert_eq!(near_miss("debgu", &levels), Some("debug"));
/// assert_eq!(near_miss("tracing", &levels), None);
/// assert_eq!(near_miss("wasm", &levels), None);
/// ```
pub fn near_miss<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let name = name.trim();
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= if k.len() <= 4 { 1 } else { 2 })
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, by bytes, ASCII case aside.
fn edit_distance(a: &str, b: &str) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.bytes().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(!ca.eq_ignore_ascii_case(&cb)));
            diagonal = above;
        }
    }
    row[b.len()]
}
