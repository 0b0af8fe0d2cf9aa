//! The memory search syntax and its translation to each backend.
//!
//! Syntax: words (all must match), `"quoted phrases"`, `prefix*`. Anything
//! else in the input is treated as text: punctuation separates words, FTS
//! operators (`AND`, `NEAR`, `-`, `:`, `^`, parentheses) and SQL fragments are
//! just words or separators, an unbalanced quote runs to the end of the input.
//! The output never carries user text into query syntax unescaped: every term
//! is alphanumeric (Unicode letters and digits) by construction.
//!
//! Matching: the index holds words as written (lower-cased, diacritics
//! folded on SQLite). A query word of four or more characters matches by its
//! English stem as a prefix (`upgrades` -> `upgrad*` finds upgrade, upgraded,
//! upgrading); shorter words and the words of a phrase match exactly; a
//! `prefix*` matches as typed. The same rule on both backends keeps their
//! results identical.
//!
//! Bounds: a query has at most [`MAX_TERMS`] words (each word of a phrase
//! counts; the caller refuses more), and a prefix shorter than
//! [`MIN_PREFIX_CHARS`] is never expanded: `ab*` is the exact word `ab`.

/// Longest accepted query, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;
/// Most words in one query (each word of a phrase counts).
pub const MAX_TERMS: usize = 16;
/// Shortest prefix that is expanded; a shorter `prefix*` is an exact word.
pub const MIN_PREFIX_CHARS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Term {
    Word(String),
    Prefix(String),
    Phrase(Vec<String>),
}

/// Parse user input into terms. Empty when the input holds no word.
pub fn parse(input: &str) -> Vec<Term> {
    let mut terms = Vec::new();
    let mut chars = input.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, terms: &mut Vec<Term>, prefix: bool| {
        if !word.is_empty() {
            let w = std::mem::take(word).to_lowercase();
            let prefix = prefix && w.chars().count() >= MIN_PREFIX_CHARS;
            terms.push(if prefix {
                Term::Prefix(w)
            } else {
                Term::Word(w)
            });
        }
    };
    while let Some(c) = chars.next() {
        if c == '"' {
            flush(&mut word, &mut terms, false);
            let mut phrase = Vec::new();
            let mut current = String::new();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                if c.is_alphanumeric() {
                    current.push(c);
                } else if !current.is_empty() {
                    phrase.push(std::mem::take(&mut current).to_lowercase());
                }
            }
            if !current.is_empty() {
                phrase.push(current.to_lowercase());
            }
            match phrase.len() {
                0 => {}
                1 => terms.extend(phrase.into_iter().map(Term::Word)),
                _ => terms.push(Term::Phrase(phrase)),
            }
        } else if c.is_alphanumeric() {
            word.push(c);
        } else if c == '*' && !word.is_empty() {
            flush(&mut word, &mut terms, true);
        } else {
            flush(&mut word, &mut terms, false);
        }
    }
    flush(&mut word, &mut terms, false);
    let mut seen = std::collections::HashSet::new();
    terms.retain(|t| seen.insert(t.clone()));
    terms
}

/// How many words `terms` hold (each word of a phrase counts): the number
/// checked against [`MAX_TERMS`].
pub fn word_count(terms: &[Term]) -> usize {
    terms
        .iter()
        .map(|t| match t {
            Term::Phrase(ws) => ws.len(),
            _ => 1,
        })
        .sum()
}

/// Shortest word matched by its stem rather than exactly.
const STEM_MIN_CHARS: usize = 4;

/// How a plain word is looked up: `(text, is_prefix)`.
pub fn word_match(w: &str) -> (String, bool) {
    if w.chars().count() < STEM_MIN_CHARS {
        return (w.to_owned(), false);
    }
    let stemmer = rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English);
    let stem = stemmer.stem(w);
    // Stems are lower-case alphanumerics of the word; keep only those chars.
    let stem: String = stem.chars().filter(|c| c.is_alphanumeric()).collect();
    if stem.is_empty() {
        (w.to_owned(), false)
    } else {
        (stem, true)
    }
}

/// A `to_tsquery` expression for `terms`. Words are alphanumeric, so they
/// need no quoting; phrases use `<->`, prefixes `:*`.
pub fn to_tsquery(terms: &[Term]) -> String {
    terms
        .iter()
        .map(|t| match t {
            Term::Word(w) => match word_match(w) {
                (s, true) => format!("{s}:*"),
                (s, false) => s,
            },
            Term::Prefix(w) => format!("{w}:*"),
            Term::Phrase(ws) => format!("({})", ws.join(" <-> ")),
        })
        .collect::<Vec<_>>()
        .join(" & ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, ts: &str) {
        let terms = parse(input);
        assert_eq!(to_tsquery(&terms), ts, "tsquery for {input:?}");
    }

    #[test]
    fn syntax() {
        check("Rust async", "rust:* & async:*");
        check("upgrades running", "upgrad:* & run:*");
        check("go api", "go & api");
        check(
            r#""error handling" tokio"#,
            "(error <-> handling) & tokio:*",
        );
        check("deploy*", "deploy:*");
        check("observab*", "observab:*");
        check(r#""single""#, "singl:*");
    }

    #[test]
    fn hostile_input_is_text() {
        check(r#"unbalanced "quote here"#, "unbalanc:* & (quote <-> here)");
        check("a AND b OR NOT c", "a & and & b & or & not & c");
        check(
            "x'; DROP TABLE memories; --",
            "x & drop:* & tabl:* & memori:*",
        );
        check(
            "title:secret NEAR(a b) -x ^y",
            "titl:* & secret:* & near:* & a & b & x & y",
        );
        check("*** \"\" ()", "");
        check("&|!<->:*", "");
        assert!(parse("   ").is_empty());
        let long = "word ".repeat(200);
        assert_eq!(parse(&long).len(), 1, "duplicates collapse");
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(word_count(&parse(&many)), 100, "counted, not truncated");
        assert_eq!(word_count(&parse(r#""a b c" d"#)), 4);
    }

    #[test]
    fn short_prefixes_are_exact_words() {
        check("a* b*", "a & b");
        check("ab*", "ab");
        check("abc*", "abc:*");
        // `ab*` and `ab` are the same term.
        assert_eq!(parse("ab* ab").len(), 1);
    }
}
