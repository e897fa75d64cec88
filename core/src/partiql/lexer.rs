//! The PartiQL lexer: statement text into tokens (names, quoted names, strings, numbers,
//! punctuation), skipping whitespace and `--` / `/* */` comments.

use super::syntax_error;
use crate::Result;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// A bare word: a keyword or a name, as written.
    Word(String),
    /// A double-quoted name, unescaped.
    QuotedName(String),
    /// A single-quoted string, unescaped.
    Str(String),
    /// A number literal, as written.
    Number(String),
    /// `?`
    Param,
    /// Punctuation and operators: `* , . ( ) [ ] { } << >> : = <> != < <= > >= + - ;`
    Symbol(&'static str),
}

impl Token {
    /// True for the bare word `keyword`, in any case.
    pub(crate) fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(keyword))
    }
}

/// Where a token is in the statement: its line and column, counted in characters from 1, and
/// its length in characters. DynamoDB ends some messages with it, as `at 1:52:7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    line: usize,
    column: usize,
    len: usize,
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.line, self.column, self.len)
    }
}

/// Symbols, longest first so `<=` is not read as `<` then `=`.
const SYMBOLS: &[&str] = &[
    "<<", ">>", "<>", "!=", "<=", ">=", "*", ",", ".", "(", ")", "[", "]", "{", "}", ":", "=", "<",
    ">", "+", "-", ";",
];

/// Splits `text` into tokens, each with its [`Span`] (the second list, in step).
pub(crate) fn tokenize(text: &str) -> Result<(Vec<Token>, Vec<Span>)> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut spans = Vec::new();
    // Lines are counted as far as `counted`, the last starting at `line_start`.
    let (mut line, mut line_start, mut counted) = (1, 0, 0);
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        let (start, before) = (i, tokens.len());
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && at(i + 1) == Some('-') {
            while at(i).is_some_and(|c| c != '\n') {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == Some('*') {
            i += 2;
            loop {
                match (at(i), at(i + 1)) {
                    (Some('*'), Some('/')) => break,
                    (None, _) => return Err(syntax_error("")),
                    _ => i += 1,
                }
            }
            i += 2;
        } else if c == '\'' || c == '"' {
            // A quote inside is written twice.
            let mut value = String::new();
            i += 1;
            loop {
                match at(i) {
                    None => return Err(syntax_error("Unterminated quoted text")),
                    Some(q) if q == c && at(i + 1) == Some(c) => {
                        value.push(c);
                        i += 2;
                    }
                    Some(q) if q == c => break,
                    Some(other) => {
                        value.push(other);
                        i += 1;
                    }
                }
            }
            i += 1;
            tokens.push(if c == '\'' {
                Token::Str(value)
            } else {
                Token::QuotedName(value)
            });
        } else if c.is_ascii_digit() || (c == '.' && at(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while at(i).is_some_and(|d| d.is_ascii_digit()) {
                i += 1;
            }
            if at(i) == Some('.') {
                i += 1;
                while at(i).is_some_and(|d| d.is_ascii_digit()) {
                    i += 1;
                }
            }
            if matches!(at(i), Some('e' | 'E')) {
                let mut j = i + 1;
                if matches!(at(j), Some('+' | '-')) {
                    j += 1;
                }
                if at(j).is_some_and(|d| d.is_ascii_digit()) {
                    i = j;
                    while at(i).is_some_and(|d| d.is_ascii_digit()) {
                        i += 1;
                    }
                }
            }
            tokens.push(Token::Number(
                chars.get(start..i).unwrap_or_default().iter().collect(),
            ));
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while at(i).is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                i += 1;
            }
            tokens.push(Token::Word(
                chars.get(start..i).unwrap_or_default().iter().collect(),
            ));
        } else if c == '?' {
            tokens.push(Token::Param);
            i += 1;
        } else {
            let rest: String = chars
                .get(i..(i + 2).min(chars.len()))
                .unwrap_or_default()
                .iter()
                .collect();
            let symbol = SYMBOLS
                .iter()
                .find(|s| rest.starts_with(**s))
                .ok_or_else(|| match c {
                    // A `#` comment is refused with nothing said, as an unterminated block
                    // comment is (conformance partiqlGrammar.test.ts, AWS).
                    '#' => syntax_error(""),
                    _ => syntax_error(&format!("Unexpected character: {c}")),
                })?;
            tokens.push(Token::Symbol(symbol));
            i += symbol.len();
        }
        if tokens.len() > before {
            for (at, c) in chars.iter().enumerate().take(start).skip(counted) {
                if *c == '\n' {
                    line += 1;
                    line_start = at + 1;
                }
            }
            counted = start;
            spans.push(Span {
                line,
                column: start - line_start + 1,
                len: i - start,
            });
        }
    }
    Ok((tokens, spans))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_count_characters_from_one() {
        let (_, spans) = tokenize("SELECT é\n  FROM 'it''s' <<").unwrap();
        let shown: Vec<String> = spans.iter().map(Span::to_string).collect();
        assert_eq!(shown, ["1:1:6", "1:8:1", "2:3:4", "2:8:7", "2:16:2"]);
    }

    #[test]
    fn tokens_of_a_statement() {
        let (tokens, _) = tokenize(
            "SELECT a.b[1] FROM \"t\"\"x\" -- note\n WHERE k = 'it''s' AND n >= -1.5e3 /* c */ AND s = <<?>>",
        )
        .unwrap();
        assert_eq!(
            tokens,
            vec![
                Token::Word("SELECT".into()),
                Token::Word("a".into()),
                Token::Symbol("."),
                Token::Word("b".into()),
                Token::Symbol("["),
                Token::Number("1".into()),
                Token::Symbol("]"),
                Token::Word("FROM".into()),
                Token::QuotedName("t\"x".into()),
                Token::Word("WHERE".into()),
                Token::Word("k".into()),
                Token::Symbol("="),
                Token::Str("it's".into()),
                Token::Word("AND".into()),
                Token::Word("n".into()),
                Token::Symbol(">="),
                Token::Symbol("-"),
                Token::Number("1.5e3".into()),
                Token::Word("AND".into()),
                Token::Word("s".into()),
                Token::Symbol("="),
                Token::Symbol("<<"),
                Token::Param,
                Token::Symbol(">>"),
            ]
        );
    }

    #[test]
    fn bad_text() {
        assert!(tokenize("SELECT * FROM t /* open").is_err());
        assert!(tokenize("SELECT 'open").is_err());
        assert!(tokenize("SELECT # FROM t").is_err());
    }
}
