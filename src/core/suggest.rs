//! "Did you mean …?": edit distance between a misspelt name and the names
//! that exist.

/// Optimal-string-alignment distance (Levenshtein plus adjacent
/// transpositions), counted in chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.is_empty() {
        return b.len();
    }
    if b.is_empty() {
        return a.len();
    }
    let width = b.len() + 1;
    // Three rows: two back (for transpositions), one back, current.
    let mut before: Vec<usize> = vec![0; width];
    let mut prev: Vec<usize> = (0..width).collect();
    let mut cur: Vec<usize> = vec![0; width];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            cur[j] = best;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Lowercase, with `-` and `_` made equal: the spellings that differ only in
/// these ways are always suggested.
pub fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// The candidate closest to `input`, if it is close enough to be a likely
/// typo: a case/`-`/`_` variant, or at most 1 edit for names of up to 4
/// chars and at most 2 edits for longer ones. Ties go to the earlier
/// candidate.
pub fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let wanted = normalize(input);
    let mut best: Option<(usize, &'a str)> = None;
    for &candidate in candidates {
        let norm = normalize(candidate);
        if norm == wanted {
            return Some(candidate);
        }
        let longest = wanted.chars().count().max(norm.chars().count());
        let limit = if longest <= 4 { 1 } else { 2 };
        let d = edit_distance(&wanted, &norm);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("stop_timout", "stop_timeout"), 1);
        assert_eq!(edit_distance("restrat", "restart"), 1); // transposition
        assert_eq!(edit_distance("ca", "abc"), 3); // OSA, not full Damerau
        assert_eq!(edit_distance("héllo", "hello"), 1); // chars, not bytes
    }

    #[test]
    fn suggestions() {
        let keys = [
            "command",
            "cwd",
            "env",
            "stop_timeout",
            "stop_signal",
            "replicas",
        ];
        assert_eq!(did_you_mean("stop_timout", &keys), Some("stop_timeout"));
        assert_eq!(did_you_mean("stop-timeout", &keys), Some("stop_timeout"));
        assert_eq!(did_you_mean("Command", &keys), Some("command"));
        assert_eq!(did_you_mean("replcias", &keys), Some("replicas"));
        assert_eq!(did_you_mean("comand", &keys), Some("command"));
        // Short names need to be very close.
        assert_eq!(did_you_mean("cpu", &keys), None);
        assert_eq!(did_you_mean("envv", &keys), Some("env"));
        assert_eq!(did_you_mean("something_else", &keys), None);
        assert_eq!(
            did_you_mean("on_failure", &["always", "on-failure", "never"]),
            Some("on-failure")
        );
        assert_eq!(did_you_mean("x", &[]), None);
    }
}
