//! Key conditions of Query: the KeyConditionExpression grammar and the legacy `KeyConditions`
//! parameter, both checked against the key schema of the table or index queried.
//!
//! DynamoDB parses a KeyConditionExpression with the ConditionExpression parser and only then
//! rejects what a key condition cannot be; doing the same here gives the same errors for free
//! (syntax, placeholders, redundant parentheses, BETWEEN bounds) and the same special ones for
//! `OR`, `NOT`, `IN`, `<>` and the other functions. Both forms are then reduced to a list of
//! per-attribute terms, and one schema check gives the errors DynamoDB gives for either form.

use std::collections::HashMap;

use crate::model::{AttributeValue, KeyAttribute, KeyShape};
use crate::{Error, Result};

use super::condition::{self, CmpOp, Cond, Operand};
use super::legacy::{comparison_condition, legacy_operator};
use super::parser::ExprKind;
use super::path::Path;
use super::{KeyCondition, LegacyCondition, Placeholders, SortKeyCondition, parse_with};

/// One condition on one attribute. `condition` is `None` for an operator that exists in the
/// legacy ComparisonOperator set but cannot select keys (NE, IN, NULL, CONTAINS, ...).
struct Term {
    name: String,
    condition: Option<SortKeyCondition>,
}

/// Parses and checks a KeyConditionExpression.
pub(crate) fn parse_expression(
    text: &str,
    placeholders: &mut Placeholders<'_>,
    shape: &KeyShape,
) -> Result<KeyCondition> {
    let terms = expression_terms(text, placeholders)?;
    // The expression counts its conditions against the key (nubo-db/dynamodb-conformance's
    // queryKeyConditionOperands.test.ts, AWS 2026); the legacy form keeps its older words.
    let keys = 1 + usize::from(shape.range.is_some());
    if !shape.is_multi_attribute() && terms.len() > 2 {
        return Err(Error::validation(format!(
            "The number of query conditions ({}) exceeds the number of key attributes defined in the schema ({keys})",
            terms.len()
        )));
    }
    check_schema(terms, shape)
}

/// Checks what of a KeyConditionExpression needs no key schema, as DynamoDB does before it
/// looks for the table.
pub(crate) fn check_expression(text: &str, placeholders: &mut Placeholders<'_>) -> Result<()> {
    expression_terms(text, placeholders).map(drop)
}

/// A KeyConditionExpression parsed into its terms.
fn expression_terms(text: &str, placeholders: &mut Placeholders<'_>) -> Result<Vec<Term>> {
    let root = parse_with(ExprKind::KeyCondition, text, placeholders, condition::parse)?;
    let mut terms = Vec::new();
    collect_terms(&root, &mut terms)?;
    Ok(terms)
}

/// Converts and checks the legacy `KeyConditions`.
pub(crate) fn from_key_conditions(
    conditions: &HashMap<String, LegacyCondition>,
    shape: &KeyShape,
) -> Result<KeyCondition> {
    check_schema(legacy_terms(conditions)?, shape)
}

/// Checks what of the legacy `KeyConditions` needs no key schema.
pub(crate) fn check_key_conditions(conditions: &HashMap<String, LegacyCondition>) -> Result<()> {
    legacy_terms(conditions).map(drop)
}

/// The legacy `KeyConditions` as terms.
fn legacy_terms(conditions: &HashMap<String, LegacyCondition>) -> Result<Vec<Term>> {
    // Sorted, so that the first error reported does not depend on hash order.
    let mut names: Vec<&String> = conditions.keys().collect();
    names.sort();
    let mut terms = Vec::with_capacity(names.len());
    for name in names {
        let Some(entry) = conditions.get(name) else {
            continue;
        };
        let op = legacy_operator(
            &format!("keyConditions.{name}.member.comparisonOperator"),
            entry,
        )?;
        let list: &[AttributeValue] = entry.attribute_value_list.as_deref().unwrap_or(&[]);
        // The shared ComparisonOperator code checks the operator, arity and operand types
        // exactly as DynamoDB does for every legacy parameter; what it built tells which key
        // condition (if any) this is.
        let built = comparison_condition(name, op, list)?;
        terms.push(Term {
            name: name.clone(),
            condition: indexable(built),
        });
    }
    Ok(terms)
}

/// The key condition a legacy ComparisonOperator condition amounts to, if any.
fn indexable(cond: Cond) -> Option<SortKeyCondition> {
    match cond {
        Cond::Compare(op, Operand::Path(_), Operand::Value(v)) => sort_condition(op, v),
        Cond::Between(Operand::Path(_), Operand::Value(low), Operand::Value(high)) => {
            Some(SortKeyCondition::Between(low, high))
        }
        Cond::BeginsWith(Operand::Path(_), Operand::Value(prefix)) => {
            Some(SortKeyCondition::BeginsWith(prefix))
        }
        _ => None,
    }
}

/// `sort op value` as a sort-key condition; `<>` is none.
pub(crate) fn sort_condition(op: CmpOp, value: AttributeValue) -> Option<SortKeyCondition> {
    Some(match op {
        CmpOp::Eq => SortKeyCondition::Eq(value),
        CmpOp::Lt => SortKeyCondition::Lt(value),
        CmpOp::Le => SortKeyCondition::Le(value),
        CmpOp::Gt => SortKeyCondition::Gt(value),
        CmpOp::Ge => SortKeyCondition::Ge(value),
        CmpOp::Ne => return None,
    })
}

/// `value op path` read as `path op' value`.
pub(crate) fn mirrored(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        other => other,
    }
}

fn invalid_operator(operator: &str) -> Error {
    Error::validation(format!(
        "Invalid operator used in KeyConditionExpression: {operator}"
    ))
}

fn invalid_condition(message: &str) -> Error {
    Error::validation(format!(
        "Invalid condition in KeyConditionExpression: {message}"
    ))
}

/// Flattens the ANDs of a parsed expression into terms, rejecting everything else a condition
/// expression may contain. Recursing is safe: the parser's operator limit bounds the depth.
fn collect_terms(cond: &Cond, terms: &mut Vec<Term>) -> Result<()> {
    let (operands, term) = match cond {
        Cond::And(parts) => {
            for part in parts {
                collect_terms(part, terms)?;
            }
            return Ok(());
        }
        Cond::Or(_) => return Err(invalid_operator("OR")),
        Cond::Not(_) => return Err(invalid_operator("NOT")),
        Cond::In(..) => return Err(invalid_operator("IN")),
        Cond::Compare(CmpOp::Ne, ..) => return Err(invalid_operator("<>")),
        Cond::Exists(_) => return Err(invalid_operator("attribute_exists")),
        Cond::NotExists(_) => return Err(invalid_operator("attribute_not_exists")),
        Cond::Type(..) => return Err(invalid_operator("attribute_type")),
        Cond::Contains(..) => return Err(invalid_operator("contains")),
        // Only an empty legacy `Expected` builds this; the parser never does.
        Cond::True => return Err(invalid_condition("No key attribute specified")),
        Cond::Compare(op, a, b) => (vec![a, b], TermShape::Compare(*op)),
        Cond::Between(v, low, high) => (vec![v, low, high], TermShape::Between),
        Cond::BeginsWith(a, b) => (vec![a, b], TermShape::BeginsWith),
    };
    if operands.iter().any(|o| matches!(o, Operand::Size(_))) {
        return Err(Error::validation(
            "KeyConditionExpressions cannot contain nested operations",
        ));
    }
    let first_is_path = matches!(operands.first(), Some(Operand::Path(_)));
    match term {
        TermShape::Between if !first_is_path => {
            return Err(invalid_condition(
                "BETWEEN operator must have the key attribute as its first operand",
            ));
        }
        TermShape::BeginsWith if !first_is_path => {
            return Err(invalid_condition(
                "begins_with operator must have the key attribute as its first operand",
            ));
        }
        _ => {}
    }
    let mut key: Option<(usize, &Path)> = None;
    let mut values = Vec::with_capacity(operands.len());
    for (index, operand) in operands.iter().enumerate() {
        match operand {
            Operand::Path(path) => {
                if key.is_some() {
                    return Err(invalid_condition(
                        "Multiple attribute names used in one condition",
                    ));
                }
                if !path.elements().is_empty() {
                    return Err(Error::validation(
                        "Invalid KeyConditionExpression: KeyConditionExpressions cannot have conditions on nested attributes",
                    ));
                }
                key = Some((index, path));
            }
            Operand::Value(v) => values.push(v.clone()),
            Operand::Size(_) => {}
        }
    }
    let Some((key_index, path)) = key else {
        return Err(invalid_condition("No key attribute specified"));
    };
    let name = path.attribute();
    if terms.iter().any(|t| t.name == name) {
        return Err(Error::validation(
            "Invalid KeyConditionExpression: KeyConditionExpressions must only contain one condition per key",
        ));
    }
    let mut values = values.into_iter();
    let mut value = || {
        values
            .next()
            .ok_or_else(|| invalid_condition("No key attribute specified"))
    };
    let condition = match term {
        TermShape::Compare(op) => {
            let op = if key_index == 0 { op } else { mirrored(op) };
            sort_condition(op, value()?)
        }
        TermShape::Between => {
            let low = value()?;
            Some(SortKeyCondition::Between(low, value()?))
        }
        TermShape::BeginsWith => Some(SortKeyCondition::BeginsWith(value()?)),
    };
    terms.push(Term {
        name: name.to_string(),
        condition,
    });
    Ok(())
}

/// The kinds of condition that can be a key condition.
#[derive(Clone, Copy)]
enum TermShape {
    Compare(CmpOp),
    Between,
    BeginsWith,
}

fn operands(condition: &SortKeyCondition) -> Vec<&AttributeValue> {
    match condition {
        SortKeyCondition::Eq(v)
        | SortKeyCondition::Lt(v)
        | SortKeyCondition::Le(v)
        | SortKeyCondition::Gt(v)
        | SortKeyCondition::Ge(v)
        | SortKeyCondition::BeginsWith(v) => vec![v],
        SortKeyCondition::Between(low, high) => vec![low, high],
    }
}

/// Checks the terms against the key schema, in DynamoDB's order: number of conditions, the
/// partition key's presence, that the other term is on the sort key, operand types, indexable
/// operators, and finally that the partition key is compared for equality.
fn check_schema(mut terms: Vec<Term>, shape: &KeyShape) -> Result<KeyCondition> {
    if shape.is_multi_attribute() {
        return check_multi_attribute_schema(terms, shape);
    }
    if terms.is_empty() || terms.len() > 2 {
        return Err(Error::validation("Conditions can be of length 1 or 2 only"));
    }
    if shape.range.is_none() && terms.len() == 2 {
        return Err(Error::validation("Query key condition not supported"));
    }
    let missed = |key: &KeyAttribute| {
        Error::validation(format!(
            "Query condition missed key schema element: {}",
            key.name
        ))
    };
    let hash_index = terms
        .iter()
        .position(|t| t.name == shape.hash.name)
        .ok_or_else(|| missed(&shape.hash))?;
    let hash = terms.swap_remove(hash_index);
    let sort = terms.pop();
    let mut keyed = vec![(&shape.hash, &hash)];
    if let Some(sort) = &sort {
        match &shape.range {
            Some(range) if range.name == sort.name => keyed.push((range, sort)),
            Some(range) => return Err(missed(range)),
            None => return Err(Error::validation("Query key condition not supported")),
        }
    }
    for (key, term) in &keyed {
        let wanted = key.scalar_type.value_type();
        let operands = term.condition.as_ref().map(operands).unwrap_or_default();
        if operands.iter().any(|v| v.value_type() != wanted) {
            return Err(Error::validation(
                "One or more parameter values were invalid: Condition parameter type does not match schema type",
            ));
        }
    }
    if keyed.iter().any(|(_, term)| term.condition.is_none()) {
        return Err(Error::validation(
            "Attempted conditional constraint is not an indexable operation",
        ));
    }
    let Some(SortKeyCondition::Eq(partition_value)) = hash.condition else {
        return Err(Error::validation("Query key condition not supported"));
    };
    Ok(KeyCondition {
        partition_value,
        partition_rest: Vec::new(),
        sort_prefix: Vec::new(),
        sort: sort.and_then(|t| t.condition),
    })
}

/// Checks the terms against a multi-attribute (GSI) key: every partition attribute compared
/// for equality, and sort attributes bound left to right, by equality except the last one
/// bound, which may have any key condition. The order of the terms in the request does not
/// matter, only which attributes they bind.
fn check_multi_attribute_schema(terms: Vec<Term>, shape: &KeyShape) -> Result<KeyCondition> {
    if terms.is_empty() {
        return Err(Error::validation("Conditions can be of length 1 or 2 only"));
    }
    let mut by_name: HashMap<String, Option<SortKeyCondition>> = HashMap::new();
    for term in terms {
        let Some(key) = shape.attributes().find(|a| a.name == term.name) else {
            return Err(Error::validation(format!(
                "Query key condition not supported: {} is not a key attribute of the index",
                term.name
            )));
        };
        let wanted = key.scalar_type.value_type();
        let operands = term.condition.as_ref().map(operands).unwrap_or_default();
        if operands.iter().any(|v| v.value_type() != wanted) {
            return Err(Error::validation(
                "One or more parameter values were invalid: Condition parameter type does not match schema type",
            ));
        }
        by_name.insert(term.name, term.condition);
    }
    // Every term has a key condition from here on.
    let Some(mut by_name) = by_name
        .into_iter()
        .map(|(name, condition)| Some((name, condition?)))
        .collect::<Option<HashMap<String, SortKeyCondition>>>()
    else {
        return Err(Error::validation(
            "Attempted conditional constraint is not an indexable operation",
        ));
    };
    let mut partition = Vec::with_capacity(shape.partition_len());
    for key in shape.partition_attributes() {
        match by_name.remove(&key.name) {
            Some(SortKeyCondition::Eq(value)) => partition.push(value),
            Some(_) => {
                return Err(Error::validation(format!(
                    "Query key condition not supported: every HASH key attribute of the index must be given with an equality condition; {} is not",
                    key.name
                )));
            }
            None => {
                return Err(Error::validation(format!(
                    "Query key condition not supported: every HASH key attribute of the index must be given with an equality condition; {} is missing",
                    key.name
                )));
            }
        }
    }
    let mut sort_prefix = Vec::new();
    let mut sort = None;
    for key in shape.sort_attributes() {
        if by_name.is_empty() {
            break;
        }
        let Some(condition) = by_name.remove(&key.name) else {
            return Err(Error::validation(format!(
                "Query key condition not supported: RANGE key attributes must be given left to right, each with an equality condition except the last one given; {} is missing",
                key.name
            )));
        };
        match condition {
            SortKeyCondition::Eq(value) if !by_name.is_empty() => sort_prefix.push(value),
            _ if !by_name.is_empty() => {
                return Err(Error::validation(format!(
                    "Query key condition not supported: RANGE key attributes must be given left to right, each with an equality condition except the last one given; {} is not the last one and is not an equality",
                    key.name
                )));
            }
            last => sort = Some(last),
        }
    }
    let mut partition = partition.into_iter();
    let Some(partition_value) = partition.next() else {
        return Err(Error::validation("Query key condition not supported"));
    };
    Ok(KeyCondition {
        partition_value,
        partition_rest: partition.collect(),
        sort_prefix,
        sort,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ScalarType;

    fn av(json: &str) -> AttributeValue {
        serde_json::from_str(json).unwrap()
    }

    fn n(x: &str) -> AttributeValue {
        av(&format!(r#"{{"N":"{x}"}}"#))
    }

    fn s(x: &str) -> AttributeValue {
        AttributeValue::S(x.to_string())
    }

    fn key(name: &str, scalar_type: ScalarType) -> KeyAttribute {
        KeyAttribute {
            name: name.to_string(),
            scalar_type,
        }
    }

    /// `p` (S) with sort key `c` of the given type.
    fn shape(sort: ScalarType) -> KeyShape {
        KeyShape {
            hash: key("p", ScalarType::S),
            range: Some(key("c", sort)),
            hash_rest: vec![],
            range_rest: vec![],
        }
    }

    fn hash_only() -> KeyShape {
        KeyShape {
            hash: key("p", ScalarType::S),
            range: None,
            hash_rest: vec![],
            range_rest: vec![],
        }
    }

    fn values() -> HashMap<String, AttributeValue> {
        HashMap::from([
            (":p".to_string(), s("pk")),
            (":c".to_string(), n("3")),
            (":d".to_string(), n("7")),
            (":s".to_string(), s("00")),
            (":b".to_string(), av(r#"{"B":"AAE="}"#)),
        ])
    }

    fn expr_with(text: &str, shape: &KeyShape) -> Result<KeyCondition> {
        let names = HashMap::from([
            ("#n1".to_string(), "p".to_string()),
            ("#n2".to_string(), "c".to_string()),
        ]);
        let values = values();
        let mut ph = Placeholders::new(Some(&names), Some(&values));
        parse_expression(text, &mut ph, shape)
    }

    fn expr(text: &str) -> Result<KeyCondition> {
        expr_with(text, &shape(ScalarType::N))
    }

    fn expr_err(text: &str) -> String {
        expr(text).unwrap_err().to_string()
    }

    fn kc(p: &str, sort: Option<SortKeyCondition>) -> KeyCondition {
        KeyCondition {
            partition_value: s(p),
            partition_rest: vec![],
            sort_prefix: vec![],
            sort,
        }
    }

    #[test]
    fn expression_forms() {
        assert_eq!(expr("p=:p").unwrap(), kc("pk", None));
        assert_eq!(expr(" p  =   :p ").unwrap(), kc("pk", None));
        assert_eq!(expr(":p = p").unwrap(), kc("pk", None));
        let sort = |t: &str| expr(t).unwrap().sort.unwrap();
        assert_eq!(sort("p=:p AND c=:c"), SortKeyCondition::Eq(n("3")));
        assert_eq!(sort("p=:p AND c<:c"), SortKeyCondition::Lt(n("3")));
        assert_eq!(sort("p=:p AND c<=:c"), SortKeyCondition::Le(n("3")));
        assert_eq!(sort("p=:p AND c>:c"), SortKeyCondition::Gt(n("3")));
        assert_eq!(sort("p=:p AND c>=:c"), SortKeyCondition::Ge(n("3")));
        // The key may be on either side; the operator is mirrored.
        assert_eq!(sort(":p=p AND :c<c"), SortKeyCondition::Gt(n("3")));
        assert_eq!(sort(":p=p AND :c>=c"), SortKeyCondition::Le(n("3")));
        assert_eq!(sort(":p=p AND :c=c"), SortKeyCondition::Eq(n("3")));
        assert_eq!(
            sort("p=:p AnD c BeTwEeN :c aNd :d"),
            SortKeyCondition::Between(n("3"), n("7"))
        );
        assert_eq!(sort("c=:c AND p=:p"), SortKeyCondition::Eq(n("3")));
        assert_eq!(sort("#n1=:p AND #n2=:c"), SortKeyCondition::Eq(n("3")));
        assert_eq!(sort("((c=:c) AND (p=:p))"), SortKeyCondition::Eq(n("3")));
        let string_sort = expr_with("p=:p AND begins_with(c,:s)", &shape(ScalarType::S));
        assert_eq!(
            string_sort.unwrap().sort.unwrap(),
            SortKeyCondition::BeginsWith(s("00"))
        );
        let binary_sort = expr_with("p=:p AND begins_with(c, :b)", &shape(ScalarType::B));
        assert_eq!(
            binary_sort.unwrap().sort.unwrap(),
            SortKeyCondition::BeginsWith(av(r#"{"B":"AAE="}"#))
        );
        assert_eq!(expr_with("p=:p", &hash_only()).unwrap(), kc("pk", None));
    }

    #[test]
    fn expression_rejects_non_key_operators() {
        assert_eq!(
            expr_err("p=:p AND c<>:c"),
            "Invalid operator used in KeyConditionExpression: <>"
        );
        assert_eq!(
            expr_err("p=:p AND c IN (:c)"),
            "Invalid operator used in KeyConditionExpression: IN"
        );
        assert_eq!(
            expr_err("c=:c OR p=:p"),
            "Invalid operator used in KeyConditionExpression: OR"
        );
        assert_eq!(
            expr_err("NOT c=:c AND p=:p"),
            "Invalid operator used in KeyConditionExpression: NOT"
        );
        assert_eq!(
            expr_err("p=:p AND attribute_exists(c)"),
            "Invalid operator used in KeyConditionExpression: attribute_exists"
        );
        assert_eq!(
            expr_err("p=:p AND contains(c, :c)"),
            "Invalid operator used in KeyConditionExpression: contains"
        );
        assert_eq!(
            expr_err("p=:p AND dog(c, :c)"),
            "Invalid KeyConditionExpression: Invalid function name; function: dog"
        );
        assert_eq!(
            expr_err("p=:p AND BEGINS_WITH(c,:c)"),
            "Invalid KeyConditionExpression: Invalid function name; function: BEGINS_WITH"
        );
        assert_eq!(
            expr_err("p=:p AND size(c) > :c"),
            "KeyConditionExpressions cannot contain nested operations"
        );
    }

    #[test]
    fn expression_rejects_malformed_conditions() {
        assert!(
            expr_err("p=:p AND c!=:c")
                .starts_with("Invalid KeyConditionExpression: Syntax error; token: \"!\"")
        );
        assert_eq!(
            expr_err(""),
            "Invalid KeyConditionExpression: The expression can not be empty;"
        );
        assert!(expr_err("p").starts_with("Invalid KeyConditionExpression: Syntax error"));
        assert!(expr_err(":c").starts_with("Invalid KeyConditionExpression: Syntax error"));
        assert_eq!(
            expr_err("p=c"),
            "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"
        );
        assert_eq!(
            expr_err(":p=:c"),
            "Invalid condition in KeyConditionExpression: No key attribute specified"
        );
        assert_eq!(
            expr_err("p=:p AND :c BETWEEN c AND :d"),
            "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand"
        );
        assert_eq!(
            expr_err("p=:p AND begins_with(:s, c)"),
            "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand"
        );
        assert_eq!(
            expr_err("p=:p AND a.b<:c"),
            "Invalid KeyConditionExpression: KeyConditionExpressions cannot have conditions on nested attributes"
        );
        assert!(expr_err("p[0]=:p").contains("nested attributes"));
        assert_eq!(
            expr_err("p=:p AND p=:p"),
            "Invalid KeyConditionExpression: KeyConditionExpressions must only contain one condition per key"
        );
        assert_eq!(
            expr_err("p=:p AND c>=:c AND c<=:d"),
            "Invalid KeyConditionExpression: KeyConditionExpressions must only contain one condition per key"
        );
        assert_eq!(
            expr_err("p=:p AND c<:c AND a<:c"),
            "The number of query conditions (3) exceeds the number of key attributes defined in the schema (2)"
        );
        assert_eq!(
            expr_err("p=:p AND c BETWEEN :d AND :c"),
            "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:7}, upper bound operand: AttributeValue: {N:3}"
        );
        // DynamoDB allows one pair of redundant parentheses per level, not two.
        assert!(expr_err("((c=:c) AND ((p=:p)))").contains("redundant parentheses"));
    }

    #[test]
    fn expression_schema_checks() {
        assert_eq!(expr_err("p<:p"), "Query key condition not supported");
        assert_eq!(
            expr_err("begins_with(p, :p)"),
            "Query key condition not supported"
        );
        assert_eq!(
            expr_err("c=:c"),
            "Query condition missed key schema element: p"
        );
        assert_eq!(
            expr_err("p=:p AND a<:c"),
            "Query condition missed key schema element: c"
        );
        assert_eq!(
            expr_with("p=:p AND c=:c", &hash_only())
                .unwrap_err()
                .to_string(),
            "Query key condition not supported"
        );
        let mismatch = "One or more parameter values were invalid: Condition parameter type does not match schema type";
        assert_eq!(expr_err("p=:c"), mismatch);
        assert_eq!(expr_err("p=:p AND c=:s"), mismatch);
    }

    #[test]
    fn begins_with_needs_a_string_or_binary_sort_key() {
        let err = expr_err("p=:p AND begins_with(c, :c)");
        assert!(err.contains("begins_with"), "{err}");
        assert_eq!(
            expr_err("p=:p AND begins_with(c, :s)"),
            "One or more parameter values were invalid: Condition parameter type does not match schema type"
        );
    }

    #[test]
    fn expression_marks_placeholders_used() {
        let names = HashMap::from([
            ("#n1".to_string(), "p".to_string()),
            ("#n2".to_string(), "c".to_string()),
        ]);
        let values = HashMap::from([(":p".to_string(), s("x")), (":qq".to_string(), n("3"))]);
        let mut ph = Placeholders::new(Some(&names), Some(&values));
        parse_expression("#n1=:p", &mut ph, &shape(ScalarType::N)).unwrap();
        assert_eq!(
            ph.check_all_used().unwrap_err().to_string(),
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#n2}"
        );
        let mut ph = Placeholders::new(Some(&names), None);
        let err = parse_expression("#n1=:p", &mut ph, &shape(ScalarType::N)).unwrap_err();
        assert!(err.to_string().contains(":p"), "{err}");
        let mut ph = Placeholders::new(None, Some(&values));
        let err = parse_expression("#n1=:p", &mut ph, &shape(ScalarType::N)).unwrap_err();
        assert!(err.to_string().contains("#n1"), "{err}");
    }

    /// `h1` (S), `h2` (S) partition; `r1` (N), `r2` (S), `r3` (S) sort.
    fn multi() -> KeyShape {
        KeyShape {
            hash: key("h1", ScalarType::S),
            range: Some(key("r1", ScalarType::N)),
            hash_rest: vec![key("h2", ScalarType::S)],
            range_rest: vec![key("r2", ScalarType::S), key("r3", ScalarType::S)],
        }
    }

    fn multi_expr(text: &str) -> Result<KeyCondition> {
        let values = HashMap::from([
            (":h1".to_string(), s("a")),
            (":h2".to_string(), s("b")),
            (":r1".to_string(), n("1")),
            (":r2".to_string(), s("x")),
            (":r3".to_string(), s("y")),
            (":s".to_string(), s("z")),
        ]);
        let mut ph = Placeholders::new(None, Some(&values));
        parse_expression(text, &mut ph, &multi())
    }

    fn multi_err(text: &str) -> String {
        multi_expr(text).unwrap_err().to_string()
    }

    #[test]
    fn multi_attribute_conditions_bind_partition_then_sort_left_to_right() {
        let kc = multi_expr("h2 = :h2 AND h1 = :h1").unwrap();
        assert_eq!(kc.partition_value, s("a"));
        assert_eq!(kc.partition_rest, vec![s("b")]);
        assert!(kc.sort_prefix.is_empty());
        assert_eq!(kc.sort, None);
        let kc = multi_expr("h1 = :h1 AND h2 = :h2 AND r1 >= :r1").unwrap();
        assert!(kc.sort_prefix.is_empty());
        assert_eq!(kc.sort, Some(SortKeyCondition::Ge(n("1"))));
        let kc = multi_expr("begins_with(r2, :r2) AND h1 = :h1 AND r1 = :r1 AND h2 = :h2").unwrap();
        assert_eq!(kc.sort_prefix, vec![n("1")]);
        assert_eq!(kc.sort, Some(SortKeyCondition::BeginsWith(s("x"))));
        let kc = multi_expr("h1=:h1 AND h2=:h2 AND r3=:r3 AND r2=:r2 AND r1=:r1").unwrap();
        assert_eq!(kc.sort_prefix, vec![n("1"), s("x")]);
        assert_eq!(kc.sort, Some(SortKeyCondition::Eq(s("y"))));
        let kc = multi_expr("h1=:h1 AND h2=:h2 AND r1=:r1 AND r2 BETWEEN :r2 AND :s").unwrap();
        assert_eq!(kc.sort, Some(SortKeyCondition::Between(s("x"), s("z"))));
    }

    #[test]
    fn multi_attribute_condition_errors() {
        for text in [
            "h1 = :h1",
            "h1 = :h1 AND h2 > :h2",
            "h1 = :h1 AND begins_with(h2, :h2)",
            "h1 = :h1 AND r1 = :r1",
        ] {
            let err = multi_err(text);
            assert!(
                err.contains("HASH key attribute") && err.contains("equality"),
                "{text}: {err}"
            );
        }
        for text in [
            "h1 = :h1 AND h2 = :h2 AND r2 = :r2",
            "h1 = :h1 AND h2 = :h2 AND r1 = :r1 AND r3 = :r3",
            "h1 = :h1 AND h2 = :h2 AND r1 > :r1 AND r2 = :r2",
            "h1 = :h1 AND h2 = :h2 AND r1 = :r1 AND begins_with(r2, :r2) AND r3 = :r3",
            "h1 = :h1 AND h2 = :h2 AND r1 < :r1 AND r2 > :r2",
        ] {
            let err = multi_err(text);
            assert!(
                err.contains("RANGE key attributes") && err.contains("equality"),
                "{text}: {err}"
            );
        }
        assert_eq!(
            multi_err("h1 = :r1 AND h2 = :h2"),
            "One or more parameter values were invalid: Condition parameter type does not match schema type"
        );
        assert!(multi_err("h1 = :h1 AND h2 = :h2 AND x = :s").contains("not a key attribute"));
        let legacy_conditions = conditions(vec![
            ("h1", legacy("EQ", vec![s("a")])),
            ("h2", legacy("EQ", vec![s("b")])),
            ("r1", legacy("EQ", vec![n("1")])),
            ("r2", legacy("GT", vec![s("x")])),
        ]);
        let kc = from_key_conditions(&legacy_conditions, &multi()).unwrap();
        assert_eq!(kc.sort_prefix, vec![n("1")]);
        assert_eq!(kc.sort, Some(SortKeyCondition::Gt(s("x"))));
        let gap = vec![
            ("h1", legacy("EQ", vec![s("a")])),
            ("h2", legacy("EQ", vec![s("b")])),
            ("r2", legacy("EQ", vec![s("x")])),
        ];
        assert!(legacy_err(gap, &multi()).contains("RANGE key attributes"));
    }

    fn legacy(op: &str, list: Vec<AttributeValue>) -> LegacyCondition {
        LegacyCondition {
            attribute_value_list: Some(list),
            comparison_operator: Some(op.to_string()),
        }
    }

    fn conditions(entries: Vec<(&str, LegacyCondition)>) -> HashMap<String, LegacyCondition> {
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    fn legacy_err(entries: Vec<(&str, LegacyCondition)>, shape: &KeyShape) -> String {
        from_key_conditions(&conditions(entries), shape)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn key_conditions_forms() {
        let shape = shape(ScalarType::N);
        let with_sort = |op: &str, list: Vec<AttributeValue>| {
            from_key_conditions(
                &conditions(vec![
                    ("p", legacy("EQ", vec![s("pk")])),
                    ("c", legacy(op, list)),
                ]),
                &shape,
            )
            .unwrap()
            .sort
            .unwrap()
        };
        assert_eq!(
            from_key_conditions(
                &conditions(vec![("p", legacy("EQ", vec![s("pk")]))]),
                &shape
            )
            .unwrap(),
            kc("pk", None)
        );
        assert_eq!(with_sort("EQ", vec![n("3")]), SortKeyCondition::Eq(n("3")));
        assert_eq!(with_sort("LT", vec![n("3")]), SortKeyCondition::Lt(n("3")));
        assert_eq!(with_sort("LE", vec![n("3")]), SortKeyCondition::Le(n("3")));
        assert_eq!(with_sort("GT", vec![n("3")]), SortKeyCondition::Gt(n("3")));
        assert_eq!(with_sort("GE", vec![n("3")]), SortKeyCondition::Ge(n("3")));
        assert_eq!(
            with_sort("BETWEEN", vec![n("3"), n("7")]),
            SortKeyCondition::Between(n("3"), n("7"))
        );
        let string_sort = from_key_conditions(
            &conditions(vec![
                ("p", legacy("EQ", vec![s("pk")])),
                ("c", legacy("BEGINS_WITH", vec![s("00")])),
            ]),
            &self::shape(ScalarType::S),
        );
        assert_eq!(
            string_sort.unwrap().sort.unwrap(),
            SortKeyCondition::BeginsWith(s("00"))
        );
        let wire: HashMap<String, LegacyCondition> = serde_json::from_str(
            r#"{"p":{"AttributeValueList":[{"S":"pk"}],"ComparisonOperator":"EQ"}}"#,
        )
        .unwrap();
        assert_eq!(
            from_key_conditions(&wire, &hash_only()).unwrap(),
            kc("pk", None)
        );
    }

    #[test]
    fn key_conditions_errors() {
        let shape = shape(ScalarType::N);
        let pk = || ("p", legacy("EQ", vec![s("pk")]));
        for op in ["LE", "LT", "GE", "GT", "BEGINS_WITH"] {
            assert_eq!(
                legacy_err(vec![("p", legacy(op, vec![s("pk")]))], &shape),
                "Query key condition not supported",
                "{op}"
            );
        }
        assert_eq!(
            legacy_err(vec![("p", legacy("BETWEEN", vec![s("a"), s("b")]))], &shape),
            "Query key condition not supported"
        );
        assert!(
            legacy_err(vec![("p", legacy("BETWEEN", vec![s("a")]))], &shape)
                .contains("Invalid number of argument(s) for the BETWEEN ComparisonOperator")
        );
        assert!(
            legacy_err(vec![("p", legacy("eq", vec![s("pk")]))], &shape)
                .contains("comparisonOperator")
        );
        assert!(
            legacy_err(vec![("p", legacy("DOG", vec![s("pk")]))], &shape)
                .contains("comparisonOperator")
        );
        for op in ["IN", "CONTAINS", "NOT_CONTAINS", "NE"] {
            assert_eq!(
                legacy_err(vec![("p", legacy(op, vec![s("pk")]))], &shape),
                "Attempted conditional constraint is not an indexable operation"
            );
            assert_eq!(
                legacy_err(vec![pk(), ("c", legacy(op, vec![n("3")]))], &shape),
                "Attempted conditional constraint is not an indexable operation"
            );
        }
        for op in ["NULL", "NOT_NULL"] {
            assert_eq!(
                legacy_err(vec![("p", legacy(op, vec![]))], &shape),
                "Attempted conditional constraint is not an indexable operation"
            );
        }
        assert!(legacy_err(vec![("p", legacy("EQ", vec![]))], &shape).contains("EQ"));
        assert!(legacy_err(vec![("p", legacy("EQ", vec![s("a"), s("b")]))], &shape).contains("EQ"));
        assert_eq!(
            legacy_err(vec![("c", legacy("EQ", vec![n("3")]))], &shape),
            "Query condition missed key schema element: p"
        );
        assert_eq!(
            legacy_err(vec![("z", legacy("NULL", vec![]))], &shape),
            "Query condition missed key schema element: p"
        );
        assert_eq!(
            legacy_err(vec![pk(), ("a", legacy("EQ", vec![n("5")]))], &shape),
            "Query condition missed key schema element: c"
        );
        assert_eq!(
            legacy_err(
                vec![
                    pk(),
                    ("c", legacy("EQ", vec![n("3")])),
                    ("a", legacy("EQ", vec![n("5")]))
                ],
                &shape
            ),
            "Conditions can be of length 1 or 2 only"
        );
        assert_eq!(
            from_key_conditions(&HashMap::new(), &shape)
                .unwrap_err()
                .to_string(),
            "Conditions can be of length 1 or 2 only"
        );
        let mismatch = "One or more parameter values were invalid: Condition parameter type does not match schema type";
        assert_eq!(
            legacy_err(vec![("p", legacy("EQ", vec![n("3")]))], &shape),
            mismatch
        );
        assert_eq!(
            legacy_err(vec![pk(), ("c", legacy("EQ", vec![s("3")]))], &shape),
            mismatch
        );
        assert!(
            legacy_err(
                vec![pk(), ("c", legacy("BEGINS_WITH", vec![n("3")]))],
                &shape
            )
            .contains("BEGINS_WITH")
        );
        assert!(
            legacy_err(
                vec![pk(), ("c", legacy("BETWEEN", vec![n("7"), n("3")]))],
                &shape
            )
            .contains("lower bound is greater than the upper bound")
        );
        assert_eq!(
            legacy_err(
                vec![
                    ("p", legacy("EQ", vec![s("pk")])),
                    ("c", legacy("EQ", vec![n("3")]))
                ],
                &hash_only()
            ),
            "Query key condition not supported"
        );
        let missing_operator = LegacyCondition {
            attribute_value_list: Some(vec![s("pk")]),
            comparison_operator: None,
        };
        assert!(
            legacy_err(vec![("p", missing_operator)], &shape)
                .contains("keyConditions.p.member.comparisonOperator")
        );
    }
}
