//! Update expressions (`SET`, `REMOVE`, `ADD`, `DELETE`) and the legacy `AttributeUpdates`
//! actions: parsing with DynamoDB's validation, and application to an item.
//!
//! Application happens in two steps, because every right-hand side reads the item as it was
//! before the update and list indexes refer to positions before any removal: first every
//! action is turned into "put this value" or "remove this" against the old item, then all of
//! them are applied at once by walking a tree of the touched paths.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{AttributeValue, Item, MAX_NESTING, NumberError};
use crate::{Error, Result};

use super::lexer::TokenKind;
use super::parser::{
    Parser, RawOperand, incorrect_operand_count, incorrect_operand_type, long_type_name,
};
use super::path::{Path, PathElement, check_disjoint};

/// A value on the right-hand side of `SET`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum UpdOperand {
    Path(Path),
    Value(AttributeValue),
    IfNotExists(Path, Box<UpdOperand>),
    ListAppend(Box<UpdOperand>, Box<UpdOperand>),
}

/// The whole right-hand side of `SET`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SetValue {
    Operand(UpdOperand),
    Plus(UpdOperand, UpdOperand),
    Minus(UpdOperand, UpdOperand),
}

/// One update action.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    Set(Path, SetValue),
    Remove(Path),
    /// `ADD` of an update expression: numbers and sets.
    Add(Path, AttributeValue),
    /// `DELETE` of an update expression: set difference.
    Delete(Path, AttributeValue),
    /// `ADD` of `AttributeUpdates`: also appends lists, with the legacy error messages.
    LegacyAdd(Path, AttributeValue),
    /// `DELETE` with a value of `AttributeUpdates`, with the legacy error messages.
    LegacyDelete(Path, AttributeValue),
}

impl Action {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Action::Set(p, _)
            | Action::Remove(p)
            | Action::Add(p, _)
            | Action::Delete(p, _)
            | Action::LegacyAdd(p, _)
            | Action::LegacyDelete(p, _) => p,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Clause {
    Set,
    Remove,
    Add,
    Delete,
}

impl Clause {
    fn name(self) -> &'static str {
        match self {
            Clause::Set => "SET",
            Clause::Remove => "REMOVE",
            Clause::Add => "ADD",
            Clause::Delete => "DELETE",
        }
    }
}

fn is_set(value: &AttributeValue) -> bool {
    matches!(
        value,
        AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
    )
}

/// Parses a whole update expression.
pub(crate) fn parse(parser: &mut Parser<'_, '_, '_>) -> std::result::Result<Vec<Action>, String> {
    let mut actions = Vec::new();
    let mut seen: Vec<Clause> = Vec::new();
    loop {
        let token = parser.peek();
        if token.kind == TokenKind::Eof && !seen.is_empty() {
            break;
        }
        let clause = [Clause::Set, Clause::Remove, Clause::Add, Clause::Delete]
            .into_iter()
            .find(|c| parser.is_keyword(&token, c.name()))
            .ok_or_else(|| parser.syntax_error())?;
        if seen.contains(&clause) {
            return Err(format!(
                "The \"{}\" section can only be used once in an update expression;",
                clause.name()
            ));
        }
        seen.push(clause);
        parser.advance();
        loop {
            actions.push(parse_action(parser, clause)?);
            if parser.peek().kind != TokenKind::Comma {
                break;
            }
            parser.advance();
        }
    }
    let paths: Vec<&Path> = actions.iter().map(Action::path).collect();
    check_disjoint(&paths)?;
    Ok(actions)
}

/// `a + b` (`plus`) or `a - b` in a SET: a value operand must be a number.
pub(crate) fn arithmetic(
    plus: bool,
    a: UpdOperand,
    b: UpdOperand,
) -> std::result::Result<SetValue, String> {
    let symbol = if plus { "+" } else { "-" };
    for operand in [&a, &b] {
        if let UpdOperand::Value(v) = operand
            && !matches!(v, AttributeValue::N(_))
        {
            return Err(incorrect_operand_type(symbol, v.value_type().as_str()));
        }
    }
    Ok(match plus {
        true => SetValue::Plus(a, b),
        false => SetValue::Minus(a, b),
    })
}

fn parse_action(
    parser: &mut Parser<'_, '_, '_>,
    clause: Clause,
) -> std::result::Result<Action, String> {
    let path = parser.parse_path()?;
    match clause {
        Clause::Set => {
            parser.expect(TokenKind::Eq)?;
            let first = parser.parse_operand(&[])?;
            let op = parser.peek().kind;
            if !matches!(op, TokenKind::Plus | TokenKind::Minus) {
                return Ok(Action::Set(path, SetValue::Operand(convert(first)?)));
            }
            parser.advance();
            parser.count_operator()?;
            let second = parser.parse_operand(&[])?;
            let value = arithmetic(op == TokenKind::Plus, convert(first)?, convert(second)?)?;
            Ok(Action::Set(path, value))
        }
        Clause::Remove => Ok(Action::Remove(path)),
        Clause::Add | Clause::Delete => {
            let value = parser.parse_value_ref()?;
            let valid = match clause {
                Clause::Add => is_set(&value) || matches!(value, AttributeValue::N(_)),
                _ => is_set(&value),
            };
            if !valid {
                return Err(format!(
                    "Incorrect operand type for operator or function; operator: {}, operand type: {}",
                    clause.name(),
                    long_type_name(&value)
                ));
            }
            Ok(if clause == Clause::Add {
                Action::Add(path, value)
            } else {
                Action::Delete(path, value)
            })
        }
    }
}

/// Checks a raw operand against the functions an update expression allows.
pub(crate) fn convert(raw: RawOperand) -> std::result::Result<UpdOperand, String> {
    match raw {
        RawOperand::Path(p) => Ok(UpdOperand::Path(p)),
        RawOperand::Value(v) => Ok(UpdOperand::Value(v)),
        RawOperand::Call { name, args } => {
            match name.as_str() {
                "if_not_exists" | "list_append" => {}
                "attribute_exists"
                | "attribute_not_exists"
                | "attribute_type"
                | "begins_with"
                | "contains"
                | "size" => {
                    return Err(format!(
                        "The function is not allowed in an update expression; function: {name}"
                    ));
                }
                _ => return Err(format!("Invalid function name; function: {name}")),
            }
            let count = args.len();
            let [first, second]: [RawOperand; 2] = args
                .try_into()
                .map_err(|_| incorrect_operand_count(&name, count))?;
            if name == "if_not_exists" {
                let RawOperand::Path(path) = first else {
                    return Err(format!(
                        "Operator or function requires a document path; operator or function: {name}"
                    ));
                };
                return Ok(UpdOperand::IfNotExists(path, Box::new(convert(second)?)));
            }
            // DynamoDB accepts other functions as arguments of list_append, but not itself.
            if [&first, &second]
                .iter()
                .any(|arg| matches!(arg, RawOperand::Call { name, .. } if name == "list_append"))
            {
                return Err(format!(
                    "The function is not allowed to be used this way in an expression; function: {name}"
                ));
            }
            let (a, b) = (convert(first)?, convert(second)?);
            for operand in [&a, &b] {
                if let UpdOperand::Value(v) = operand
                    && !matches!(v, AttributeValue::L(_))
                {
                    return Err(incorrect_operand_type(&name, v.value_type().as_str()));
                }
            }
            Ok(UpdOperand::ListAppend(Box::new(a), Box::new(b)))
        }
    }
}

fn missing_attribute() -> Error {
    Error::validation(
        "The provided expression refers to an attribute that does not exist in the item",
    )
}

fn incorrect_data_type() -> Error {
    Error::validation("An operand in the update expression has an incorrect data type")
}

fn legacy_type_mismatch() -> Error {
    Error::validation("Type mismatch for attribute to update")
}

fn invalid_path() -> Error {
    Error::validation("The document path provided in the update expression is invalid for update")
}

/// Arithmetic results that need more than 38 digits are reported, as DynamoDB does, as an
/// overflow.
fn arithmetic_error(e: NumberError) -> Error {
    match e {
        NumberError::TooManyDigits => NumberError::Overflow.into(),
        other => other.into(),
    }
}

fn eval(operand: &UpdOperand, old: &Item) -> Result<AttributeValue> {
    match operand {
        UpdOperand::Path(p) => p.resolve(old).cloned().ok_or_else(missing_attribute),
        UpdOperand::Value(v) => Ok(v.clone()),
        UpdOperand::IfNotExists(p, fallback) => match p.resolve(old) {
            Some(v) => Ok(v.clone()),
            None => eval(fallback, old),
        },
        UpdOperand::ListAppend(a, b) => match (eval(a, old)?, eval(b, old)?) {
            (AttributeValue::L(mut a), AttributeValue::L(b)) => {
                a.extend(b);
                Ok(AttributeValue::L(a))
            }
            _ => Err(incorrect_data_type()),
        },
    }
}

fn eval_set(value: &SetValue, old: &Item) -> Result<AttributeValue> {
    let (a, b, plus) = match value {
        SetValue::Operand(o) => return eval(o, old),
        SetValue::Plus(a, b) => (a, b, true),
        SetValue::Minus(a, b) => (a, b, false),
    };
    match (eval(a, old)?, eval(b, old)?) {
        (AttributeValue::N(x), AttributeValue::N(y)) => {
            let result = if plus { x.add(&y) } else { x.sub(&y) };
            result.map(AttributeValue::N).map_err(arithmetic_error)
        }
        _ => Err(incorrect_data_type()),
    }
}

/// Union of two sets of the same type; `None` when the types differ.
fn set_union(a: &AttributeValue, b: &AttributeValue) -> Option<AttributeValue> {
    fn union<T: Ord + Clone>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> BTreeSet<T> {
        a.union(b).cloned().collect()
    }
    Some(match (a, b) {
        (AttributeValue::Ss(a), AttributeValue::Ss(b)) => AttributeValue::Ss(union(a, b)),
        (AttributeValue::Ns(a), AttributeValue::Ns(b)) => AttributeValue::Ns(union(a, b)),
        (AttributeValue::Bs(a), AttributeValue::Bs(b)) => AttributeValue::Bs(union(a, b)),
        _ => return None,
    })
}

/// Difference of two sets of the same type: `Some(None)` when nothing is left, `None` when
/// the types differ.
fn set_difference(a: &AttributeValue, b: &AttributeValue) -> Option<Option<AttributeValue>> {
    fn diff<T: Ord + Clone>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> BTreeSet<T> {
        a.difference(b).cloned().collect()
    }
    let result = match (a, b) {
        (AttributeValue::Ss(a), AttributeValue::Ss(b)) => AttributeValue::Ss(diff(a, b)),
        (AttributeValue::Ns(a), AttributeValue::Ns(b)) => AttributeValue::Ns(diff(a, b)),
        (AttributeValue::Bs(a), AttributeValue::Bs(b)) => AttributeValue::Bs(diff(a, b)),
        _ => return None,
    };
    let empty = match &result {
        AttributeValue::Ss(s) => s.is_empty(),
        AttributeValue::Ns(s) => s.is_empty(),
        AttributeValue::Bs(s) => s.is_empty(),
        _ => false,
    };
    Some((!empty).then_some(result))
}

fn add(existing: &AttributeValue, value: &AttributeValue, legacy: bool) -> Result<AttributeValue> {
    let mismatch = if legacy {
        legacy_type_mismatch
    } else {
        incorrect_data_type
    };
    match (existing, value) {
        (AttributeValue::N(x), AttributeValue::N(y)) => {
            x.add(y).map(AttributeValue::N).map_err(arithmetic_error)
        }
        (AttributeValue::L(x), AttributeValue::L(y)) if legacy => {
            let mut list = x.clone();
            list.extend(y.iter().cloned());
            Ok(AttributeValue::L(list))
        }
        _ => set_union(existing, value).ok_or_else(mismatch),
    }
}

/// What one action does to its path, computed against the old item.
enum Change {
    Put(AttributeValue),
    Remove,
}

fn change_for(action: &Action, old: &Item) -> Result<Change> {
    Ok(match action {
        Action::Set(_, value) => Change::Put(eval_set(value, old)?),
        Action::Remove(_) => Change::Remove,
        Action::Add(path, value) | Action::LegacyAdd(path, value) => {
            let legacy = matches!(action, Action::LegacyAdd(..));
            match path.resolve(old) {
                None => Change::Put(value.clone()),
                Some(existing) => Change::Put(add(existing, value, legacy)?),
            }
        }
        Action::Delete(path, value) | Action::LegacyDelete(path, value) => {
            match path.resolve(old) {
                // Removing from a missing attribute is a no-op that still checks the parent.
                None => Change::Remove,
                Some(existing) => match set_difference(existing, value) {
                    Some(Some(rest)) => Change::Put(rest),
                    Some(None) => Change::Remove,
                    None if matches!(action, Action::LegacyDelete(..)) => {
                        return Err(legacy_type_mismatch());
                    }
                    None => return Err(incorrect_data_type()),
                },
            }
        }
    })
}

/// The touched paths as a tree; a node carries a change or children, never both, because
/// the paths of one update never overlap.
#[derive(Default)]
struct Node {
    change: Option<Change>,
    fields: BTreeMap<String, Node>,
    indexes: BTreeMap<usize, Node>,
}

impl Node {
    fn insert(&mut self, path: &Path, change: Change) {
        let mut node = self.fields.entry(path.attribute().to_string()).or_default();
        for element in path.elements() {
            node = match element {
                PathElement::Field(f) => node.fields.entry(f.clone()).or_default(),
                PathElement::Index(i) => node.indexes.entry(*i).or_default(),
            };
        }
        node.change = Some(change);
    }
}

fn apply_map(
    map: &mut BTreeMap<String, AttributeValue>,
    fields: BTreeMap<String, Node>,
) -> Result<()> {
    for (key, node) in fields {
        match node.change {
            Some(Change::Put(v)) => {
                map.insert(key, v);
            }
            Some(Change::Remove) => {
                map.remove(&key);
            }
            None => apply_children(map.get_mut(&key).ok_or_else(invalid_path)?, node)?,
        }
    }
    Ok(())
}

fn apply_children(value: &mut AttributeValue, node: Node) -> Result<()> {
    if !node.fields.is_empty() {
        let AttributeValue::M(map) = value else {
            return Err(invalid_path());
        };
        apply_map(map, node.fields)?;
    }
    if !node.indexes.is_empty() {
        let AttributeValue::L(list) = value else {
            return Err(invalid_path());
        };
        apply_list(list, node.indexes)?;
    }
    Ok(())
}

/// Applies changes keyed by the list's original indexes; puts beyond the end append in index
/// order, removals beyond the end do nothing.
fn apply_list(list: &mut Vec<AttributeValue>, mut indexes: BTreeMap<usize, Node>) -> Result<()> {
    let old = std::mem::take(list);
    for (i, mut value) in old.into_iter().enumerate() {
        match indexes.remove(&i) {
            None => list.push(value),
            Some(node) => match node.change {
                Some(Change::Put(v)) => list.push(v),
                Some(Change::Remove) => {}
                None => {
                    apply_children(&mut value, node)?;
                    list.push(value);
                }
            },
        }
    }
    for node in indexes.into_values() {
        match node.change {
            Some(Change::Put(v)) => list.push(v),
            Some(Change::Remove) => {}
            None => return Err(invalid_path()),
        }
    }
    Ok(())
}

/// Applies `actions` to `item`; on error `item` is left unchanged.
pub(crate) fn apply(actions: &[Action], item: &mut Item) -> Result<()> {
    let mut tree = Node::default();
    for action in actions {
        tree.insert(action.path(), change_for(action, item)?);
    }
    let touched: Vec<String> = tree.fields.keys().cloned().collect();
    let mut updated = item.clone();
    apply_map(&mut updated, tree.fields)?;
    for name in &touched {
        if updated.get(name).is_some_and(|v| v.depth() > MAX_NESTING) {
            return Err(Error::validation(
                "Nesting Levels have exceeded supported limits",
            ));
        }
    }
    *item = updated;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::expr::Placeholders;

    fn av(json: &str) -> AttributeValue {
        serde_json::from_str(json).unwrap()
    }

    fn values() -> HashMap<String, AttributeValue> {
        HashMap::from([
            (":one".to_string(), av(r#"{"N":"1"}"#)),
            (":seven".to_string(), av(r#"{"N":"7"}"#)),
            (":big".to_string(), av(r#"{"N":"9e125"}"#)),
            (":e50".to_string(), av(r#"{"N":"1e50"}"#)),
            (":s".to_string(), av(r#"{"S":"hi"}"#)),
            (":list".to_string(), av(r#"{"L":[{"S":"x"}]}"#)),
            (":ss".to_string(), av(r#"{"SS":["cat","dog"]}"#)),
            (":ns".to_string(), av(r#"{"NS":["1"]}"#)),
        ])
    }

    fn parse_text(text: &str) -> std::result::Result<Vec<Action>, String> {
        let vals = values();
        let names = HashMap::from([("#a".to_string(), "a".to_string())]);
        let mut ph = Placeholders::new(Some(&names), Some(&vals));
        let mut parser = Parser::new(crate::expr::parser::ExprKind::Update, text, &mut ph)?;
        parse(&mut parser)
    }

    fn item(json: &str) -> Item {
        serde_json::from_str(json).unwrap()
    }

    fn run(text: &str, start: &str) -> Result<Item> {
        let mut it = item(start);
        apply(&parse_text(text).map_err(Error::validation)?, &mut it)?;
        Ok(it)
    }

    fn err(text: &str, start: &str) -> String {
        run(text, start).unwrap_err().to_string()
    }

    #[test]
    fn set_and_arithmetic() {
        assert_eq!(
            run(
                "SET b = :one, c = a + :seven, d = :seven - a",
                r#"{"a":{"N":"2"}}"#
            )
            .unwrap(),
            item(r#"{"a":{"N":"2"},"b":{"N":"1"},"c":{"N":"9"},"d":{"N":"5"}}"#)
        );
        assert_eq!(
            run("set a = if_not_exists(a, :one) + :seven", "{}").unwrap(),
            item(r#"{"a":{"N":"8"}}"#)
        );
        assert_eq!(
            run(
                "SET l = list_append(:list, l)",
                r#"{"l":{"L":[{"N":"1"}]}}"#
            )
            .unwrap(),
            item(r#"{"l":{"L":[{"S":"x"},{"N":"1"}]}}"#)
        );
        assert!(err("SET b = :big + :big", "{}").contains("overflow"));
        assert!(err("SET b = :e50 + :one", "{}").contains("number"));
        assert!(err("SET b = z", "{}").contains("does not exist"));
        assert!(err("SET x = :one, y = x", "{}").contains("does not exist"));
        assert!(err("SET b = a + :one", r#"{"a":{"S":"x"}}"#).contains("incorrect data type"));
        assert!(err("SET b = list_append(a, :list)", "{}").contains("does not exist"));
    }

    #[test]
    fn right_hand_sides_read_the_old_item() {
        assert_eq!(
            run("REMOVE a SET b = a", r#"{"a":{"S":"v"}}"#).unwrap(),
            item(r#"{"b":{"S":"v"}}"#)
        );
    }

    #[test]
    fn nested_updates() {
        let start = r#"{"a":{"M":{"b":{"N":"3"},"c":{"L":[{"S":"hi"},{"M":{"x":{"L":[{"N":"3"},{"N":"5"}]}}}]}}}}"#;
        assert_eq!(
            run("SET a.c[1].x[1] = :one, a.d = :s", start).unwrap(),
            item(
                r#"{"a":{"M":{"b":{"N":"3"},"d":{"S":"hi"},"c":{"L":[{"S":"hi"},{"M":{"x":{"L":[{"N":"3"},{"N":"1"}]}}}]}}}}"#
            )
        );
        assert!(err("SET a.b.c = :one", start).contains("invalid for update"));
        assert!(err("SET z.c = :one", start).contains("invalid for update"));
        assert!(err("SET a.b[0] = :one", start).contains("invalid for update"));
        assert!(err("REMOVE z.c", start).contains("invalid for update"));
        assert_eq!(run("REMOVE a.zz, a.c[7]", start).unwrap(), item(start));
    }

    #[test]
    fn list_indexes_refer_to_the_old_positions() {
        let start = r#"{"a":{"L":[{"N":"2"},{"N":"3"},{"N":"4"},{"N":"5"},{"N":"6"},{"N":"7"}]}}"#;
        let expected = item(r#"{"a":{"L":[{"N":"2"},{"N":"4"},{"N":"1"},{"N":"6"},{"N":"7"}]}}"#);
        assert_eq!(run("REMOVE a[1] SET a[3] = :one", start).unwrap(), expected);
        assert_eq!(run("SET a[3] = :one REMOVE a[1]", start).unwrap(), expected);
        assert_eq!(
            run("SET a[84] = :one, a[17] = :s", r#"{"a":{"L":[]}}"#).unwrap(),
            item(r#"{"a":{"L":[{"S":"hi"},{"N":"1"}]}}"#)
        );
        assert_eq!(
            run("REMOVE a[0]", r#"{"a":{"L":[{"N":"1"}]}}"#).unwrap(),
            item(r#"{"a":{"L":[]}}"#)
        );
    }

    #[test]
    fn add_and_delete() {
        assert_eq!(
            run("ADD n :one, s :ss", r#"{"n":{"N":"2"},"s":{"SS":["ant"]}}"#).unwrap(),
            item(r#"{"n":{"N":"3"},"s":{"SS":["ant","cat","dog"]}}"#)
        );
        assert_eq!(run("ADD n :one", "{}").unwrap(), item(r#"{"n":{"N":"1"}}"#));
        assert_eq!(
            run("DELETE s :ss", r#"{"s":{"SS":["cat","dog","x"]}}"#).unwrap(),
            item(r#"{"s":{"SS":["x"]}}"#)
        );
        assert_eq!(
            run("DELETE s :ss", r#"{"s":{"SS":["cat"]}}"#).unwrap(),
            item("{}")
        );
        assert_eq!(run("DELETE s :ss", "{}").unwrap(), item("{}"));
        assert!(err("ADD n :one", r#"{"n":{"S":"x"}}"#).contains("incorrect data type"));
        assert!(err("ADD n :ns", r#"{"n":{"SS":["x"]}}"#).contains("incorrect data type"));
        assert!(err("DELETE n :ns", r#"{"n":{"SS":["x"]}}"#).contains("incorrect data type"));
        assert_eq!(
            parse_text("ADD a :s").unwrap_err(),
            "Incorrect operand type for operator or function; operator: ADD, operand type: STRING"
        );
        assert!(
            parse_text("ADD a :list")
                .unwrap_err()
                .contains("operand type: LIST")
        );
        assert!(
            parse_text("DELETE a :one")
                .unwrap_err()
                .contains("operator: DELETE")
        );
        assert!(
            parse_text("ADD a b")
                .unwrap_err()
                .starts_with("Syntax error")
        );
    }

    #[test]
    fn legacy_add_appends_lists() {
        let actions = vec![Action::LegacyAdd(
            Path::new("l"),
            av(r#"{"L":[{"N":"2"}]}"#),
        )];
        let mut it = item(r#"{"l":{"L":[{"N":"1"}]}}"#);
        apply(&actions, &mut it).unwrap();
        assert_eq!(it, item(r#"{"l":{"L":[{"N":"1"},{"N":"2"}]}}"#));
        let mut it = item(r#"{"l":{"N":"1"}}"#);
        let e = apply(&actions, &mut it).unwrap_err().to_string();
        assert!(e.contains("mismatch"), "{e}");
    }

    #[test]
    fn syntax_and_structure_errors() {
        let e = |t: &str| parse_text(t).unwrap_err();
        assert!(e("SET a = :one SET b = :one").contains("\"SET\" section can only be used once"));
        assert!(e("SET a = :one REMOVE b SET c = :one").contains("only be used once"));
        assert!(e("SET a = :one REMOVE a").contains("overlap"));
        assert!(e("SET #a = :one, a = :s").contains("overlap"));
        assert!(e("SET a[1][1] = :one, a[1] = :s").contains("overlap"));
        assert!(e("SET a.b = :one, a[1] = :s").contains("conflict"));
        assert!(e("HELLO b = :one").starts_with("Syntax error"));
        assert!(e("SET b = :one + :one + :one").starts_with("Syntax error"));
        assert!(e("SET c = if_not_exists(c, :one+:one)").starts_with("Syntax error"));
        assert!(e("SET :one = :one").starts_with("Syntax error"));
        assert!(e("SET").starts_with("Syntax error"));
        assert!(e("SET a = :one,").starts_with("Syntax error"));
        assert!(e("SET a = :s + :one").contains("operator or function: +, operand type: S"));
        assert!(e("SET a = list_append(:list)").contains("number of operands: 1"));
        assert!(e("SET a = list_append(:list, :s)").contains("list_append, operand type: S"));
        assert!(e("SET a = LIST_APPEND(:list, :list)").contains("Invalid function name"));
        assert!(e("SET a = f123_hi(b, c)").contains("f123_hi"));
        assert!(e("SET a = if_not_exists(:one, :one)").contains("requires a document path"));
        assert!(e("SET a = size(b)").contains("not allowed"));
        assert!(
            e("SET a = list_append(list_append(:list, :list), :list)")
                .contains("function: list_append")
        );
        assert!(parse_text("SET a = list_append(if_not_exists(a, :list), :list)").is_ok());
        assert!(parse_text("  sEt   b=:one  ").is_ok());
        assert!(parse_text("REMOVE a SET b = :one ADD c :one DELETE d :ss").is_ok());
    }

    #[test]
    fn failed_updates_leave_the_item_alone() {
        let start = r#"{"a":{"N":"1"}}"#;
        let mut it = item(start);
        let actions = parse_text("SET a = :s, z.q = :one").unwrap();
        assert!(apply(&actions, &mut it).is_err());
        assert_eq!(it, item(start));
    }
}
