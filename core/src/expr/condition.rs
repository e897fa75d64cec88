//! Condition and filter expressions: parsing into a tree with placeholders resolved, checks of
//! constant operands at parse time (as DynamoDB does), and evaluation against an item.
//!
//! The boolean structure (`AND`, `OR`, `NOT`, parentheses) is parsed with an explicit operator
//! stack rather than recursion, so hostile nesting cannot exhaust the thread's stack; the
//! operator limit bounds the depth of the resulting tree.

use std::cmp::Ordering;

use crate::model::{AttributeValue, Item, Number, ValueType};

use super::lexer::TokenKind;
use super::parser::{Parser, RawOperand, incorrect_operand_count, incorrect_operand_type};
use super::path::Path;

/// Most operands of `IN`, the left-hand one included.
const MAX_IN_OPERANDS: usize = 100;

/// Words that end an operand in a condition and so cannot start one.
const CONDITION_KEYWORDS: &[&str] = &["AND", "OR", "NOT", "BETWEEN", "IN"];

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A value inside a condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Path(Path),
    Value(AttributeValue),
    Size(Box<Operand>),
}

/// A condition tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    /// Always true (an empty legacy `Expected`).
    True,
    Compare(CmpOp, Operand, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Exists(Path),
    NotExists(Path),
    Type(Operand, ValueType),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

/// Parses a whole condition expression.
pub(crate) fn parse(parser: &mut Parser<'_, '_, '_>) -> Result<Cond, String> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Op {
        Open,
        Not,
        And,
        Or,
    }
    fn precedence(op: Op) -> u8 {
        match op {
            Op::Open => 0,
            Op::Or => 1,
            Op::And => 2,
            Op::Not => 3,
        }
    }
    struct Done {
        cond: Cond,
        parenthesized: bool,
    }
    fn apply(op: Op, out: &mut Vec<Done>) -> Result<(), String> {
        let internal = || "Invalid expression structure".to_string();
        let rhs = out.pop().ok_or_else(internal)?.cond;
        let cond = match op {
            Op::Not => Cond::Not(Box::new(rhs)),
            Op::And | Op::Or => {
                let lhs = out.pop().ok_or_else(internal)?.cond;
                let mut parts = match (op, lhs) {
                    (Op::And, Cond::And(parts)) | (Op::Or, Cond::Or(parts)) => parts,
                    (_, lhs) => vec![lhs],
                };
                parts.push(rhs);
                if op == Op::And {
                    Cond::And(parts)
                } else {
                    Cond::Or(parts)
                }
            }
            Op::Open => return Err(internal()),
        };
        out.push(Done {
            cond,
            parenthesized: false,
        });
        Ok(())
    }
    fn reduce(ops: &mut Vec<Op>, out: &mut Vec<Done>, min: u8) -> Result<(), String> {
        while let Some(&top) = ops.last() {
            if top == Op::Open || precedence(top) < min {
                break;
            }
            ops.pop();
            apply(top, out)?;
        }
        Ok(())
    }

    let mut ops: Vec<Op> = Vec::new();
    let mut out: Vec<Done> = Vec::new();
    loop {
        // Operand position: any number of NOTs and opening parentheses, then one condition.
        loop {
            let token = parser.peek();
            if parser.is_keyword(&token, "NOT") {
                parser.advance();
                parser.count_operator()?;
                ops.push(Op::Not);
            } else if token.kind == TokenKind::LParen {
                parser.advance();
                ops.push(Op::Open);
            } else {
                break;
            }
        }
        let cond = parse_primary(parser)?;
        out.push(Done {
            cond,
            parenthesized: false,
        });
        // Operator position: closing parentheses, then AND / OR / end.
        loop {
            let token = parser.peek();
            if parser.is_keyword(&token, "AND") || parser.is_keyword(&token, "OR") {
                let op = if parser.is_keyword(&token, "AND") {
                    Op::And
                } else {
                    Op::Or
                };
                parser.advance();
                parser.count_operator()?;
                reduce(&mut ops, &mut out, precedence(op))?;
                ops.push(op);
                break;
            }
            match token.kind {
                TokenKind::RParen => {
                    reduce(&mut ops, &mut out, 1)?;
                    if ops.pop() != Some(Op::Open) {
                        return Err(parser.syntax_error());
                    }
                    parser.advance();
                    let top = out
                        .last_mut()
                        .ok_or_else(|| "Invalid expression structure".to_string())?;
                    if top.parenthesized {
                        return Err("The expression has redundant parentheses;".to_string());
                    }
                    top.parenthesized = true;
                }
                TokenKind::Eof => {
                    reduce(&mut ops, &mut out, 1)?;
                    if !ops.is_empty() || out.len() != 1 {
                        return Err(parser.syntax_error());
                    }
                    return out
                        .pop()
                        .map(|d| d.cond)
                        .ok_or_else(|| "Invalid expression structure".to_string());
                }
                _ => return Err(parser.syntax_error()),
            }
        }
    }
}

/// One comparison, `BETWEEN`, `IN` or boolean function call.
fn parse_primary(parser: &mut Parser<'_, '_, '_>) -> Result<Cond, String> {
    let first = parser.parse_operand(CONDITION_KEYWORDS)?;
    let token = parser.peek();
    let cmp = match token.kind {
        TokenKind::Eq => Some(CmpOp::Eq),
        TokenKind::Ne => Some(CmpOp::Ne),
        TokenKind::Lt => Some(CmpOp::Lt),
        TokenKind::Le => Some(CmpOp::Le),
        TokenKind::Gt => Some(CmpOp::Gt),
        TokenKind::Ge => Some(CmpOp::Ge),
        _ => None,
    };
    if let Some(op) = cmp {
        parser.advance();
        parser.count_operator()?;
        let second = parser.parse_operand(CONDITION_KEYWORDS)?;
        return build_comparison(op, first, second);
    }
    if parser.is_keyword(&token, "BETWEEN") {
        parser.advance();
        parser.count_operator()?;
        let low = parser.parse_operand(CONDITION_KEYWORDS)?;
        if !parser.is_keyword(&parser.peek(), "AND") {
            return Err(parser.syntax_error());
        }
        parser.advance();
        let high = parser.parse_operand(CONDITION_KEYWORDS)?;
        return build_between(first, low, high);
    }
    if parser.is_keyword(&token, "IN") {
        parser.advance();
        parser.count_operator()?;
        parser.expect(TokenKind::LParen)?;
        let mut list = vec![parser.parse_operand(CONDITION_KEYWORDS)?];
        while parser.peek().kind == TokenKind::Comma {
            parser.advance();
            list.push(parser.parse_operand(CONDITION_KEYWORDS)?);
        }
        parser.expect(TokenKind::RParen)?;
        return build_in(first, list);
    }
    match first {
        RawOperand::Call { name, args } => build_function_condition(&name, args),
        _ => Err(parser.syntax_error()),
    }
}

fn not_allowed(function: &str) -> String {
    format!(
        "The function is not allowed to be used this way in an expression; function: {function}"
    )
}

fn requires_path(function: &str) -> String {
    format!("Operator or function requires a document path; operator or function: {function}")
}

fn is_condition_function(name: &str) -> bool {
    matches!(
        name,
        "attribute_exists" | "attribute_not_exists" | "attribute_type" | "begins_with" | "contains"
    )
}

fn is_update_function(name: &str) -> bool {
    matches!(name, "if_not_exists" | "list_append")
}

/// Converts a raw operand used as a value (not as a condition).
pub(crate) fn convert_operand(raw: RawOperand) -> Result<Operand, String> {
    match raw {
        RawOperand::Path(p) => Ok(Operand::Path(p)),
        RawOperand::Value(v) => Ok(Operand::Value(v)),
        RawOperand::Call { name, args } => {
            if name == "size" {
                let count = args.len();
                let [arg]: [RawOperand; 1] = args
                    .try_into()
                    .map_err(|_| incorrect_operand_count("size", count))?;
                let arg = convert_operand(arg)?;
                match &arg {
                    Operand::Value(v) if size_of(v).is_none() => {
                        return Err(incorrect_operand_type("size", v.value_type().as_str()));
                    }
                    Operand::Size(_) => return Err(incorrect_operand_type("size", "N")),
                    _ => {}
                }
                Ok(Operand::Size(Box::new(arg)))
            } else if is_condition_function(&name) || is_update_function(&name) {
                Err(not_allowed(&name))
            } else {
                Err(format!("Invalid function name; function: {name}"))
            }
        }
    }
}

/// Only strings, numbers and binaries can be ordered.
fn check_orderable(function: &str, operand: &Operand) -> Result<(), String> {
    match operand {
        Operand::Value(v)
            if !matches!(
                v,
                AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_)
            ) =>
        {
            Err(incorrect_operand_type(function, v.value_type().as_str()))
        }
        _ => Ok(()),
    }
}

pub(crate) fn build_comparison(op: CmpOp, a: RawOperand, b: RawOperand) -> Result<Cond, String> {
    let (a, b) = (convert_operand(a)?, convert_operand(b)?);
    if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
        check_orderable(op.symbol(), &a)?;
        check_orderable(op.symbol(), &b)?;
    }
    Ok(Cond::Compare(op, a, b))
}

/// DynamoDB's rendering of a value in its messages (BETWEEN errors, start keys):
/// `AttributeValue: {N:2}`.
pub(crate) fn describe(value: &AttributeValue) -> String {
    let shown = match value {
        AttributeValue::S(s) => s.clone(),
        AttributeValue::N(n) => n.to_string(),
        other => format!("{other:?}"),
    };
    format!("AttributeValue: {{{}:{shown}}}", value.value_type())
}

pub(crate) fn build_between(
    v: RawOperand,
    low: RawOperand,
    high: RawOperand,
) -> Result<Cond, String> {
    let (v, low, high) = (
        convert_operand(v)?,
        convert_operand(low)?,
        convert_operand(high)?,
    );
    for operand in [&v, &low, &high] {
        check_orderable("BETWEEN", operand)?;
    }
    if let (Operand::Value(l), Operand::Value(h)) = (&low, &high) {
        match compare_ordered(l, h) {
            None => {
                return Err(format!(
                    "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: {}, upper bound operand: {}",
                    describe(l),
                    describe(h)
                ));
            }
            Some(Ordering::Greater) => {
                return Err(format!(
                    "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: {}, upper bound operand: {}",
                    describe(l),
                    describe(h)
                ));
            }
            Some(_) => {}
        }
    }
    Ok(Cond::Between(v, low, high))
}

pub(crate) fn build_in(v: RawOperand, list: Vec<RawOperand>) -> Result<Cond, String> {
    if list.len() + 1 > MAX_IN_OPERANDS {
        return Err(format!(
            "Too many operands for the IN operator; number of operands: {}, maximum: {MAX_IN_OPERANDS}",
            list.len() + 1
        ));
    }
    let v = convert_operand(v)?;
    let list = list
        .into_iter()
        .map(convert_operand)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Cond::In(v, list))
}

pub(crate) fn build_function_condition(name: &str, args: Vec<RawOperand>) -> Result<Cond, String> {
    let expected = match name {
        "attribute_exists" | "attribute_not_exists" => 1,
        "attribute_type" | "begins_with" | "contains" => 2,
        "size" | "if_not_exists" | "list_append" => return Err(not_allowed(name)),
        _ => return Err(format!("Invalid function name; function: {name}")),
    };
    if args.len() != expected {
        return Err(incorrect_operand_count(name, args.len()));
    }
    let mut args = args.into_iter();
    let mut next = || {
        args.next()
            .ok_or_else(|| incorrect_operand_count(name, expected))
    };
    match name {
        "attribute_exists" | "attribute_not_exists" => {
            let RawOperand::Path(path) = next()? else {
                return Err(requires_path(name));
            };
            Ok(if name == "attribute_exists" {
                Cond::Exists(path)
            } else {
                Cond::NotExists(path)
            })
        }
        "attribute_type" => {
            let operand = convert_operand(next()?)?;
            let type_name = match next()? {
                RawOperand::Value(AttributeValue::S(s)) => s,
                RawOperand::Value(other) => {
                    return Err(incorrect_operand_type(name, other.value_type().as_str()));
                }
                _ => {
                    return Err(format!(
                        "Operator or function requires an expression attribute value for its type operand; operator or function: {name}"
                    ));
                }
            };
            let value_type = ValueType::parse(&type_name).ok_or_else(|| {
                format!(
                    "Invalid attribute type name found; type: {type_name}, valid types: {{ B,BOOL,BS,L,M,N,NS,NULL,S,SS }}"
                )
            })?;
            Ok(Cond::Type(operand, value_type))
        }
        "begins_with" => {
            let (a, b) = (convert_operand(next()?)?, convert_operand(next()?)?);
            for operand in [&a, &b] {
                if let Operand::Value(v) = operand
                    && !matches!(v, AttributeValue::S(_) | AttributeValue::B(_))
                {
                    return Err(incorrect_operand_type(name, v.value_type().as_str()));
                }
            }
            Ok(Cond::BeginsWith(a, b))
        }
        _ => {
            let (a, b) = (convert_operand(next()?)?, convert_operand(next()?)?);
            if let (Operand::Path(x), Operand::Path(y)) = (&a, &b)
                && x == y
            {
                return Err(format!(
                    "The first operand must be distinct from the remaining operands for this operator or function; operator: {name}, first operand: {}",
                    x.bracketed()
                ));
            }
            Ok(Cond::Contains(a, b))
        }
    }
}

/// `size()` of a value, `None` for types that have no size.
fn size_of(value: &AttributeValue) -> Option<usize> {
    Some(match value {
        AttributeValue::S(s) => s.encode_utf16().count(),
        AttributeValue::B(b) => b.len(),
        AttributeValue::Ss(s) => s.len(),
        AttributeValue::Ns(s) => s.len(),
        AttributeValue::Bs(s) => s.len(),
        AttributeValue::L(l) => l.len(),
        AttributeValue::M(m) => m.len(),
        AttributeValue::N(_) | AttributeValue::Bool(_) | AttributeValue::Null => return None,
    })
}

/// Order of two values of the same orderable type (S, N or B); `None` otherwise.
pub(crate) fn compare_ordered(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    match (a, b) {
        (AttributeValue::S(x), AttributeValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttributeValue::N(x), AttributeValue::N(y)) => Some(x.cmp(y)),
        (AttributeValue::B(x), AttributeValue::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// An operand's value: borrowed from the item or the expression, or computed by `size()`.
enum Val<'v> {
    Borrowed(&'v AttributeValue),
    Owned(AttributeValue),
}

impl Val<'_> {
    fn get(&self) -> &AttributeValue {
        match self {
            Val::Borrowed(v) => v,
            Val::Owned(v) => v,
        }
    }
}

fn eval_operand<'v>(operand: &'v Operand, item: Option<&'v Item>) -> Option<Val<'v>> {
    match operand {
        Operand::Path(p) => item.and_then(|i| p.resolve(i)).map(Val::Borrowed),
        Operand::Value(v) => Some(Val::Borrowed(v)),
        Operand::Size(inner) => {
            let value = eval_operand(inner, item)?;
            let size = i64::try_from(size_of(value.get())?).ok()?;
            Some(Val::Owned(AttributeValue::N(Number::from(size))))
        }
    }
}

fn contains(haystack: &AttributeValue, needle: &AttributeValue) -> bool {
    match (haystack, needle) {
        (AttributeValue::S(h), AttributeValue::S(n)) => h.contains(n.as_str()),
        (AttributeValue::B(h), AttributeValue::B(n)) => {
            n.is_empty() || h.windows(n.len()).any(|w| w == n.as_slice())
        }
        (AttributeValue::Ss(set), AttributeValue::S(n)) => set.contains(n),
        (AttributeValue::Ns(set), AttributeValue::N(n)) => set.contains(n),
        (AttributeValue::Bs(set), AttributeValue::B(n)) => set.contains(n),
        (AttributeValue::L(list), n) => list.contains(n),
        _ => false,
    }
}

impl Cond {
    /// Evaluates the condition; `item` is `None` for a missing item.
    pub(crate) fn evaluate(&self, item: Option<&Item>) -> bool {
        let value = |o| eval_operand(o, item);
        match self {
            Cond::True => true,
            Cond::Compare(op, a, b) => {
                let (Some(a), Some(b)) = (value(a), value(b)) else {
                    // A missing attribute equals nothing, so it is "not equal" to everything.
                    return *op == CmpOp::Ne;
                };
                let (a, b) = (a.get(), b.get());
                match op {
                    CmpOp::Eq => a == b,
                    CmpOp::Ne => a != b,
                    _ => compare_ordered(a, b).is_some_and(|ord| match op {
                        CmpOp::Lt => ord == Ordering::Less,
                        CmpOp::Le => ord != Ordering::Greater,
                        CmpOp::Gt => ord == Ordering::Greater,
                        _ => ord != Ordering::Less,
                    }),
                }
            }
            Cond::Between(v, low, high) => {
                let (Some(v), Some(low), Some(high)) = (value(v), value(low), value(high)) else {
                    return false;
                };
                compare_ordered(low.get(), v.get()).is_some_and(|o| o != Ordering::Greater)
                    && compare_ordered(v.get(), high.get()).is_some_and(|o| o != Ordering::Greater)
            }
            Cond::In(v, list) => {
                let Some(v) = value(v) else {
                    return false;
                };
                list.iter()
                    .any(|o| value(o).is_some_and(|x| x.get() == v.get()))
            }
            Cond::Exists(p) => item.and_then(|i| p.resolve(i)).is_some(),
            Cond::NotExists(p) => item.and_then(|i| p.resolve(i)).is_none(),
            Cond::Type(o, t) => value(o).is_some_and(|v| v.get().value_type() == *t),
            Cond::BeginsWith(a, b) => {
                let (Some(a), Some(b)) = (value(a), value(b)) else {
                    return false;
                };
                match (a.get(), b.get()) {
                    (AttributeValue::S(a), AttributeValue::S(b)) => a.starts_with(b.as_str()),
                    (AttributeValue::B(a), AttributeValue::B(b)) => a.starts_with(b),
                    _ => false,
                }
            }
            Cond::Contains(a, b) => {
                let (Some(a), Some(b)) = (value(a), value(b)) else {
                    return false;
                };
                contains(a.get(), b.get())
            }
            Cond::Not(c) => !c.evaluate(item),
            Cond::And(parts) => parts.iter().all(|c| c.evaluate(item)),
            Cond::Or(parts) => parts.iter().any(|c| c.evaluate(item)),
        }
    }

    /// Every document path the condition reads, in order of appearance.
    pub(crate) fn paths(&self) -> Vec<&Path> {
        fn operand<'c>(o: &'c Operand, out: &mut Vec<&'c Path>) {
            match o {
                Operand::Path(p) => out.push(p),
                Operand::Value(_) => {}
                Operand::Size(inner) => operand(inner, out),
            }
        }
        fn walk<'c>(c: &'c Cond, out: &mut Vec<&'c Path>) {
            match c {
                Cond::True => {}
                Cond::Compare(_, a, b) | Cond::BeginsWith(a, b) | Cond::Contains(a, b) => {
                    operand(a, out);
                    operand(b, out);
                }
                Cond::Between(a, b, c) => {
                    operand(a, out);
                    operand(b, out);
                    operand(c, out);
                }
                Cond::In(v, list) => {
                    operand(v, out);
                    list.iter().for_each(|o| operand(o, out));
                }
                Cond::Exists(p) | Cond::NotExists(p) => out.push(p),
                Cond::Type(o, _) => operand(o, out),
                Cond::Not(c) => walk(c, out),
                Cond::And(parts) | Cond::Or(parts) => parts.iter().for_each(|c| walk(c, out)),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::expr::Placeholders;

    fn values() -> HashMap<String, AttributeValue> {
        let v = |j: &str| serde_json::from_str::<AttributeValue>(j).unwrap();
        HashMap::from([
            (":one".to_string(), v(r#"{"N":"1"}"#)),
            (":two".to_string(), v(r#"{"N":"2"}"#)),
            (":s".to_string(), v(r#"{"S":"hel"}"#)),
            (":dog".to_string(), v(r#"{"S":"dog"}"#)),
            (":list".to_string(), v(r#"{"L":[{"N":"1"}]}"#)),
            (":b".to_string(), v(r#"{"B":"aGk="}"#)),
            (":t".to_string(), v(r#"{"S":"N"}"#)),
            (":bad_t".to_string(), v(r#"{"S":"DOG"}"#)),
            (":ss".to_string(), v(r#"{"SS":["a","b"]}"#)),
        ])
    }

    fn parse_text(text: &str) -> Result<Cond, String> {
        let vals = values();
        let names = HashMap::from([("#n".to_string(), "and".to_string())]);
        let mut ph = Placeholders::new(Some(&names), Some(&vals));
        let mut parser = Parser::new(crate::expr::parser::ExprKind::Condition, text, &mut ph)?;
        parse(&mut parser)
    }

    fn item() -> Item {
        serde_json::from_str(
            r#"{"a":{"N":"1"},"b":{"N":"2"},"c":{"N":"3"},"s":{"S":"hello"},
                "l":{"L":[{"N":"1"},{"S":"x"}]},"m":{"M":{"x":{"N":"1"},"y":{"L":[{"N":"-1"},{"N":"2"}]}}},
                "ss":{"SS":["a","b"]},"bin":{"B":"aGkgdGhlcmU="},"and":{"N":"5"},"t":{"BOOL":true}}"#,
        )
        .unwrap()
    }

    fn eval(text: &str) -> bool {
        parse_text(text).unwrap().evaluate(Some(&item()))
    }

    #[test]
    fn comparisons() {
        assert!(eval("a = :one"));
        assert!(eval("a < b"));
        assert!(eval("a <= :one"));
        assert!(!eval("a > b"));
        assert!(eval("c >= b"));
        assert!(eval("a <> b"));
        assert!(!eval("a = :s"), "different types are unequal");
        assert!(!eval("a < :s"), "different types are unordered");
        assert!(!eval("q = z"), "two missing attributes are not equal");
        assert!(eval("q <> z"), "missing attributes are unequal to anything");
        assert!(!eval("q < z"));
        assert!(eval("m.x < m.y[1]"));
        assert!(!eval("m.x < m.y[0]"));
        assert!(eval("#n = :list OR #n > :two"));
        assert!(!parse_text("a = :one").unwrap().evaluate(None));
        assert!(parse_text("a <> :one").unwrap().evaluate(None));
    }

    #[test]
    fn between_and_in() {
        assert!(eval("b BETWEEN a AND c"));
        assert!(eval("b between :one and :two"));
        assert!(!eval("c BETWEEN :one AND :two"));
        assert!(!eval("q BETWEEN :one AND :two"));
        assert!(eval("b BETWEEN a AND c AND a < b"));
        assert!(eval("a IN (:two, :one)"));
        assert!(eval("a in (:dog, b, :one)"));
        assert!(!eval("q IN (:one)"));
    }

    #[test]
    fn functions() {
        assert!(eval("attribute_exists(m.x)"));
        assert!(!eval("attribute_exists (z)"));
        assert!(eval("attribute_not_exists(z)"));
        assert!(eval("attribute_type(a, :t)"));
        assert!(!eval("attribute_type(s, :t)"));
        assert!(eval("begins_with(s, :s)"));
        assert!(!eval("begins_with(a, :s)"));
        assert!(eval("contains(s, :s)"));
        assert!(eval("contains(ss, :s) OR contains(l, :one)"));
        assert!(!eval("contains(m, :one)"));
        assert!(eval("size(s) = :two OR size(l) = :two"));
        assert!(eval("size(:s) > :two"));
        assert!(!eval("size(a) = :one"), "numbers have no size");
    }

    #[test]
    fn boolean_precedence() {
        assert!(eval("a < b OR c < b AND b < c"));
        assert!(!eval("NOT a < b AND c < b"));
        assert!(eval("NOT NOT NOT NOT a < b"));
        assert!(eval("nOt b < a"));
        assert!(eval("(a < b OR b < a) AND (b < c AND (a < b OR b < c))"));
        assert!(eval("((a < b) and a < b)"));
        assert!(eval("(a < b)"));
    }

    #[test]
    fn syntax_errors() {
        for text in [
            "a",
            ":one",
            "NOT a",
            "a AND :one",
            "a OR NOT :one",
            "a = :one OR NOT :one",
        ] {
            let err = parse_text(text).unwrap_err();
            assert!(err.starts_with("Syntax error"), "{text}: {err}");
        }
        assert!(
            parse_text("a IN ()")
                .unwrap_err()
                .starts_with("Syntax error")
        );
        assert!(parse_text("(((").unwrap_err().starts_with("Syntax error"));
        assert!(
            parse_text("a < b)")
                .unwrap_err()
                .starts_with("Syntax error")
        );
        assert!(
            parse_text("(a < b")
                .unwrap_err()
                .starts_with("Syntax error")
        );
        assert!(
            parse_text("a BETWEEN b c")
                .unwrap_err()
                .starts_with("Syntax error")
        );
        assert!(
            parse_text(&"(".repeat(4096))
                .unwrap_err()
                .starts_with("Syntax error")
        );
    }

    #[test]
    fn semantic_errors() {
        let err = |t: &str| parse_text(t).unwrap_err();
        assert_eq!(
            err("((a < b))"),
            "The expression has redundant parentheses;"
        );
        assert_eq!(
            err("a < :list"),
            "Incorrect operand type for operator or function; operator or function: <, operand type: L"
        );
        assert!(err(":list >= a").contains("operand type: L"));
        assert!(err("a BETWEEN :two AND :one").contains("upper bound to be greater"));
        assert!(err("a BETWEEN :two AND :dog").contains("same data type"));
        assert!(err("a BETWEEN :list AND :list").contains("BETWEEN"));
        assert!(err("begins_with(a, :one)").contains("function: begins_with, operand type: N"));
        assert!(err("attribute_exists(:one)").contains("requires a document path"));
        assert!(err("attribute_type(a, b)").contains("attribute_type"));
        assert!(err("attribute_type(a, :bad_t)").contains("DOG"));
        assert_eq!(
            err("size(a, a) = :one"),
            "Incorrect number of operands for operator or function; operator or function: size, number of operands: 2"
        );
        assert!(err("size(:one) = :one").contains("function: size, operand type: N"));
        assert!(err("size(size(s)) = :one").contains("function: size"));
        assert!(err("size(a)").contains("not allowed"));
        assert!(err("attribute_exists(a) < :one").contains("not allowed"));
        assert!(err("if_not_exists(a, a) = :one").contains("not allowed"));
        assert!(err("list_append(a, a) = :one").contains("list_append"));
        assert_eq!(err("dog(a) = :one"), "Invalid function name; function: dog");
        assert!(err("begins_with(s)").contains("begins_with"));
        assert!(err("contains(a, a)").contains("distinct"));
        assert!(parse_text("contains(a, b)").is_ok());
        assert!(err("a = :nope").contains("attribute value: :nope"));
        assert!(err("size = a").contains("reserved keyword: size"));
    }

    #[test]
    fn limits() {
        let ok = format!("a<b {}{}", "or (a<b ".repeat(149), ")".repeat(149));
        assert!(parse_text(&ok).is_ok());
        let too_many = format!("a<b {}{}", "or (a<b ".repeat(454), ")".repeat(454));
        assert!(
            parse_text(&too_many)
                .unwrap_err()
                .contains("too many operators")
        );
        assert!(
            parse_text(&format!("{}a<b", "not ".repeat(1000)))
                .unwrap_err()
                .contains("operator count: 301")
        );
        let deep = format!("{}a<b{}", "(".repeat(2046), ")".repeat(2046));
        assert!(parse_text(&deep).unwrap_err().contains("redundant"));
        let in_99: Vec<String> = (0..99).map(|_| ":one".to_string()).collect();
        assert!(parse_text(&format!("a IN ({})", in_99.join(","))).is_ok());
        let in_100: Vec<String> = (0..100).map(|_| ":one".to_string()).collect();
        assert!(
            parse_text(&format!("a IN ({})", in_100.join(",")))
                .unwrap_err()
                .contains("IN")
        );
    }

    #[test]
    fn unsigned_binary_order() {
        let bytes = |b: u8| AttributeValue::B(vec![b]);
        assert_eq!(
            compare_ordered(&bytes(127), &bytes(128)),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn referenced_paths() {
        let c = parse_text("a = :one AND (size(m.x) > b OR attribute_exists(c))").unwrap();
        let names: Vec<String> = c.paths().iter().map(|p| p.to_string()).collect();
        assert_eq!(names, vec!["a", "m.x", "b", "c"]);
    }
}
