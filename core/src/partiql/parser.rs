//! The PartiQL parser: tokens into a [`Statement`], by recursive descent over DynamoDB's
//! subset (SELECT, INSERT, UPDATE, DELETE and the `EXISTS(SELECT ...)` of transactions).
//! Nothing here knows tables or parameters' values; `?` become numbered [`Expr::Param`]s.

use super::lexer::{Span, Token, tokenize};
use super::{MAX_STATEMENT_CHARS, syntax_error};
use crate::{Error, Result};

/// Deepest nesting of expressions, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// Words that cannot be a bare attribute name (write them in double quotes).
const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "LIKE",
    "BETWEEN",
    "MISSING",
    "NULL",
    "TRUE",
    "FALSE",
    "VALUE",
    "VALUES",
    "INTO",
    "SET",
    "REMOVE",
    "RETURNING",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "EXISTS",
    "UPDATE",
    "DELETE",
    "INSERT",
    "AS",
    "AT",
    "LIMIT",
];

/// The words PartiQL reserves, SQL-92's and its own (partiql-lang-kotlin's lexer, which
/// DynamoDB's PartiQL follows): a bare one cannot be a step of a path after a dot.
#[rustfmt::skip]
const RESERVED_WORDS: &[&str] = &[
    "absolute", "action", "add", "all", "allocate", "alter", "and", "any", "are", "as", "asc",
    "assertion", "at", "authorization", "avg", "bag", "begin", "between", "bigint", "bit",
    "bit_length", "blob", "bool", "boolean", "by", "can_cast", "can_lossless_cast", "cascade",
    "cascaded", "case", "cast", "catalog", "char", "char_length", "character", "character_length",
    "check", "clob", "close", "coalesce", "collate", "collation", "column", "commit", "conflict",
    "connect", "connection", "constraint", "constraints", "continue", "convert", "corresponding",
    "count", "create", "cross", "current", "current_date", "current_time", "current_timestamp",
    "current_user", "cursor", "date", "date_add", "date_diff", "deallocate", "dec", "decimal",
    "declare", "default", "deferrable", "deferred", "delete", "desc", "describe", "descriptor",
    "diagnostics", "disconnect", "distinct", "do", "domain", "double", "drop", "else", "end",
    "escape", "except", "exception", "exec", "execute", "exists", "external", "extract", "false",
    "fetch", "first", "float", "for", "foreign", "found", "from", "full", "get", "global", "go",
    "goto", "grant", "group", "having", "identity", "immediate", "in", "index", "indicator",
    "initially", "inner", "input", "insensitive", "insert", "int", "int2", "int4", "int8",
    "integer", "integer2", "integer4", "integer8", "intersect", "interval", "into", "is",
    "isolation", "join", "key", "language", "last", "left", "let", "level", "like", "limit",
    "list", "local", "lower", "match", "max", "min", "missing", "modified", "module", "names",
    "national", "natural", "nchar", "new", "next", "no", "not", "nothing", "null", "nullif",
    "numeric", "octet_length", "of", "offset", "old", "on", "only", "open", "option", "or",
    "order", "outer", "output", "overlaps", "pad", "partial", "pivot", "position", "precision",
    "prepare", "preserve", "primary", "prior", "privileges", "procedure", "public", "read",
    "real", "references", "relative", "remove", "restrict", "returning", "revoke", "right",
    "rollback", "rows", "schema", "scroll", "section", "select", "session", "session_user", "set",
    "sexp", "size", "smallint", "some", "space", "sql", "sqlcode", "sqlerror", "sqlstate",
    "string", "struct", "substring", "sum", "symbol", "system_user", "table", "temporary", "then",
    "time", "timestamp", "to", "transaction", "translate", "translation", "trim", "true", "tuple",
    "union", "unique", "unknown", "unpivot", "update", "upper", "usage", "user", "using", "value",
    "values", "varchar", "varying", "view", "when", "whenever", "where", "with", "work", "write",
    "zone",
];

/// One element of a document path below its top-level name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// `.name`
    Field(String),
    /// `[n]`
    Index(usize),
}

/// A document path as written.
#[derive(Debug, Clone)]
pub(crate) struct PathExpr {
    pub(crate) name: String,
    pub(crate) steps: Vec<Step>,
    /// Where its first name is, for messages.
    pub(crate) span: Span,
}

/// Two paths are equal when they name the same thing, wherever they are written.
impl PartialEq for PathExpr {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.steps == other.steps
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// What `IS` tests for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IsWhat {
    Missing,
    Null,
    /// A type test: the DynamoDB type the PartiQL type name stands for (`S`, `N`, `BOOL`, ...).
    Type(&'static str),
}

/// The DynamoDB type a PartiQL type name (its first word) tests for, and the second word of a
/// two-word name.
fn type_name(first: &str) -> Option<(&'static str, Option<&'static str>)> {
    Some(match first.to_ascii_uppercase().as_str() {
        "BOOL" | "BOOLEAN" => ("BOOL", None),
        "STRING" | "CHAR" | "VARCHAR" | "SYMBOL" | "CLOB" => ("S", None),
        "CHARACTER" => ("S", Some("VARYING")),
        "INT" | "INTEGER" | "INT4" | "INT8" | "SMALLINT" | "BIGINT" | "DECIMAL" | "NUMERIC"
        | "FLOAT" | "REAL" => ("N", None),
        "DOUBLE" => ("N", Some("PRECISION")),
        "BLOB" => ("B", None),
        "LIST" | "SEXP" => ("L", None),
        "STRUCT" | "TUPLE" => ("M", None),
        _ => return None,
    })
}

/// An expression: a value, a path, a parameter, a function call or a condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Path(PathExpr),
    /// The `n`th `?` of the statement (from 0).
    Param(usize),
    Str(String),
    Number(String),
    Bool(bool),
    Null,
    Missing,
    /// `{'k': v, ...}`
    Map(Vec<(String, Expr)>),
    /// `[v, ...]`
    List(Vec<Expr>),
    /// `<<v, ...>>`: a set.
    Bag(Vec<Expr>),
    /// A function call; the name is lower-cased, the span its name's.
    Call(String, Vec<Expr>, Span),
    Compare(Cmp, Box<Expr>, Box<Expr>),
    Between(Box<Expr>, Box<Expr>, Box<Expr>),
    In(Box<Expr>, Vec<Expr>),
    /// `e IS [NOT] MISSING|NULL`; the flag is NOT.
    Is(Box<Expr>, IsWhat, bool),
    /// Two or more conditions, all true (n-ary, so long chains stay shallow).
    And(Vec<Expr>),
    /// Two or more conditions, one true.
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Plus(Box<Expr>, Box<Expr>),
    Minus(Box<Expr>, Box<Expr>),
}

/// What a SELECT returns per item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Projection {
    /// `*`
    All,
    /// A list of paths.
    Paths(Vec<PathExpr>),
}

/// `SELECT ... FROM "table"[."index"] [WHERE ...] [ORDER BY key [ASC|DESC]]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Select {
    pub(crate) projection: Projection,
    pub(crate) table: String,
    pub(crate) index: Option<String>,
    pub(crate) filter: Option<Expr>,
    /// The ORDER BY attributes, each with whether it is descending (empty without ORDER BY).
    pub(crate) order_by: Vec<(String, bool)>,
}

/// What RETURNING asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Returning {
    AllOld,
    ModifiedOld,
    AllNew,
    ModifiedNew,
}

impl Returning {
    fn text(self) -> &'static str {
        match self {
            Returning::AllOld => "ALL OLD *",
            Returning::ModifiedOld => "MODIFIED OLD *",
            Returning::AllNew => "ALL NEW *",
            Returning::ModifiedNew => "MODIFIED NEW *",
        }
    }
}

/// One action of an UPDATE.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Assignment {
    Set(PathExpr, Expr),
    Remove(PathExpr),
}

/// A parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Statement {
    Select(Select),
    Insert {
        table: String,
        item: Expr,
    },
    Update {
        table: String,
        assignments: Vec<Assignment>,
        filter: Expr,
        returning: Option<Returning>,
    },
    Delete {
        table: String,
        filter: Expr,
        returning: Option<Returning>,
    },
    /// `EXISTS(SELECT ...)`: a condition check of a transaction.
    Exists(Select),
}

impl Statement {
    /// True for statements that only read.
    pub(crate) fn is_read(&self) -> bool {
        matches!(self, Statement::Select(_))
    }
}

/// A parsed statement and the number of its `?` parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parsed {
    pub(crate) statement: Statement,
    pub(crate) parameters: usize,
}

/// Parses one statement.
pub(crate) fn parse(text: &str) -> Result<Parsed> {
    let length = text.chars().count();
    if length == 0 || length > MAX_STATEMENT_CHARS {
        return Err(Error::validation(format!(
            "1 validation error detected: Value at 'statement' failed to satisfy constraint: Member must have length less than or equal to {MAX_STATEMENT_CHARS} and greater than or equal to 1"
        )));
    }
    let (tokens, spans) = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        spans,
        pos: 0,
        params: 0,
        depth: 0,
    };
    let statement = parser.statement()?;
    if parser.peek() == Some(&Token::Symbol(";")) {
        parser.pos += 1;
    }
    if parser.peek().is_some() {
        return Err(syntax_error("Unexpected token after expression"));
    }
    Ok(Parsed {
        statement,
        parameters: parser.params,
    })
}

struct Parser {
    tokens: Vec<Token>,
    /// Each token's place, in step with `tokens`.
    spans: Vec<Span>,
    pos: usize,
    params: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    /// Where the current token is.
    fn span(&self) -> Span {
        self.spans.get(self.pos).copied().unwrap_or_default()
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        self.peek().is_some_and(|t| t.is_keyword(keyword))
    }

    fn peek_symbol(&self, symbol: &str) -> bool {
        matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol)
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.peek_keyword(keyword);
        if found {
            self.pos += 1;
        }
        found
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        let found = self.peek_symbol(symbol);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<()> {
        if self.eat_keyword(keyword) {
            return Ok(());
        }
        Err(syntax_error(&format!("Expected {keyword}")))
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<()> {
        if self.eat_symbol(symbol) {
            return Ok(());
        }
        Err(syntax_error(&format!("Expected {symbol}")))
    }

    /// Why no term could start at the current token.
    fn unexpected_term(&self) -> Error {
        syntax_error(match self.peek() {
            None | Some(Token::Symbol(";")) => "Unexpected term",
            // PartiQL's grammar counts these keywords as operators.
            Some(Token::Word(w))
                if w.eq_ignore_ascii_case("IS") || w.eq_ignore_ascii_case("LIKE") =>
            {
                "Unexpected operator"
            }
            Some(Token::Word(w)) if is_keyword(w) => "Unexpected keyword",
            Some(Token::Symbol(_)) => "Unexpected operator",
            Some(_) => "Unexpected term",
        })
    }

    fn statement(&mut self) -> Result<Statement> {
        if self.eat_keyword("SELECT") {
            return Ok(Statement::Select(self.select_rest()?));
        }
        if self.eat_keyword("INSERT") {
            return self.insert_rest();
        }
        if self.eat_keyword("UPDATE") {
            return self.update_rest();
        }
        if self.eat_keyword("DELETE") {
            return self.delete_rest();
        }
        if self.eat_keyword("FROM") {
            return self.update_from_first_rest();
        }
        if self.eat_keyword("EXISTS") {
            self.expect_symbol("(")?;
            self.expect_keyword("SELECT")?;
            let select = self.select_rest()?;
            self.expect_symbol(")")?;
            return Ok(Statement::Exists(select));
        }
        Err(match self.peek() {
            None => syntax_error("Unexpected term"),
            Some(Token::Word(w)) if !is_keyword(w) => {
                let word = w.to_uppercase();
                // A type test parses as a statement of its own, which DynamoDB then refuses
                // by its node's name (conformance partiqlGrammar.test.ts, AWS).
                let start = self.pos;
                match self.expr() {
                    Ok(Expr::Is(_, IsWhat::Type(_), _)) if self.peek().is_none() => {
                        Error::validation("Unsupported operation: IsType")
                    }
                    _ => {
                        self.pos = start;
                        Error::validation(format!("Unsupported operation: {word}"))
                    }
                }
            }
            _ => self.unexpected_term(),
        })
    }

    /// A table (or index) name: a bare or double-quoted name.
    fn name(&mut self) -> Result<String> {
        match self.peek() {
            // Checked before the table is looked up (conformance partiqlIndexQualifier and
            // validation-ordering/partiql tests, run against AWS).
            Some(Token::QuotedName(n)) if n.is_empty() => Err(Error::validation(
                "Path component cannot be an empty string",
            )),
            Some(Token::QuotedName(n)) => {
                let n = n.clone();
                self.pos += 1;
                Ok(n)
            }
            Some(Token::Word(w)) if !is_keyword(w) => {
                let n = w.clone();
                self.pos += 1;
                Ok(n)
            }
            _ => Err(syntax_error("Expected identifier for simple path")),
        }
    }

    /// Refuses `FROM "t" x` and `FROM "t" AS x`.
    fn refuse_alias(&self) -> Result<()> {
        match self.peek() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("AS") || !is_keyword(w) => {
                Err(Error::validation("Aliasing is not supported"))
            }
            Some(Token::QuotedName(_)) => Err(Error::validation("Aliasing is not supported")),
            _ => Ok(()),
        }
    }

    fn select_rest(&mut self) -> Result<Select> {
        let projection = if self.eat_symbol("*") {
            if self.peek_symbol(",") {
                return Err(Error::validation(
                    "Other attributes should not be present in the projection when '*' is used.",
                ));
            }
            Projection::All
        } else {
            let mut paths = vec![self.column()?];
            while self.eat_symbol(",") {
                if self.peek_symbol("*") {
                    return Err(Error::validation(
                        "Other attributes should not be present in the projection when '*' is used.",
                    ));
                }
                paths.push(self.column()?);
            }
            Projection::Paths(paths)
        };
        if !self.eat_keyword("FROM") {
            return Err(self.unexpected_term());
        }
        if self.peek().is_none() {
            return Err(syntax_error("Unexpected term"));
        }
        let table = self.name()?;
        let index = if self.eat_symbol(".") {
            Some(self.name()?)
        } else {
            None
        };
        if self.peek_symbol(".") {
            return Err(Error::validation(
                "A path may contain at most 2 components in the FROM clause",
            ));
        }
        self.refuse_alias()?;
        let filter = if self.eat_keyword("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let mut order_by = Vec::new();
        if self.eat_keyword("ORDER") {
            self.expect_keyword("BY")?;
            loop {
                let name = self.name()?;
                let descending = if self.eat_keyword("DESC") {
                    true
                } else {
                    self.eat_keyword("ASC");
                    false
                };
                order_by.push((name, descending));
                if !self.eat_symbol(",") {
                    break;
                }
            }
        }
        Ok(Select {
            projection,
            table,
            index,
            filter,
            order_by,
        })
    }

    fn insert_rest(&mut self) -> Result<Statement> {
        self.expect_keyword("INTO")?;
        let table = self.name()?;
        // An INSERT's alias is a leftover token, not the aliasing other statements refuse
        // (conformance partiqlGrammar.test.ts, AWS).
        if matches!(self.peek(), Some(Token::QuotedName(_)))
            || matches!(self.peek(), Some(Token::Word(w)) if !is_keyword(w))
        {
            return Err(syntax_error("Unexpected token after expression"));
        }
        if self.peek_keyword("VALUES") {
            return Err(Error::validation(
                "Unsupported operation: Inserting multiple items in a single statement is not supported, use \"INSERT INTO tableName VALUE item\" instead",
            ));
        }
        self.expect_keyword("VALUE")?;
        let item = self.expr()?;
        if self.peek_keyword("RETURNING") {
            return Err(Error::validation("RETURNING is not supported in INSERT"));
        }
        Ok(Statement::Insert { table, item })
    }

    fn update_rest(&mut self) -> Result<Statement> {
        let table = self.name()?;
        self.refuse_alias()?;
        let assignments = self.assignments()?;
        let filter = self.where_clause()?;
        let returning = self.returning()?;
        Ok(Statement::Update {
            table,
            assignments,
            filter,
            returning,
        })
    }

    /// PartiQL's FROM-first UPDATE: `FROM "t" WHERE ... SET ... | REMOVE ... [RETURNING ...]`,
    /// run as the UPDATE it spells (DynamoDB runs it so: the conformance suite's
    /// fromFirstUpdate.test.ts, four regions, October 2026). Its WHERE may be left out, which
    /// then names no key.
    fn update_from_first_rest(&mut self) -> Result<Statement> {
        let table = self.name()?;
        self.refuse_alias()?;
        let filter = match self.eat_keyword("WHERE") {
            true => Some(self.expr()?),
            false => None,
        };
        let assignments = self.assignments()?;
        let returning = self.returning()?;
        let Some(filter) = filter else {
            // A WHERE after the clauses is a leftover token, before the missing key matters.
            return Err(match self.peek() {
                None | Some(Token::Symbol(";")) => Error::validation(super::INCOMPLETE_KEY),
                Some(_) => syntax_error("Unexpected token after expression"),
            });
        };
        Ok(Statement::Update {
            table,
            assignments,
            filter,
            returning,
        })
    }

    /// An UPDATE's SET and REMOVE clauses, in any order, at least one.
    fn assignments(&mut self) -> Result<Vec<Assignment>> {
        let mut assignments = Vec::new();
        loop {
            if self.eat_keyword("SET") {
                loop {
                    let path = self.path()?;
                    self.expect_symbol("=")?;
                    assignments.push(Assignment::Set(path, self.expr()?));
                    if !self.eat_symbol(",") {
                        break;
                    }
                }
            } else if self.eat_keyword("REMOVE") {
                loop {
                    assignments.push(Assignment::Remove(self.path()?));
                    if !self.eat_symbol(",") {
                        break;
                    }
                }
            } else {
                break;
            }
        }
        if assignments.is_empty() {
            return Err(syntax_error("Expected SET or REMOVE"));
        }
        Ok(assignments)
    }

    fn delete_rest(&mut self) -> Result<Statement> {
        self.expect_keyword("FROM")?;
        let table = self.name()?;
        self.refuse_alias()?;
        let filter = self.where_clause()?;
        let returning = self.returning()?;
        if let Some(r) = returning
            && r != Returning::AllOld
        {
            return Err(Error::validation(format!(
                "Invalid returning clause: RETURNING {}. Only RETURNING ALL OLD * is allowed in DELETE statements.",
                r.text()
            )));
        }
        Ok(Statement::Delete {
            table,
            filter,
            returning,
        })
    }

    /// The WHERE of an UPDATE or DELETE, which must name the item's key.
    fn where_clause(&mut self) -> Result<Expr> {
        if !self.eat_keyword("WHERE") {
            return Err(Error::validation(super::INCOMPLETE_KEY));
        }
        self.expr()
    }

    fn returning(&mut self) -> Result<Option<Returning>> {
        if !self.eat_keyword("RETURNING") {
            return Ok(None);
        }
        let all = if self.eat_keyword("ALL") {
            true
        } else if self.eat_keyword("MODIFIED") {
            false
        } else {
            return Err(syntax_error("Expected ALL or MODIFIED"));
        };
        let old = if self.eat_keyword("OLD") {
            true
        } else if self.eat_keyword("NEW") {
            false
        } else {
            return Err(syntax_error("Expected OLD or NEW"));
        };
        if !self.eat_symbol("*") {
            return Err(Error::validation(
                "Expected '*' after ( MODIFIED | ALL ) ( NEW | OLD ) in RETURNING clause",
            ));
        }
        if self.peek_symbol(",") {
            return Err(Error::validation(
                "Invalid syntax with multiple returning elements in RETURNING clause",
            ));
        }
        Ok(Some(match (all, old) {
            (true, true) => Returning::AllOld,
            (false, true) => Returning::ModifiedOld,
            (true, false) => Returning::AllNew,
            (false, false) => Returning::ModifiedNew,
        }))
    }

    /// A column of a SELECT: a path, not a call (conformance partiqlFunctions.test.ts, AWS).
    fn column(&mut self) -> Result<PathExpr> {
        let path = self.path()?;
        if self.peek_symbol("(") {
            return Err(Error::validation(format!(
                "Unexpected path component at {}",
                path.span
            )));
        }
        Ok(path)
    }

    /// A document path: a name, then `.name` and `[n]` steps.
    fn path(&mut self) -> Result<PathExpr> {
        if self.peek_symbol("[") {
            return Err(Error::validation("A path cannot start with a list index"));
        }
        let span = self.span();
        let name = self.name().map_err(|_| self.unexpected_term())?;
        let mut path = PathExpr {
            name,
            steps: Vec::new(),
            span,
        };
        self.path_steps(&mut path)?;
        Ok(path)
    }

    fn path_steps(&mut self, path: &mut PathExpr) -> Result<()> {
        loop {
            if self.eat_symbol(".") {
                // `m.inner` (conformance partiqlFunctions.test.ts, AWS); `m."inner"` is a name.
                if let Some(Token::Word(w)) = self.peek()
                    && RESERVED_WORDS.iter().any(|r| r.eq_ignore_ascii_case(w))
                {
                    return Err(syntax_error("Invalid path dot component"));
                }
                path.steps.push(Step::Field(self.name()?));
            } else if self.eat_symbol("[") {
                let index = match self.peek() {
                    Some(Token::Number(n)) => n
                        .parse::<usize>()
                        .map_err(|_| syntax_error("Invalid list index"))?,
                    _ => return Err(syntax_error("Invalid list index")),
                };
                self.pos += 1;
                self.expect_symbol("]")?;
                path.steps.push(Step::Index(index));
            } else {
                return Ok(());
            }
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(syntax_error("Expression is nested too deeply"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr> {
        self.enter()?;
        let expr = self.or_expr();
        self.depth -= 1;
        expr
    }

    /// The right-hand side of AND / OR.
    fn infix_rhs(&mut self, next: fn(&mut Parser) -> Result<Expr>) -> Result<Expr> {
        if matches!(self.peek(), None | Some(Token::Symbol(";"))) {
            return Err(syntax_error(
                "Missing right-hand side expression of infix operator",
            ));
        }
        next(self)
    }

    fn or_expr(&mut self) -> Result<Expr> {
        let mut parts = vec![self.and_expr()?];
        while self.eat_keyword("OR") {
            parts.push(self.infix_rhs(Parser::and_expr)?);
        }
        Ok(match parts.len() {
            1 => parts.remove(0),
            _ => Expr::Or(parts),
        })
    }

    fn and_expr(&mut self) -> Result<Expr> {
        let mut parts = vec![self.not_expr()?];
        while self.eat_keyword("AND") {
            parts.push(self.infix_rhs(Parser::not_expr)?);
        }
        Ok(match parts.len() {
            1 => parts.remove(0),
            _ => Expr::And(parts),
        })
    }

    fn not_expr(&mut self) -> Result<Expr> {
        if self.eat_keyword("NOT") {
            self.enter()?;
            let inner = self.not_expr();
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner?)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr> {
        let left = self.additive()?;
        let cmp = match self.peek() {
            Some(Token::Symbol("=")) => Some(Cmp::Eq),
            Some(Token::Symbol("<>" | "!=")) => Some(Cmp::Ne),
            Some(Token::Symbol("<")) => Some(Cmp::Lt),
            Some(Token::Symbol("<=")) => Some(Cmp::Le),
            Some(Token::Symbol(">")) => Some(Cmp::Gt),
            Some(Token::Symbol(">=")) => Some(Cmp::Ge),
            _ => None,
        };
        if let Some(cmp) = cmp {
            self.pos += 1;
            let right = self.additive()?;
            return Ok(Expr::Compare(cmp, Box::new(left), Box::new(right)));
        }
        if self.eat_keyword("IS") {
            let negated = self.eat_keyword("NOT");
            let what = if self.eat_keyword("MISSING") {
                IsWhat::Missing
            } else if self.eat_keyword("NULL") {
                IsWhat::Null
            } else {
                // A type test (conformance whereFunctions.test.ts and partiqlGrammar.test.ts,
                // run against AWS): `x IS BOOL` filters as attribute_type does.
                let named = match self.peek() {
                    Some(Token::Word(w)) => type_name(w),
                    _ => None,
                };
                let Some((tested, second)) = named else {
                    return Err(syntax_error("Expected type name"));
                };
                self.pos += 1;
                if let Some(second) = second
                    && !self.eat_keyword(second)
                {
                    return Err(syntax_error("Expected type name"));
                }
                IsWhat::Type(tested)
            };
            return Ok(Expr::Is(Box::new(left), what, negated));
        }
        let negated = self.peek_keyword("NOT")
            && self
                .tokens
                .get(self.pos + 1)
                .is_some_and(|t| t.is_keyword("IN") || t.is_keyword("BETWEEN"));
        if negated {
            self.pos += 1;
        }
        let predicate = if self.eat_keyword("BETWEEN") {
            let low = self.additive()?;
            self.expect_keyword("AND")?;
            let high = self.additive()?;
            Expr::Between(Box::new(left), Box::new(low), Box::new(high))
        } else if self.eat_keyword("IN") {
            let close = if self.eat_symbol("[") {
                "]"
            } else if self.eat_symbol("(") {
                ")"
            } else {
                return Err(Error::validation(
                    "IN operator must have a left hand argument of type Variable Reference and right hand argument of type Seq with at least one member",
                ));
            };
            let mut list = Vec::new();
            if !self.eat_symbol(close) {
                loop {
                    list.push(self.additive()?);
                    if self.eat_symbol(close) {
                        break;
                    }
                    self.expect_symbol(",")?;
                }
            }
            Expr::In(Box::new(left), list)
        } else {
            return Ok(left);
        };
        Ok(if negated {
            Expr::Not(Box::new(predicate))
        } else {
            predicate
        })
    }

    /// A term, or two joined by `+` or `-` (DynamoDB's updates take one such operator; a
    /// second is a token after the expression).
    fn additive(&mut self) -> Result<Expr> {
        let left = self.primary()?;
        if self.eat_symbol("+") {
            let right = self.primary()?;
            return Ok(Expr::Plus(Box::new(left), Box::new(right)));
        }
        if self.eat_symbol("-") {
            let right = self.primary()?;
            return Ok(Expr::Minus(Box::new(left), Box::new(right)));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Expr> {
        self.enter()?;
        let expr = self.primary_inner();
        self.depth -= 1;
        expr
    }

    fn primary_inner(&mut self) -> Result<Expr> {
        let Some(token) = self.peek().cloned() else {
            return Err(syntax_error("Unexpected term"));
        };
        let span = self.span();
        self.pos += 1;
        match token {
            Token::Param => {
                self.params += 1;
                Ok(Expr::Param(self.params - 1))
            }
            Token::Str(s) => Ok(Expr::Str(s)),
            Token::Number(n) => Ok(Expr::Number(n)),
            Token::Symbol("-") => match self.peek().cloned() {
                Some(Token::Number(n)) => {
                    self.pos += 1;
                    Ok(Expr::Number(format!("-{n}")))
                }
                _ => Err(syntax_error("Unexpected operator")),
            },
            Token::Symbol("(") => {
                let inner = self.expr()?;
                self.expect_symbol(")")?;
                Ok(inner)
            }
            Token::Symbol("{") => {
                let mut entries = Vec::new();
                if !self.eat_symbol("}") {
                    loop {
                        let key = match self.peek().cloned() {
                            Some(Token::Str(k)) => k,
                            _ => return Err(syntax_error("Expected a quoted key in a tuple")),
                        };
                        self.pos += 1;
                        self.expect_symbol(":")?;
                        entries.push((key, self.expr()?));
                        if self.eat_symbol("}") {
                            break;
                        }
                        self.expect_symbol(",")?;
                    }
                }
                Ok(Expr::Map(entries))
            }
            Token::Symbol(open @ ("[" | "<<")) => {
                let close = if open == "[" { "]" } else { ">>" };
                let mut elements = Vec::new();
                if !self.eat_symbol(close) {
                    loop {
                        elements.push(self.expr()?);
                        if self.eat_symbol(close) {
                            break;
                        }
                        self.expect_symbol(",")?;
                    }
                }
                Ok(if open == "[" {
                    Expr::List(elements)
                } else {
                    Expr::Bag(elements)
                })
            }
            Token::Word(w) if w.eq_ignore_ascii_case("TRUE") => Ok(Expr::Bool(true)),
            Token::Word(w) if w.eq_ignore_ascii_case("FALSE") => Ok(Expr::Bool(false)),
            Token::Word(w) if w.eq_ignore_ascii_case("NULL") => Ok(Expr::Null),
            Token::Word(w) if w.eq_ignore_ascii_case("MISSING") => Ok(Expr::Missing),
            // EXISTS is a statement of transactions, not a function (conformance
            // partiqlFunctions.test.ts, AWS).
            Token::Word(w) if w.eq_ignore_ascii_case("EXISTS") && self.peek_symbol("(") => Err(
                Error::validation(format!("Unrecognized function: exists at {span}")),
            ),
            Token::Word(w) if !is_keyword(&w) && self.peek_symbol("(") => {
                self.pos += 1;
                let mut args = Vec::new();
                if !self.eat_symbol(")") {
                    loop {
                        args.push(self.expr()?);
                        if self.eat_symbol(")") {
                            break;
                        }
                        self.expect_symbol(",")?;
                    }
                }
                Ok(Expr::Call(w.to_ascii_lowercase(), args, span))
            }
            Token::Word(w) if !is_keyword(&w) => {
                let mut path = PathExpr {
                    name: w,
                    steps: Vec::new(),
                    span,
                };
                self.path_steps(&mut path)?;
                Ok(Expr::Path(path))
            }
            Token::QuotedName(name) => {
                let mut path = PathExpr {
                    name,
                    steps: Vec::new(),
                    span,
                };
                self.path_steps(&mut path)?;
                Ok(Expr::Path(path))
            }
            _ => {
                self.pos -= 1;
                Err(self.unexpected_term())
            }
        }
    }
}

fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const VALID: &[&str] = &[
        "SELECT a.b[1], \"c\" FROM \"t\".\"i\" WHERE pk IN ['a', ?] AND sk BETWEEN 1 AND 2 ORDER BY sk DESC",
        "INSERT INTO t VALUE {'pk': ?, 'm': {'l': [1, -2.5e3, TRUE, NULL]}, 's': <<'x'>>}",
        "UPDATE t SET a = a + 1, l = list_append(l, [1]) REMOVE b[0] WHERE pk = 1 AND NOT (c IS MISSING OR d <> 2) RETURNING ALL NEW *",
        "EXISTS(SELECT * FROM t WHERE pk = 1 AND begins_with(a, 'x'))",
    ];

    proptest! {
        #[test]
        fn prefixes_of_valid_statements_never_panic(which in 0..VALID.len(), cut in 0usize..200) {
            let text: String = VALID[which].chars().take(cut).collect();
            let _ = parse(&text);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[ a-zA-Z0-9'\"?<>=!(),.\\[\\]{}:*+;/-]{0,120}") {
            let _ = parse(&text);
        }
    }

    fn path(name: &str) -> PathExpr {
        PathExpr {
            name: name.into(),
            steps: Vec::new(),
            span: Span::default(),
        }
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn select_with_index_projection_and_order() {
        let parsed = parse(
            "select a.b[1], \"c\" FROM \"t\".\"i\" WHERE pk = ? AND sk > 3 ORDER BY sk DESC;",
        )
        .unwrap();
        assert_eq!(parsed.parameters, 1);
        let Statement::Select(select) = parsed.statement else {
            panic!("not a select");
        };
        assert_eq!(
            select.projection,
            Projection::Paths(vec![
                PathExpr {
                    name: "a".into(),
                    steps: vec![Step::Field("b".into()), Step::Index(1)],
                    span: Span::default(),
                },
                path("c"),
            ])
        );
        assert_eq!(select.table, "t");
        assert_eq!(select.index.as_deref(), Some("i"));
        assert_eq!(select.order_by, vec![("sk".to_string(), true)]);
        assert_eq!(
            select.filter,
            Some(Expr::And(vec![
                Expr::Compare(
                    Cmp::Eq,
                    Box::new(Expr::Path(path("pk"))),
                    Box::new(Expr::Param(0))
                ),
                Expr::Compare(
                    Cmp::Gt,
                    Box::new(Expr::Path(path("sk"))),
                    Box::new(Expr::Number("3".into()))
                ),
            ]))
        );
    }

    #[test]
    fn conditions() {
        let parsed = parse(
            "SELECT * FROM t WHERE a IS NOT MISSING AND NOT b BETWEEN 1 AND 2 OR c IN ['x', ?] AND begins_with(d, 'p')",
        )
        .unwrap();
        assert_eq!(parsed.parameters, 1);
        let Statement::Select(Select {
            filter: Some(Expr::Or(parts)),
            ..
        }) = parsed.statement
        else {
            panic!("OR binds loosest");
        };
        assert!(matches!(parts.as_slice(), [Expr::And(..), Expr::And(..)]));
    }

    #[test]
    fn writes() {
        let parsed = parse("INSERT INTO \"t\" VALUE {'pk': ?, 'n': -1.5, 's': <<'a', 'b'>>, 'm': {'l': [1, TRUE, NULL]}}").unwrap();
        assert_eq!(parsed.parameters, 1);
        assert!(matches!(parsed.statement, Statement::Insert { .. }));
        let parsed = parse(
            "UPDATE t SET a = ?, n = n + 1 SET l = list_append(l, [1]) REMOVE x, y[0] WHERE pk = 'k' AND a > 1 RETURNING MODIFIED NEW *",
        )
        .unwrap();
        let Statement::Update {
            assignments,
            returning,
            ..
        } = parsed.statement
        else {
            panic!("not an update");
        };
        assert_eq!(assignments.len(), 5);
        assert_eq!(returning, Some(Returning::ModifiedNew));
        assert!(matches!(
            parse("DELETE FROM t WHERE pk = 1 RETURNING ALL OLD *")
                .unwrap()
                .statement,
            Statement::Delete {
                returning: Some(Returning::AllOld),
                ..
            }
        ));
        assert!(matches!(
            parse("EXISTS(SELECT * FROM t WHERE pk = 1 AND a = 2)")
                .unwrap()
                .statement,
            Statement::Exists(_)
        ));
    }

    #[test]
    fn errors_have_dynamodb_wording() {
        let bad = "Statement wasn't well formed, can't be processed: ";
        assert_eq!(
            err("SELECT * FROM t WHERE pk = 1 foo"),
            format!("{bad}Unexpected token after expression")
        );
        assert_eq!(
            err("SELECT * FROM t WHERE"),
            format!("{bad}Unexpected term")
        );
        assert_eq!(
            err("SELECT * FROM t WHERE pk = 'a' AND"),
            format!("{bad}Missing right-hand side expression of infix operator")
        );
        assert_eq!(
            err("SELECT * FROM t WHERE ORDER BY pk"),
            format!("{bad}Unexpected keyword")
        );
        assert_eq!(
            err("DELETE FROM"),
            format!("{bad}Expected identifier for simple path")
        );
        assert_eq!(err("SELECT * FROM t x"), "Aliasing is not supported");
        assert_eq!(err("SELECT * FROM t AS x"), "Aliasing is not supported");
        assert_eq!(
            err("UPDATE t SET a = 1"),
            "Where clause does not contain a mandatory equality on all key attributes"
        );
        assert_eq!(
            err("DELETE FROM t WHERE pk = 1 RETURNING ALL NEW *"),
            "Invalid returning clause: RETURNING ALL NEW *. Only RETURNING ALL OLD * is allowed in DELETE statements."
        );
        assert_eq!(
            err("INSERT INTO t VALUE {'pk': 1} RETURNING ALL OLD *"),
            "RETURNING is not supported in INSERT"
        );
        assert_eq!(
            err("SELECT *, a FROM t"),
            "Other attributes should not be present in the projection when '*' is used."
        );
        assert_eq!(
            err("UPSERT INTO t VALUE {'pk': 1}"),
            "Unsupported operation: UPSERT"
        );
        assert!(err("").contains("Member must have length"));
        assert!(err(&format!("SELECT * FROM t WHERE {}a = 1", "(".repeat(200))).starts_with(bad));
        assert!(err("SELECT * FROM t WHERE a = 1 /* open").starts_with(bad));
    }
}
