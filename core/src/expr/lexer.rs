//! Tokeniser shared by every expression grammar (condition, filter, update, projection and key
//! conditions).
//!
//! DynamoDB's lexer is strict: a bare name must start with a letter, placeholders are `#` or
//! `:` followed by at least one letter, digit or underscore, and any other character is a
//! syntax error on that character. Errors are reported as DynamoDB does:
//! `Syntax error; token: "x", near: "a x b"`.

/// What kind of token was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A bare name, keyword or function name: `[A-Za-z][A-Za-z0-9_]*`.
    Ident,
    /// `#name`: an `ExpressionAttributeNames` placeholder.
    NameRef,
    /// `:value`: an `ExpressionAttributeValues` placeholder.
    ValueRef,
    /// Decimal digits (only meaningful as a list index).
    Number,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `.`
    Dot,
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// End of the text.
    Eof,
}

/// One token: its kind and byte span in the expression text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Splits `text` into tokens, ending with one [`TokenKind::Eof`].
///
/// # Errors
/// The syntax-error message (without the `Invalid XExpression: ` prefix) for the first
/// character that cannot start a token.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    while let Some(&b) = bytes.get(pos) {
        if b.is_ascii_whitespace() {
            pos += 1;
            continue;
        }
        let Some((kind, end)) = lex_one(text, pos) else {
            return Err(syntax_error_at(text, &tokens, pos));
        };
        tokens.push(Token {
            kind,
            start: pos,
            end,
        });
        pos = end;
    }
    tokens.push(Token {
        kind: TokenKind::Eof,
        start: bytes.len(),
        end: bytes.len(),
    });
    Ok(tokens)
}

/// The token starting at `pos` (not a blank) and where it ends; `None` for a character no
/// token starts with.
fn lex_one(text: &str, pos: usize) -> Option<(TokenKind, usize)> {
    let bytes = text.as_bytes();
    let word_end = |from: usize| {
        let mut end = from;
        while bytes.get(end).is_some_and(|&c| is_word_byte(c)) {
            end += 1;
        }
        end
    };
    let token = match bytes.get(pos)? {
        b'a'..=b'z' | b'A'..=b'Z' => (TokenKind::Ident, word_end(pos + 1)),
        b'0'..=b'9' => {
            let mut end = pos + 1;
            while bytes.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            (TokenKind::Number, end)
        }
        b @ (b'#' | b':') => {
            let end = word_end(pos + 1);
            if end == pos + 1 {
                return None;
            }
            let kind = if *b == b'#' {
                TokenKind::NameRef
            } else {
                TokenKind::ValueRef
            };
            (kind, end)
        }
        b'(' => (TokenKind::LParen, pos + 1),
        b')' => (TokenKind::RParen, pos + 1),
        b'[' => (TokenKind::LBracket, pos + 1),
        b']' => (TokenKind::RBracket, pos + 1),
        b',' => (TokenKind::Comma, pos + 1),
        b'.' => (TokenKind::Dot, pos + 1),
        b'=' => (TokenKind::Eq, pos + 1),
        b'+' => (TokenKind::Plus, pos + 1),
        b'-' => (TokenKind::Minus, pos + 1),
        b'<' => match bytes.get(pos + 1) {
            Some(b'>') => (TokenKind::Ne, pos + 2),
            Some(b'=') => (TokenKind::Le, pos + 2),
            _ => (TokenKind::Lt, pos + 1),
        },
        b'>' => match bytes.get(pos + 1) {
            Some(b'=') => (TokenKind::Ge, pos + 2),
            _ => (TokenKind::Gt, pos + 1),
        },
        _ => return None,
    };
    Some(token)
}

/// Where the character at `pos` ends.
fn char_end(text: &str, pos: usize) -> usize {
    pos + text
        .get(pos..)
        .and_then(|rest| rest.chars().next())
        .map_or(1, char::len_utf8)
}

/// The text of a token, `<EOF>` for the end.
pub(crate) fn token_text<'t>(text: &'t str, token: &Token) -> &'t str {
    if token.kind == TokenKind::Eof {
        return "<EOF>";
    }
    text.get(token.start..token.end).unwrap_or("")
}

/// DynamoDB's syntax error for the token at `index` of `tokens`: names the token and quotes
/// the text from the previous token to the next one.
pub(crate) fn syntax_error(text: &str, tokens: &[Token], index: usize) -> String {
    let Some(token) = tokens.get(index) else {
        return "Syntax error; token: \"<EOF>\"".to_string();
    };
    let near_start = index
        .checked_sub(1)
        .and_then(|i| tokens.get(i))
        .map_or(token.start, |t| t.start);
    let near_end = tokens
        .get(index + 1)
        .filter(|t| t.kind != TokenKind::Eof)
        .map_or(token.end, |t| t.end);
    format!(
        "Syntax error; token: \"{}\", near: \"{}\"",
        token_text(text, token),
        text.get(near_start..near_end).unwrap_or("")
    )
}

/// Syntax error for the character at `start`, which no token starts with: quotes the text
/// from the previous token to the next one, as for any other bad token (a character no
/// token starts with stands alone, so `!!!` is quoted as `!!`).
fn syntax_error_at(text: &str, before: &[Token], start: usize) -> String {
    let end = char_end(text, start);
    let near_start = before.last().map_or(start, |t| t.start);
    let next = text
        .get(end..)
        .and_then(|rest| rest.find(|c: char| !c.is_ascii_whitespace()))
        .map(|offset| end + offset);
    let near_end = match next {
        None => end,
        Some(next) => lex_one(text, next).map_or_else(|| char_end(text, next), |(_, e)| e),
    };
    format!(
        "Syntax error; token: \"{}\", near: \"{}\"",
        text.get(start..end).unwrap_or(""),
        text.get(near_start..near_end).unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        tokenize(text).unwrap().iter().map(|t| t.kind).collect()
    }

    #[test]
    fn reads_every_token_kind() {
        use TokenKind::*;
        assert_eq!(
            kinds("a.b[12] = #n, :v <> < <= > >= + - ( )"),
            vec![
                Ident, Dot, Ident, LBracket, Number, RBracket, Eq, NameRef, Comma, ValueRef, Ne,
                Lt, Le, Gt, Ge, Plus, Minus, LParen, RParen, Eof
            ]
        );
        assert_eq!(kinds("a<=b"), vec![Ident, Le, Ident, Eof]);
        assert_eq!(kinds("  "), vec![Eof]);
    }

    #[test]
    fn placeholders_may_start_with_digits_or_underscore() {
        let text = "#123a :_ #_ :123";
        let tokens = tokenize(text).unwrap();
        let texts: Vec<&str> = tokens.iter().map(|t| token_text(text, t)).collect();
        assert_eq!(texts, vec!["#123a", ":_", "#_", ":123", "<EOF>"]);
    }

    #[test]
    fn names_are_alphanumeric_starting_with_a_letter() {
        let text = "Alpha_Numeric_123 123a";
        let tokens = tokenize(text).unwrap();
        let texts: Vec<&str> = tokens.iter().map(|t| token_text(text, t)).collect();
        assert_eq!(texts, vec!["Alpha_Numeric_123", "123", "a", "<EOF>"]);
    }

    #[test]
    fn bad_characters_are_syntax_errors() {
        assert_eq!(
            tokenize("SET _123 = :v").unwrap_err(),
            "Syntax error; token: \"_\", near: \"SET _123\""
        );
        assert!(tokenize("i != :i").unwrap_err().contains("token: \"!\""));
        assert!(tokenize("SET # = :v").unwrap_err().contains("token: \"#\""));
        assert!(tokenize("SET a = :").unwrap_err().contains("token: \":\""));
        assert!(tokenize("a = \"x\"").unwrap_err().contains("token: \"\"\""));
        assert!(tokenize("a = é").unwrap_err().contains("token: \"é\""));
        // A bad character is a token of its own: the next one is the next character.
        assert_eq!(
            tokenize("!!! INVALID !!!").unwrap_err(),
            "Syntax error; token: \"!\", near: \"!!\""
        );
        assert_eq!(
            tokenize("a ! b").unwrap_err(),
            "Syntax error; token: \"!\", near: \"a ! b\""
        );
    }

    #[test]
    fn syntax_error_quotes_neighbours() {
        let text = "a IN ()";
        let tokens = tokenize(text).unwrap();
        assert_eq!(
            syntax_error(text, &tokens, 3),
            "Syntax error; token: \")\", near: \"()\""
        );
        assert_eq!(
            syntax_error(text, &tokens, 4),
            "Syntax error; token: \"<EOF>\", near: \")\""
        );
    }
}
