//! Matching, ranking and snippets of search terms over one user's own rows,
//! for the SQLite backend, which scans the caller's memories by the
//! `(user_id, seq)` index instead of asking the shared FTS5 index (whose
//! doclists, prefix expansion and bm25 statistics span every user, so a query's
//! cost and its scores depended on other users' rows).
//!
//! Words are tokenized like FTS5 `unicode61 remove_diacritics 2`: runs of
//! letters and digits, lower-cased, diacritics folded. The terms follow
//! `search_query`: a word of four or more characters matches by its stem as a
//! prefix, shorter words and phrase words exactly, `prefix*` as typed.
//!
//! Ranking is Okapi BM25 as FTS5 computes it (k1 = 1.2, b = 0.75, title weight
//! 10, content weight 1, a row's length counted over both columns), with the
//! document frequencies and average length taken over the caller's scanned
//! rows only, so another user's rows never change a score.

use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

use super::search_query::{word_match, Term};

const K1: f64 = 1.2;
const B: f64 = 0.75;
const TITLE_WEIGHT: f64 = 10.0;
const CONTENT_WEIGHT: f64 = 1.0;
/// Tokens in a snippet, like FTS5 `snippet(…, 24)`.
const SNIPPET_TOKENS: usize = 24;

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    prefix: bool,
}

impl Pattern {
    fn matches(&self, token: &str) -> bool {
        if self.prefix {
            token.starts_with(&self.text)
        } else {
            token == self.text
        }
    }
}

/// The compiled terms of one query: each term is a phrase of one or more
/// patterns that must match consecutive tokens of one column.
#[derive(Debug, Clone)]
pub struct Matcher {
    phrases: Vec<Vec<Pattern>>,
}

/// Lower-case and fold diacritics (`É` -> `e`).
fn fold(word: &str) -> String {
    word.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Byte ranges of the tokens of `text`.
fn token_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        let start = loop {
            let (i, c) = chars.next()?;
            if c.is_alphanumeric() {
                break i;
            }
        };
        let mut end = text.len();
        while let Some(&(i, c)) = chars.peek() {
            if c.is_alphanumeric() || is_combining_mark(c) {
                chars.next();
            } else {
                end = i;
                break;
            }
        }
        Some((start, end))
    })
}

/// The folded tokens of `text`, reusing `out`.
fn tokenize(text: &str, out: &mut Vec<String>) {
    out.clear();
    for (s, e) in token_spans(text) {
        let raw = &text[s..e];
        if raw.is_ascii() {
            out.push(raw.to_ascii_lowercase());
        } else {
            out.push(fold(raw));
        }
    }
}

impl Matcher {
    pub fn new(terms: &[Term]) -> Self {
        let phrases = terms
            .iter()
            .map(|t| match t {
                Term::Word(w) => {
                    let (text, prefix) = word_match(w);
                    vec![Pattern {
                        text: fold(&text),
                        prefix,
                    }]
                }
                Term::Prefix(w) => vec![Pattern {
                    text: fold(w),
                    prefix: true,
                }],
                Term::Phrase(ws) => ws
                    .iter()
                    .map(|w| Pattern {
                        text: fold(w),
                        prefix: false,
                    })
                    .collect(),
            })
            .collect();
        Self { phrases }
    }

    fn count(phrase: &[Pattern], tokens: &[String]) -> u32 {
        if tokens.len() < phrase.len() {
            return 0;
        }
        (0..=tokens.len() - phrase.len())
            .filter(|&i| phrase.iter().zip(&tokens[i..]).all(|(p, t)| p.matches(t)))
            .count() as u32
    }
}

/// A row that matched every term.
#[derive(Debug, Clone)]
pub struct Candidate<K> {
    pub key: K,
    /// Weighted frequency of each phrase (title × 10 + content).
    freq: Vec<f64>,
    len: f64,
}

/// Accumulates the caller's rows one at a time, then ranks the matches.
pub struct Ranker<K> {
    matcher: Matcher,
    rows: u64,
    total_len: f64,
    /// Rows containing each phrase (for its IDF).
    containing: Vec<u64>,
    candidates: Vec<Candidate<K>>,
    title_tokens: Vec<String>,
    content_tokens: Vec<String>,
}

impl<K> Ranker<K> {
    pub fn new(matcher: Matcher) -> Self {
        let n = matcher.phrases.len();
        Self {
            matcher,
            rows: 0,
            total_len: 0.0,
            containing: vec![0; n],
            candidates: Vec::new(),
            title_tokens: Vec::new(),
            content_tokens: Vec::new(),
        }
    }

    /// Look at one row.
    pub fn add(&mut self, key: K, title: &str, content: &str) {
        tokenize(title, &mut self.title_tokens);
        tokenize(content, &mut self.content_tokens);
        let len = (self.title_tokens.len() + self.content_tokens.len()) as f64;
        self.rows += 1;
        self.total_len += len;
        let mut freq = Vec::with_capacity(self.matcher.phrases.len());
        let mut all = true;
        for (i, phrase) in self.matcher.phrases.iter().enumerate() {
            let t = Matcher::count(phrase, &self.title_tokens);
            let c = Matcher::count(phrase, &self.content_tokens);
            if t + c > 0 {
                self.containing[i] += 1;
            } else {
                all = false;
            }
            freq.push(TITLE_WEIGHT * f64::from(t) + CONTENT_WEIGHT * f64::from(c));
        }
        if all {
            self.candidates.push(Candidate { key, freq, len });
        }
    }

    /// Every match with its score (higher is better), unordered.
    pub fn finish(self) -> Vec<(K, f64)> {
        let n = self.rows as f64;
        let avg = if self.rows == 0 {
            1.0
        } else {
            (self.total_len / n).max(1.0)
        };
        let idf: Vec<f64> = self
            .containing
            .iter()
            .map(|&c| {
                let c = c as f64;
                let v = ((n - c + 0.5) / (c + 0.5)).ln();
                if v <= 0.0 {
                    1e-6
                } else {
                    v
                }
            })
            .collect();
        self.candidates
            .into_iter()
            .map(|c| {
                let score = c
                    .freq
                    .iter()
                    .zip(&idf)
                    .map(|(f, idf)| idf * (f * (K1 + 1.0)) / (f + K1 * (1.0 - B + B * c.len / avg)))
                    .sum();
                (c.key, score)
            })
            .collect()
    }
}

/// The `score` a search returns for a hit ranked `raw` when the best hit
/// of the same search ranked `best`: 0-100, 100 for the best, the others in
/// proportion (50 ranks half as high), rounded to one decimal. The raw
/// ranks (BM25 on SQLite, `ts_rank_cd` on Postgres) have no fixed scale,
/// and BM25 is tiny (1e-6) when a word is in most of the caller's memories;
/// the proportion reads the same on both backends and keeps the order of
/// the ranks. All ranks zero (nothing to tell them apart) are all 100.
pub fn relevance(raw: f64, best: f64) -> f64 {
    if !(best > 0.0 && raw.is_finite()) {
        return 100.0;
    }
    ((raw / best).clamp(0.0, 1.0) * 1000.0).round() / 10.0
}

/// An excerpt of `content` of up to 24 tokens around the most matches, with
/// each matching token wrapped in `<mark>…</mark>` and `…` where text was
/// cut (like FTS5 `snippet`). Not HTML-escaped.
pub fn snippet(matcher: &Matcher, content: &str) -> String {
    let spans: Vec<(usize, usize)> = token_spans(content).collect();
    if spans.is_empty() {
        return String::new();
    }
    let mut tokens = Vec::with_capacity(spans.len());
    tokenize(content, &mut tokens);
    let mut hit = vec![false; tokens.len()];
    for phrase in &matcher.phrases {
        if tokens.len() < phrase.len() {
            continue;
        }
        for i in 0..=tokens.len() - phrase.len() {
            if phrase.iter().zip(&tokens[i..]).all(|(p, t)| p.matches(t)) {
                for h in &mut hit[i..i + phrase.len()] {
                    *h = true;
                }
            }
        }
    }
    // The window with the most marked tokens; the earliest on ties.
    let width = SNIPPET_TOKENS.min(tokens.len());
    let mut best = (0usize, hit[..width].iter().filter(|h| **h).count());
    let mut marked = best.1;
    for start in 1..=tokens.len() - width {
        marked += usize::from(hit[start + width - 1]);
        marked -= usize::from(hit[start - 1]);
        if marked > best.1 {
            best = (start, marked);
        }
    }
    // Start a few tokens before the first mark, when the window allows.
    let (mut start, _) = best;
    if let Some(first) = (start..start + width).find(|&i| hit[i]) {
        let lead = (first - start).min(3);
        let slack = first - start - lead;
        start = (start + slack).min(tokens.len() - width);
    }
    let end = start + width;
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = if start == 0 { 0 } else { spans[start].0 };
    for i in start..end {
        let (s, e) = spans[i];
        out.push_str(&content[at..s]);
        if hit[i] {
            out.push_str("<mark>");
            out.push_str(&content[s..e]);
            out.push_str("</mark>");
        } else {
            out.push_str(&content[s..e]);
        }
        at = e;
    }
    if end < tokens.len() {
        out.push('…');
    } else {
        out.push_str(&content[at..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::search_query::parse;

    fn ranked(query: &str, docs: &[(&str, &str)]) -> Vec<(usize, f64)> {
        let mut r = Ranker::new(Matcher::new(&parse(query)));
        for (i, (t, c)) in docs.iter().enumerate() {
            r.add(i, t, c);
        }
        let mut out = r.finish();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    #[test]
    fn matching_follows_the_query_syntax() {
        let docs = [
            ("Kubernetes upgrade", "drain nodes first"),
            ("notes", "upgraded the cluster; error budget spent"),
            ("Café", "the error in the budget"),
            ("ab", "abc abd"),
        ];
        let ids = |q: &str| {
            let mut v: Vec<usize> = ranked(q, &docs).into_iter().map(|(i, _)| i).collect();
            v.sort();
            v
        };
        assert_eq!(ids("upgrades"), [0, 1], "stem prefix");
        assert_eq!(ids("\"error budget\""), [1], "phrase");
        assert_eq!(ids("error budget"), [1, 2], "words anywhere");
        assert_eq!(ids("cafe"), [2], "diacritics folded");
        assert_eq!(ids("ab*"), [3], "a short prefix is the exact word");
        assert_eq!(ids("abc*"), [3]);
        assert_eq!(ids("a*"), Vec::<usize>::new(), "never expanded");
    }

    #[test]
    fn title_and_frequency_rank_higher() {
        let docs = [
            ("other", "kubernetes once among many other words here"),
            ("Kubernetes", "kubernetes twice kubernetes"),
            ("filler", "nothing"),
            ("filler", "nothing"),
        ];
        let order: Vec<usize> = ranked("kubernetes", &docs)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(order, [1, 0]);
    }

    #[test]
    fn relevance_is_a_share_of_the_best_rank() {
        let check = |raw: f64, best: f64, expected: f64| {
            assert_eq!(relevance(raw, best), expected, "{raw} of {best}");
        };
        check(2e-6, 2e-6, 100.0);
        check(1e-6, 2e-6, 50.0);
        check(0.3, 0.9, 33.3);
        check(1.0, 3.0, 33.3);
        check(2.0, 3.0, 66.7);
        check(0.0004, 1.0, 0.0);
        check(0.0, 0.0, 100.0);
        // Over a fixture's ranks the order stays (ties may appear, never swaps).
        let mut raw: Vec<f64> = ranked(
            "kubernetes",
            &[
                ("Kubernetes", "kubernetes twice kubernetes"),
                ("other", "kubernetes once among many other words here"),
                ("kubernetes notes", "nodes"),
                ("filler", "nothing"),
            ],
        )
        .into_iter()
        .map(|(_, s)| s)
        .collect();
        raw.sort_by(|a, b| b.total_cmp(a));
        let shown: Vec<f64> = raw.iter().map(|&s| relevance(s, raw[0])).collect();
        assert_eq!(shown[0], 100.0);
        assert!(shown.windows(2).all(|w| w[0] >= w[1]), "{shown:?}");
        assert!(shown.iter().all(|s| (0.0..=100.0).contains(s)), "{shown:?}");
    }

    #[test]
    fn snippets_mark_matches() {
        let m = Matcher::new(&parse("budget"));
        assert_eq!(
            snippet(&m, "When the error budget is spent, freeze deploys."),
            "When the error <mark>budget</mark> is spent, freeze deploys."
        );
        let long = format!("{} budget {}", "word ".repeat(40), "tail ".repeat(40));
        let s = snippet(&m, &long);
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("<mark>budget</mark>"), "{s}");
        assert_eq!(snippet(&m, "no match at all"), "no match at all");
    }
}
