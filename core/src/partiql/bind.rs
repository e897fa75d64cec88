//! From the syntax tree to core's values and trees: literals and `?` parameters bound to
//! attribute values, WHERE clauses to condition trees (through the builders the expression
//! grammar uses, so an operand PartiQL accepts is checked exactly as in a
//! ConditionExpression), a single-item WHERE split into key and condition, projections.

use std::collections::BTreeSet;

use base64::Engine as _;

use super::lexer::Span;
use super::parser::{
    Cmp, Expr, IsWhat, Parsed, PathExpr, Projection as Columns, Statement, Step, parse,
};
use crate::expr::{
    CmpOp, Cond, Path, Projection, RawOperand, build_between, build_comparison,
    build_function_condition, build_in, check_disjoint,
};
use crate::model::{AttributeValue, Item, KeyShape, Number, NumberError, ValueLayer};
use crate::ops::Source;
use crate::{Error, Result, Store};

/// DynamoDB's message for a parameter count that does not match the statement's `?`.
const PARAMETER_COUNT: &str = "Number of parameters in request and statement don't match.";

/// Parses a statement and checks its parameters against its `?`.
pub(super) fn parse_with(text: &str, parameters: &[AttributeValue]) -> Result<Statement> {
    let Parsed {
        statement,
        parameters: expected,
    } = parse(text)?;
    if expected != parameters.len() {
        return Err(Error::validation(PARAMETER_COUNT));
    }
    Ok(statement)
}

/// The attribute value of a literal, parameter, map, list or set; `at` names where it is,
/// for error messages (`root`, `root.a`, `root[1]`).
pub(super) fn value(expr: &Expr, params: &[AttributeValue], at: &str) -> Result<AttributeValue> {
    Ok(match expr {
        Expr::Param(i) => params
            .get(*i)
            .cloned()
            .ok_or_else(|| Error::validation(PARAMETER_COUNT))?,
        Expr::Str(s) => AttributeValue::S(s.clone()),
        // A literal is read as Java's BigDecimal reads it: an exponent or scale past a 32-bit
        // integer leaves the statement not well formed, with nothing said after the colon
        // (conformance partiqlGrammar.test.ts, AWS).
        Expr::Number(n) => {
            AttributeValue::N(Number::parse_in(n, ValueLayer::Older).map_err(|e| match e {
                NumberError::NotNumeric(_) | NumberError::Empty => super::syntax_error(""),
                e => Error::validation(format!("{e} under {at}")),
            })?)
        }
        Expr::Bool(b) => AttributeValue::Bool(*b),
        Expr::Null => AttributeValue::Null,
        Expr::Missing => {
            return Err(Error::validation(
                "MISSING must be compared using IS operator",
            ));
        }
        Expr::Map(entries) => {
            let mut map = Item::new();
            for (key, v) in entries {
                let inner = value(v, params, &format!("{at}.{key}"))?;
                if map.insert(key.clone(), inner).is_some() {
                    return Err(Error::validation(format!(
                        "Duplicate keys in tuple. Key: {key} under {at}"
                    )));
                }
            }
            AttributeValue::M(map)
        }
        Expr::List(elements) => AttributeValue::L(
            elements
                .iter()
                .enumerate()
                .map(|(i, e)| value(e, params, &format!("{at}[{i}]")))
                .collect::<Result<_>>()?,
        ),
        Expr::Bag(elements) => bag(elements, params, at)?,
        Expr::Call(name, _, span) => {
            return Err(Error::validation(format!(
                "Unsupported data type: {name} under key {at} at {span}"
            )));
        }
        _ => {
            return Err(super::syntax_error("Expected a value"));
        }
    })
}

/// A `<<...>>` as a string, number or binary set.
pub(super) fn bag(
    elements: &[Expr],
    params: &[AttributeValue],
    at: &str,
) -> Result<AttributeValue> {
    let values = elements
        .iter()
        .map(|e| value(e, params, at))
        .collect::<Result<Vec<_>>>()?;
    match values.first() {
        None => Err(Error::validation("Empty bags are not supported")),
        Some(AttributeValue::S(_)) => bag_members(&values, |v| match v {
            AttributeValue::S(s) => Some(s.clone()),
            _ => None,
        })
        .map(AttributeValue::Ss),
        Some(AttributeValue::N(_)) => bag_members(&values, |v| match v {
            AttributeValue::N(n) => Some(n.clone()),
            _ => None,
        })
        .map(AttributeValue::Ns),
        Some(AttributeValue::B(_)) => bag_members(&values, |v| match v {
            AttributeValue::B(b) => Some(b.clone()),
            _ => None,
        })
        .map(AttributeValue::Bs),
        Some(_) => Err(unsupported_in_bag()),
    }
}

/// DynamoDB's refusal of a bag member that is no string, number or binary, or of another
/// kind than the first.
fn unsupported_in_bag() -> Error {
    Error::validation(
        "Unsupported data type in Bag. DynamoDB only supports either numbers or strings in bags",
    )
}

/// The members of a bag as a set, each taken by `member` (`None`: a value of another kind). A
/// repeated member is refused, the members listed as written, as DynamoDB's older value
/// checks list them (conformance partiqlFunctions.test.ts, AWS, for strings).
fn bag_members<T: Ord>(
    values: &[AttributeValue],
    member: impl Fn(&AttributeValue) -> Option<T>,
) -> Result<BTreeSet<T>> {
    let mut set = BTreeSet::new();
    let mut repeated = false;
    for value in values {
        repeated |= !set.insert(member(value).ok_or_else(unsupported_in_bag)?);
    }
    if repeated {
        let shown: Vec<String> = values
            .iter()
            .map(|v| match v {
                AttributeValue::S(s) => s.clone(),
                AttributeValue::N(n) => n.to_string(),
                AttributeValue::B(b) => base64::engine::general_purpose::STANDARD.encode(b),
                _ => String::new(),
            })
            .collect();
        return Err(Error::validation(format!(
            "One or more parameter values were invalid: Input collection [{}] contains duplicates.",
            shown.join(", ")
        )));
    }
    Ok(set)
}

/// True when `expr` is a value (no paths, no operators).
pub(super) fn is_value(expr: &Expr) -> bool {
    match expr {
        Expr::Param(_)
        | Expr::Str(_)
        | Expr::Number(_)
        | Expr::Bool(_)
        | Expr::Null
        | Expr::Missing => true,
        Expr::Map(entries) => entries.iter().all(|(_, v)| is_value(v)),
        Expr::List(elements) | Expr::Bag(elements) => elements.iter().all(is_value),
        _ => false,
    }
}

/// The key schema of a table or index; an unknown table is reported as PartiQL reports it.
pub(super) fn key_shape(store: &Store, table: &str, index: Option<&str>) -> Result<KeyShape> {
    Ok(source(store, table, index)?.shape().clone())
}

/// The table (or index) a statement reads, with PartiQL's words for one that is not there.
pub(super) fn source(store: &Store, table: &str, index: Option<&str>) -> Result<Source> {
    store.source(table, index).map_err(|e| match e {
        Error::ResourceNotFound(_) => {
            Error::ResourceNotFound("Requested resource not found".into())
        }
        // PartiQL's wording names no index (conformance indexReads.test.ts, run against AWS).
        Error::Validation(m) if m.starts_with("The table does not have the specified index") => {
            Error::validation("The table does not have the specified index")
        }
        other => other,
    })
}

/// A path of the syntax tree as the expression module's path.
pub(super) fn path(p: &PathExpr) -> Path {
    p.steps
        .iter()
        .fold(Path::new(p.name.clone()), |path, step| match step {
            Step::Field(f) => path.field(f.clone()),
            Step::Index(i) => path.index(*i),
        })
}

/// The columns of a SELECT that names its paths: each path with the name its value is
/// returned under, the last dotted step with any `[n]` after it, as DynamoDB answers
/// `SELECT a.b` with `{"b": ...}` and `SELECT a[0]` with `{"a[0]": ...}`.
pub(super) fn columns(projection: &Columns) -> Option<Vec<(String, Path)>> {
    let Columns::Paths(paths) = projection else {
        return None;
    };
    let named = paths.iter().map(|p| {
        let name = p
            .steps
            .iter()
            .fold(p.name.clone(), |name, step| match step {
                Step::Field(field) => field.clone(),
                Step::Index(i) => format!("{name}[{i}]"),
            });
        (name, path(p))
    });
    Some(named.collect())
}

/// One row of a SELECT's answer: the value of each column found in `item`.
pub(super) fn row(columns: &[(String, Path)], item: &Item) -> Item {
    columns
        .iter()
        .filter_map(|(name, path)| Some((name.clone(), path.resolve(item)?.clone())))
        .collect()
}

/// The name of a path that is just a top-level attribute.
pub(super) fn top_level(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Path(p) if p.steps.is_empty() => Some(&p.name),
        _ => None,
    }
}

/// `set_add` and `set_delete`, which only an UPDATE's SET takes, as `a = set_add(a, <<...>>)`.
pub(super) fn is_set_function(name: &str) -> bool {
    matches!(name, "set_add" | "set_delete")
}

/// A function PartiQL does not know where it is written (conformance partiqlFunctions.test.ts,
/// AWS).
fn unrecognized_function(name: &str, span: Span) -> Error {
    Error::validation(format!("Unrecognized function: {name} at {span}"))
}

/// An operand of a condition or update: a path, a function call or a value.
pub(super) fn operand(expr: &Expr, params: &[AttributeValue]) -> Result<RawOperand> {
    Ok(match expr {
        Expr::Path(p) => RawOperand::Path(path(p)),
        Expr::Call(name, _, span) if is_set_function(name) => {
            return Err(unrecognized_function(name, *span));
        }
        Expr::Call(name, args, _) => RawOperand::Call {
            name: name.clone(),
            args: args
                .iter()
                .map(|a| operand(a, params))
                .collect::<Result<_>>()?,
        },
        e if is_value(e) => RawOperand::Value(value(e, params, "root")?),
        Expr::Plus(..) => return Err(unsupported_condition_operator("+")),
        Expr::Minus(..) => return Err(unsupported_condition_operator("-")),
        _ => return Err(super::syntax_error("Unexpected term")),
    })
}

/// Arithmetic where a condition expects a value.
fn unsupported_condition_operator(operator: &str) -> Error {
    Error::validation(format!(
        "Unsupported operator in Condition Expression. Operator: {operator}"
    ))
}

/// The expression module's comparison for a PartiQL one.
pub(super) fn cmp_op(cmp: Cmp) -> CmpOp {
    match cmp {
        Cmp::Eq => CmpOp::Eq,
        Cmp::Ne => CmpOp::Ne,
        Cmp::Lt => CmpOp::Lt,
        Cmp::Le => CmpOp::Le,
        Cmp::Gt => CmpOp::Gt,
        Cmp::Ge => CmpOp::Ge,
    }
}

/// A WHERE (or part of one) as a condition tree.
pub(super) fn condition(expr: &Expr, params: &[AttributeValue]) -> Result<Cond> {
    let checked = |r: std::result::Result<Cond, String>| r.map_err(Error::Validation);
    match expr {
        Expr::And(parts) => Ok(Cond::And(
            parts
                .iter()
                .map(|c| condition(c, params))
                .collect::<Result<_>>()?,
        )),
        Expr::Or(parts) => Ok(Cond::Or(
            parts
                .iter()
                .map(|c| condition(c, params))
                .collect::<Result<_>>()?,
        )),
        Expr::Not(inner) => Ok(Cond::Not(Box::new(condition(inner, params)?))),
        // A condition function compared with a boolean is that condition, or its negation
        // (conformance tier2/partiql/whereFunctions.test.ts, AWS).
        Expr::Compare(cmp @ (Cmp::Eq | Cmp::Ne), a, b)
            if let Some((call, wanted)) = tested_against_boolean(a, b) =>
        {
            let test = condition(call, params)?;
            Ok(match (*cmp == Cmp::Eq) == wanted {
                true => test,
                false => Cond::Not(Box::new(test)),
            })
        }
        Expr::Compare(cmp, a, b) => {
            if matches!(**a, Expr::Missing) || matches!(**b, Expr::Missing) {
                return Err(Error::validation(
                    "MISSING must be compared using IS operator",
                ));
            }
            checked(build_comparison(
                cmp_op(*cmp),
                operand(a, params)?,
                operand(b, params)?,
            ))
        }
        Expr::Between(v, low, high) => checked(build_between(
            operand(v, params)?,
            operand(low, params)?,
            operand(high, params)?,
        )),
        Expr::In(v, list) => {
            if list.is_empty() || !matches!(**v, Expr::Path(_)) {
                return Err(Error::validation(
                    "IN operator must have a left hand argument of type Variable Reference and right hand argument of type Seq with at least one member",
                ));
            }
            let list = list
                .iter()
                .map(|e| operand(e, params))
                .collect::<Result<_>>()?;
            checked(build_in(operand(v, params)?, list))
        }
        Expr::Is(v, what, negated) => {
            let Expr::Path(p) = &**v else {
                return Err(Error::validation(
                    "The left hand side argument to IS must be a Variable Reference, Literal, or Path",
                ));
            };
            let type_test = |tag: &str| {
                checked(build_function_condition(
                    "attribute_type",
                    vec![
                        RawOperand::Path(path(p)),
                        RawOperand::Value(AttributeValue::S(tag.into())),
                    ],
                ))
            };
            let test = match what {
                IsWhat::Missing => Cond::NotExists(path(p)),
                IsWhat::Null => type_test("NULL")?,
                IsWhat::Type(tag) => type_test(tag)?,
            };
            Ok(match (negated, test) {
                (true, Cond::NotExists(p)) => Cond::Exists(p),
                (true, test) => Cond::Not(Box::new(test)),
                (false, test) => test,
            })
        }
        Expr::Call(name, _, span) if is_set_function(name) => {
            Err(unrecognized_function(name, *span))
        }
        Expr::Call(name, args, _) => {
            let args = args
                .iter()
                .map(|a| operand(a, params))
                .collect::<Result<_>>()?;
            checked(build_function_condition(name, args))
        }
        _ => Err(Error::validation(
            "WHERE clause must contain an expression that resolves to a boolean",
        )),
    }
}

/// A function call compared with `true` or `false`, either way round: the call and the
/// boolean.
fn tested_against_boolean<'e>(a: &'e Expr, b: &'e Expr) -> Option<(&'e Expr, bool)> {
    match (a, b) {
        (call @ Expr::Call(..), Expr::Bool(wanted))
        | (Expr::Bool(wanted), call @ Expr::Call(..)) => Some((call, *wanted)),
        _ => None,
    }
}

/// The parts of a chain of ANDs (parenthesized ANDs included).
pub(super) fn conjuncts(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::And(parts) => parts.iter().flat_map(conjuncts).collect(),
        other => vec![other],
    }
}

/// `name = value` or `value = name`.
pub(super) fn equality(expr: &Expr) -> Option<(&str, &Expr)> {
    let Expr::Compare(Cmp::Eq, a, b) = expr else {
        return None;
    };
    match (top_level(a), top_level(b)) {
        (Some(name), None) if is_value(b) => Some((name, b)),
        (None, Some(name)) if is_value(a) => Some((name, a)),
        _ => None,
    }
}

/// The conjunction of `parts` as one condition, `None` for none.
pub(super) fn all_of(parts: Vec<Cond>) -> Option<Cond> {
    match parts.len() {
        0 => None,
        1 => parts.into_iter().next(),
        _ => Some(Cond::And(parts)),
    }
}

/// A single-item WHERE: the key it fixes, and the condition made of the rest.
pub(super) fn split_key(
    filter: &Expr,
    shape: &KeyShape,
    params: &[AttributeValue],
    incomplete: &str,
) -> Result<(Item, Vec<Cond>)> {
    let mut key = Item::new();
    let mut rest = Vec::new();
    for part in conjuncts(filter) {
        match equality(part) {
            Some((name, v)) if shape.is_key_attribute(name) => {
                if key
                    .insert(name.to_string(), value(v, params, "root")?)
                    .is_some()
                {
                    return Err(Error::validation(format!(
                        "Multiple conditions on same key {name}. Only single item Update/Insert/Delete are supported"
                    )));
                }
            }
            _ => rest.push(condition(part, params)?),
        }
    }
    if shape.attributes().any(|a| !key.contains_key(&a.name)) {
        return Err(Error::validation(incomplete));
    }
    Ok((key, rest))
}

/// `attribute_exists(<partition key>)`: the item exists.
pub(super) fn item_exists(shape: &KeyShape) -> Cond {
    Cond::Exists(Path::new(shape.hash.name.clone()))
}

/// The projection of a SELECT; `None` for `*`.
pub(super) fn projection(columns: &Columns) -> Result<Option<Projection>> {
    match columns {
        Columns::All => Ok(None),
        Columns::Paths(paths) => {
            let paths: Vec<Path> = paths.iter().map(path).collect();
            check_disjoint(&paths.iter().collect::<Vec<_>>()).map_err(Error::Validation)?;
            Ok(Some(Projection::from_paths(paths)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Condition;
    use crate::partiql::INCOMPLETE_KEY;
    use crate::partiql::writes::insert_item;

    #[test]
    fn the_longest_chains_of_operators_convert() {
        for operator in ["AND", "OR"] {
            let chain = vec!["a = 1"; 1000].join(&format!(" {operator} "));
            let text = format!("SELECT * FROM t WHERE {chain}");
            let text = text
                .get(..super::super::MAX_STATEMENT_CHARS)
                .unwrap_or(&text);
            let text = text.rsplit_once(operator).unwrap().0;
            let Statement::Select(select) = parse(text).unwrap().statement else {
                panic!("not a select");
            };
            let cond = condition(select.filter.as_ref().unwrap(), &[]).unwrap();
            let item: Item = [(
                "a".to_string(),
                AttributeValue::N(Number::parse("1").unwrap()),
            )]
            .into();
            assert!(Condition::from_tree(cond).evaluate(Some(&item)).unwrap());
        }
    }

    #[test]
    fn values_and_sets() {
        let params = [AttributeValue::S("p".into())];
        let parsed = parse("INSERT INTO t VALUE {'a': ?, 'n': 1.50, 's': <<'x', 'y'>>, 'ns': <<1, 2>>, 'l': [TRUE, NULL]}").unwrap();
        let Statement::Insert { item, .. } = parsed.statement else {
            panic!("not an insert");
        };
        let item = insert_item(&item, &params).unwrap();
        let expected: Item = serde_json::from_str(
            r#"{"a":{"S":"p"},"n":{"N":"1.5"},"s":{"SS":["x","y"]},"ns":{"NS":["1","2"]},"l":{"L":[{"BOOL":true},{"NULL":true}]}}"#,
        )
        .unwrap();
        assert_eq!(item, expected);
        let bad = |text: &str| {
            let Statement::Insert { item, .. } = parse(text).unwrap().statement else {
                panic!("not an insert");
            };
            insert_item(&item, &[]).unwrap_err().to_string()
        };
        assert_eq!(
            bad("INSERT INTO t VALUE {'s': <<'x', 1>>}"),
            "Unsupported data type in Bag. DynamoDB only supports either numbers or strings in bags"
        );
        assert_eq!(
            bad("INSERT INTO t VALUE {'m': {'x': 1e126}}"),
            "Number overflow. Attempting to store a number with magnitude larger than supported range under root.x"
        );
        assert_eq!(
            bad("INSERT INTO t VALUE {'a': 1, 'a': 2}"),
            "Duplicate keys in tuple. Key: a under root"
        );
        assert!(bad("INSERT INTO t VALUE [1]").starts_with("Unsupported format"));
    }

    #[test]
    fn where_clauses_split_into_key_and_condition() {
        use crate::model::{KeyAttribute, ScalarType};
        let shape = KeyShape {
            hash: KeyAttribute {
                name: "pk".into(),
                scalar_type: ScalarType::S,
            },
            range: Some(KeyAttribute {
                name: "sk".into(),
                scalar_type: ScalarType::N,
            }),
            hash_rest: Vec::new(),
            range_rest: Vec::new(),
        };
        let filter = |text: &str| {
            let Statement::Delete { filter, .. } = parse(text).unwrap().statement else {
                panic!("not a delete");
            };
            filter
        };
        let (key, rest) = split_key(
            &filter("DELETE FROM t WHERE 3 = sk AND pk = 'a' AND n > 1"),
            &shape,
            &[],
            INCOMPLETE_KEY,
        )
        .unwrap();
        assert_eq!(key.len(), 2);
        assert_eq!(rest.len(), 1);
        let err = split_key(
            &filter("DELETE FROM t WHERE pk = 'a' OR sk = 1"),
            &shape,
            &[],
            INCOMPLETE_KEY,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), INCOMPLETE_KEY);
    }
}
