//! The parts of the grammar every expression shares: a token cursor, document paths,
//! placeholder resolution, operands (paths, values and function calls) and DynamoDB's
//! limits. The condition, update and projection grammars are built on [`Parser`]; the
//! key-condition grammar is the condition grammar, restricted afterwards.
//!
//! Parse errors are plain messages; [`ExprKind::error`] adds the `Invalid XExpression: `
//! prefix DynamoDB puts in front of them.

use crate::Error;
use crate::model::AttributeValue;

use super::Placeholders;
use super::lexer::{self, Token, TokenKind};
use super::path::{MAX_PATH_DEPTH, Path, PathElement};
use super::reserved::is_reserved;

/// Longest expression text DynamoDB accepts, in bytes.
pub(crate) const MAX_EXPRESSION_BYTES: usize = 4096;
/// Most operators and functions in one expression.
pub(crate) const MAX_OPERATORS: usize = 300;
/// Deepest nesting of function calls inside operands; no valid expression comes close, the
/// limit only keeps parsing hostile input from recursing deeply.
const MAX_CALL_DEPTH: usize = 16;
/// Largest list index DynamoDB accepts in a document path.
const MAX_LIST_INDEX: u64 = i32::MAX as u64;
/// Longest attribute name, in bytes.
pub(crate) const MAX_ATTRIBUTE_NAME_BYTES: usize = 65535;

/// Which request parameter an expression came from; decides the error prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExprKind {
    /// `ConditionExpression`
    Condition,
    /// `FilterExpression`
    Filter,
    /// `UpdateExpression`
    Update,
    /// `ProjectionExpression`
    Projection,
    /// `KeyConditionExpression`
    KeyCondition,
}

impl ExprKind {
    fn name(self) -> &'static str {
        match self {
            ExprKind::Condition => "ConditionExpression",
            ExprKind::Filter => "FilterExpression",
            ExprKind::Update => "UpdateExpression",
            ExprKind::Projection => "ProjectionExpression",
            ExprKind::KeyCondition => "KeyConditionExpression",
        }
    }

    /// DynamoDB's words for an expression of `size` bytes, past [`MAX_EXPRESSION_BYTES`]: an
    /// UpdateExpression's give no size (AWS, 2026-10: nubo-db/dynamodb-conformance's
    /// deepRequests.test.ts), a ConditionExpression's do (the same, and the Alternator suite).
    fn oversize(self, size: usize) -> String {
        match self {
            ExprKind::Update => "Expression size has exceeded the maximum allowed size;".into(),
            _ => format!(
                "Expression size has exceeded the maximum allowed size; expression size: {size}"
            ),
        }
    }

    /// The validation error DynamoDB reports for `message` in this kind of expression.
    pub(crate) fn error(self, message: impl std::fmt::Display) -> Error {
        Error::validation(format!("Invalid {}: {message}", self.name()))
    }
}

/// An operand before it is checked against the rules of its context: a function call's
/// meaning (and whether it is allowed) depends on where it appears.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawOperand {
    Path(Path),
    Value(AttributeValue),
    Call { name: String, args: Vec<RawOperand> },
}

/// Checks an attribute name taken from a placeholder or a legacy parameter.
pub(crate) fn check_attribute_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Empty attribute name".to_string());
    }
    if name.len() > MAX_ATTRIBUTE_NAME_BYTES {
        return Err(format!(
            "Attribute name exceeds the maximum length of {MAX_ATTRIBUTE_NAME_BYTES} bytes"
        ));
    }
    Ok(())
}

/// DynamoDB's type names in `ADD`/`DELETE` operand errors.
pub(crate) fn long_type_name(value: &AttributeValue) -> &'static str {
    match value {
        AttributeValue::S(_) => "STRING",
        AttributeValue::N(_) => "NUMBER",
        AttributeValue::B(_) => "BINARY",
        AttributeValue::Bool(_) => "BOOLEAN",
        AttributeValue::Null => "NULL",
        AttributeValue::M(_) => "MAP",
        AttributeValue::L(_) => "LIST",
        AttributeValue::Ss(_) => "STRING_SET",
        AttributeValue::Ns(_) => "NUMBER_SET",
        AttributeValue::Bs(_) => "BINARY_SET",
    }
}

/// `Incorrect operand type ...` for a function or operator given a constant of the wrong type.
pub(crate) fn incorrect_operand_type(function: &str, type_name: &str) -> String {
    format!(
        "Incorrect operand type for operator or function; operator or function: {function}, operand type: {type_name}"
    )
}

/// `Incorrect number of operands ...` for a function called with the wrong arity.
pub(crate) fn incorrect_operand_count(function: &str, count: usize) -> String {
    format!(
        "Incorrect number of operands for operator or function; operator or function: {function}, number of operands: {count}"
    )
}

/// Token cursor over one expression, resolving placeholders as it goes.
pub(crate) struct Parser<'t, 'p, 'a> {
    text: &'t str,
    tokens: Vec<Token>,
    pos: usize,
    placeholders: &'p mut Placeholders<'a>,
    operators: usize,
}

impl<'t, 'p, 'a> Parser<'t, 'p, 'a> {
    /// Checks the size limit and tokenises `text`, an expression of `kind`.
    pub(crate) fn new(
        kind: ExprKind,
        text: &'t str,
        placeholders: &'p mut Placeholders<'a>,
    ) -> Result<Self, String> {
        if text.len() > MAX_EXPRESSION_BYTES {
            return Err(kind.oversize(text.len()));
        }
        if text.trim().is_empty() {
            return Err("The expression can not be empty;".to_string());
        }
        let tokens = lexer::tokenize(text)?;
        Ok(Parser {
            text,
            tokens,
            pos: 0,
            placeholders,
            operators: 0,
        })
    }

    /// The current token (the final `Eof` once everything was read).
    pub(crate) fn peek(&self) -> Token {
        self.peek_at(0)
    }

    /// The token `ahead` positions after the current one.
    pub(crate) fn peek_at(&self, ahead: usize) -> Token {
        self.tokens
            .get(self.pos + ahead)
            .or_else(|| self.tokens.last())
            .copied()
            .unwrap_or(Token {
                kind: TokenKind::Eof,
                start: self.text.len(),
                end: self.text.len(),
            })
    }

    /// Consumes and returns the current token.
    pub(crate) fn advance(&mut self) -> Token {
        let token = self.peek();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    /// Text of a token.
    pub(crate) fn text_of(&self, token: &Token) -> &'t str {
        lexer::token_text(self.text, token)
    }

    /// True when `token` is the keyword `word`, in any letter case.
    pub(crate) fn is_keyword(&self, token: &Token, word: &str) -> bool {
        token.kind == TokenKind::Ident && self.text_of(token).eq_ignore_ascii_case(word)
    }

    /// Syntax error on the current token.
    pub(crate) fn syntax_error(&self) -> String {
        lexer::syntax_error(self.text, &self.tokens, self.pos)
    }

    /// Consumes a token of `kind`, or fails with a syntax error.
    pub(crate) fn expect(&mut self, kind: TokenKind) -> Result<Token, String> {
        if self.peek().kind == kind {
            Ok(self.advance())
        } else {
            Err(self.syntax_error())
        }
    }

    /// Fails with a syntax error unless all input was consumed.
    pub(crate) fn expect_end(&self) -> Result<(), String> {
        if self.peek().kind == TokenKind::Eof {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    /// Counts one operator or function against the limit of 300.
    pub(crate) fn count_operator(&mut self) -> Result<(), String> {
        self.operators += 1;
        if self.operators > MAX_OPERATORS {
            return Err(format!(
                "The expression contains too many operators; operator count: {}",
                self.operators
            ));
        }
        Ok(())
    }

    fn resolve_name(&mut self, token: &Token) -> Result<String, String> {
        let key = self.text_of(token);
        let name = self
            .placeholders
            .names
            .and_then(|names| names.get(key))
            .ok_or_else(|| {
                format!(
                    "An expression attribute name used in the document path is not defined; attribute name: {key}"
                )
            })?;
        self.placeholders.used_names.insert(key.to_string());
        check_attribute_name(name).map_err(|e| {
            format!("ExpressionAttributeNames contains invalid value: {e} for key {key}")
        })?;
        Ok(name.clone())
    }

    fn resolve_value(&mut self, token: &Token) -> Result<AttributeValue, String> {
        let key = self.text_of(token);
        let value = self
            .placeholders
            .values
            .and_then(|values| values.get(key))
            .ok_or_else(|| {
                format!(
                    "An expression attribute value used in expression is not defined; attribute value: {key}"
                )
            })?;
        self.placeholders.used_values.insert(key.to_string());
        Ok(value.clone())
    }

    /// Consumes a `:value` placeholder and returns its value.
    pub(crate) fn parse_value_ref(&mut self) -> Result<AttributeValue, String> {
        let token = self.expect(TokenKind::ValueRef)?;
        self.resolve_value(&token)
    }

    /// One name of a path: a bare name (not a reserved word) or a `#name` placeholder.
    fn parse_path_name(&mut self) -> Result<String, String> {
        let token = self.peek();
        match token.kind {
            TokenKind::Ident => {
                let name = self.text_of(&token);
                if is_reserved(name) {
                    return Err(format!(
                        "Attribute name is a reserved keyword; reserved keyword: {name}"
                    ));
                }
                self.advance();
                Ok(name.to_string())
            }
            TokenKind::NameRef => {
                self.advance();
                self.resolve_name(&token)
            }
            _ => Err(self.syntax_error()),
        }
    }

    /// A document path: `name ( .name | [digits] )*`.
    pub(crate) fn parse_path(&mut self) -> Result<Path, String> {
        let mut path = Path::new(self.parse_path_name()?);
        loop {
            match self.peek().kind {
                TokenKind::Dot => {
                    self.advance();
                    let name = self.parse_path_name()?;
                    path.push(PathElement::Field(name));
                }
                TokenKind::LBracket => {
                    self.advance();
                    let token = self.expect(TokenKind::Number)?;
                    let digits = self.text_of(&token);
                    let index = digits
                        .parse::<u64>()
                        .ok()
                        .filter(|&i| i <= MAX_LIST_INDEX)
                        .and_then(|i| usize::try_from(i).ok())
                        .ok_or_else(|| {
                            format!(
                                "List index is not within the allowable range; index: [{digits}]"
                            )
                        })?;
                    self.expect(TokenKind::RBracket)?;
                    path.push(PathElement::Index(index));
                }
                _ => break,
            }
            if path.depth() > MAX_PATH_DEPTH {
                return Err(format!(
                    "The document path has too many nesting levels; nesting levels: {}",
                    path.depth()
                ));
            }
        }
        Ok(path)
    }

    /// An operand: a path, a `:value`, or a function call `name(operand, ...)`.
    /// `keywords` are words that end an operand in this grammar and so cannot start one.
    pub(crate) fn parse_operand(&mut self, keywords: &[&str]) -> Result<RawOperand, String> {
        self.parse_operand_at(keywords, 0)
    }

    fn parse_operand_at(&mut self, keywords: &[&str], depth: usize) -> Result<RawOperand, String> {
        let token = self.peek();
        match token.kind {
            TokenKind::ValueRef => {
                self.advance();
                Ok(RawOperand::Value(self.resolve_value(&token)?))
            }
            TokenKind::Ident if self.peek_at(1).kind == TokenKind::LParen => {
                if depth >= MAX_CALL_DEPTH {
                    return Err("The expression has too many nested function calls".to_string());
                }
                let name = self.text_of(&token).to_string();
                self.advance();
                self.advance();
                self.count_operator()?;
                let mut args = vec![self.parse_operand_at(keywords, depth + 1)?];
                while self.peek().kind == TokenKind::Comma {
                    self.advance();
                    args.push(self.parse_operand_at(keywords, depth + 1)?);
                }
                self.expect(TokenKind::RParen)?;
                Ok(RawOperand::Call { name, args })
            }
            TokenKind::Ident
                if keywords
                    .iter()
                    .any(|k| self.text_of(&token).eq_ignore_ascii_case(k)) =>
            {
                Err(self.syntax_error())
            }
            TokenKind::Ident | TokenKind::NameRef => Ok(RawOperand::Path(self.parse_path()?)),
            _ => Err(self.syntax_error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn names() -> HashMap<String, String> {
        HashMap::from([
            ("#n".to_string(), "name".to_string()),
            ("#e".to_string(), String::new()),
        ])
    }

    fn values() -> HashMap<String, AttributeValue> {
        HashMap::from([(":v".to_string(), AttributeValue::Bool(true))])
    }

    fn path(text: &str) -> Result<Path, String> {
        let (n, v) = (names(), values());
        let mut ph = Placeholders::new(Some(&n), Some(&v));
        let mut p = Parser::new(ExprKind::Condition, text, &mut ph)?;
        let path = p.parse_path()?;
        p.expect_end()?;
        Ok(path)
    }

    #[test]
    fn parses_paths() {
        assert_eq!(
            path("a.#n[3].b").unwrap(),
            Path::new("a").field("name").index(3).field("b")
        );
        assert_eq!(path("a . b").unwrap(), Path::new("a").field("b"));
    }

    #[test]
    fn path_errors() {
        assert_eq!(
            path("size").unwrap_err(),
            "Attribute name is a reserved keyword; reserved keyword: size"
        );
        assert_eq!(
            path("#x").unwrap_err(),
            "An expression attribute name used in the document path is not defined; attribute name: #x"
        );
        assert!(path("#e").unwrap_err().contains("Empty attribute name"));
        assert!(
            path("a[-1]")
                .unwrap_err()
                .starts_with("Syntax error; token: \"-\"")
        );
        assert!(
            path("a[]")
                .unwrap_err()
                .starts_with("Syntax error; token: \"]\"")
        );
        assert!(path("a[:v]").unwrap_err().starts_with("Syntax error"));
        assert_eq!(
            path("a[99999999999999]").unwrap_err(),
            "List index is not within the allowable range; index: [99999999999999]"
        );
        assert!(path(&format!("a{}", ".b".repeat(31))).is_ok());
        assert_eq!(
            path(&format!("a{}", ".b".repeat(32))).unwrap_err(),
            "The document path has too many nesting levels; nesting levels: 33"
        );
    }

    #[test]
    fn size_and_emptiness_limits() {
        let mut ph = Placeholders::new(None, None);
        let condition = ExprKind::Condition;
        assert_eq!(
            Parser::new(condition, "", &mut ph).err().unwrap(),
            "The expression can not be empty;"
        );
        assert!(Parser::new(condition, &"x".repeat(4096), &mut ph).is_ok());
        assert_eq!(
            Parser::new(condition, &"x".repeat(4097), &mut ph)
                .err()
                .unwrap(),
            "Expression size has exceeded the maximum allowed size; expression size: 4097"
        );
        assert_eq!(
            Parser::new(ExprKind::Update, &"x".repeat(4097), &mut ph)
                .err()
                .unwrap(),
            "Expression size has exceeded the maximum allowed size;"
        );
    }

    #[test]
    fn operands_and_calls() {
        let (n, v) = (names(), values());
        let mut ph = Placeholders::new(Some(&n), Some(&v));
        let mut p = Parser::new(ExprKind::Condition, "f(a, g(:v), #n)", &mut ph).unwrap();
        let operand = p.parse_operand(&[]).unwrap();
        assert_eq!(
            operand,
            RawOperand::Call {
                name: "f".into(),
                args: vec![
                    RawOperand::Path(Path::new("a")),
                    RawOperand::Call {
                        name: "g".into(),
                        args: vec![RawOperand::Value(AttributeValue::Bool(true))]
                    },
                    RawOperand::Path(Path::new("name")),
                ]
            }
        );
        assert!(ph.used_values.contains(":v") && ph.used_names.contains("#n"));

        let mut ph = Placeholders::new(None, None);
        let nested = format!("{}a{}", "f(".repeat(20), ")".repeat(20));
        let mut p = Parser::new(ExprKind::Condition, &nested, &mut ph).unwrap();
        assert!(p.parse_operand(&[]).unwrap_err().contains("nested"));

        let mut ph = Placeholders::new(None, None);
        let mut p = Parser::new(ExprKind::Condition, ":x", &mut ph).unwrap();
        assert_eq!(
            p.parse_operand(&[]).unwrap_err(),
            "An expression attribute value used in expression is not defined; attribute value: :x"
        );
    }
}
