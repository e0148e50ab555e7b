//! Tolerant key matching (CONTRACT §3.1): keys are compared ignoring case, `_` and `-`.

/// The folded form of a key: lower-case, with `_` and `-` removed.
pub fn fold_key(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}
