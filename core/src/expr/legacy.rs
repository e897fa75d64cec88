//! DynamoDB's older parameters, converted to the same trees as the expressions:
//! `Expected`, `QueryFilter` and `ScanFilter` with `ConditionalOperator`, `AttributeUpdates`,
//! and `AttributesToGet` (`KeyConditions` reuses the ComparisonOperator code from here). Names here are top-level attribute names taken
//! literally, never parsed as paths.

use std::collections::{HashMap, HashSet};

use crate::model::AttributeValue;
use crate::{Error, Result};

use super::condition::{CmpOp, Cond, Operand, compare_ordered};
use super::parser::check_attribute_name;
use super::path::Path;
use super::update::{Action, SetValue, UpdOperand};
use super::{AttributeValueUpdate, ExpectedAttributeValue, LegacyCondition};

fn invalid(message: impl std::fmt::Display) -> Error {
    Error::validation(format!(
        "One or more parameter values were invalid: {message}"
    ))
}

fn checked_name(name: &str) -> Result<()> {
    check_attribute_name(name).map_err(invalid)
}

fn is_scalar(value: &AttributeValue) -> bool {
    matches!(
        value,
        AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_)
    )
}

fn is_set(value: &AttributeValue) -> bool {
    matches!(
        value,
        AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
    )
}

const COMPARISON_OPERATORS: &str =
    "[IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]";

/// One `Expected` entry as a condition.
fn expected_condition(name: &str, expected: &ExpectedAttributeValue) -> Result<Cond> {
    checked_name(name)?;
    let path = || Path::new(name);
    let Some(op) = expected.comparison_operator.as_deref() else {
        if expected.attribute_value_list.is_some() {
            return Err(invalid(format!(
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: {name}"
            )));
        }
        return match (expected.exists, &expected.value) {
            (Some(false), Some(_)) => Err(invalid(format!(
                "Value cannot be used when Exists is false for Attribute: {name}"
            ))),
            (Some(false), None) => Ok(Cond::NotExists(path())),
            (_, Some(value)) => Ok(Cond::Compare(
                CmpOp::Eq,
                Operand::Path(path()),
                Operand::Value(value.clone()),
            )),
            (_, None) => Err(invalid(format!(
                "Value must be provided when Exists is true for Attribute: {name}"
            ))),
        };
    };
    // DynamoDB (2026-10) takes `Value` as the operator's one operand, alongside it only
    // `AttributeValueList` is refused.
    if expected.exists.is_some() {
        return Err(invalid(format!(
            "Value or Exists cannot be used with ComparisonOperator for Attribute: {name}"
        )));
    }
    let list: Vec<AttributeValue> = match (&expected.value, &expected.attribute_value_list) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "Value and AttributeValueList cannot be used together for Attribute: {name}"
            )));
        }
        (Some(value), None) => vec![value.clone()],
        (None, Some(list)) => list.clone(),
        (None, None) if !matches!(op, "NULL" | "NOT_NULL") => {
            return Err(invalid(format!(
                "Value or AttributeValueList must be used with ComparisonOperator: {op} for Attribute: {name}"
            )));
        }
        (None, None) => Vec::new(),
    };
    comparison_condition(name, op, &list)
}

/// The `ComparisonOperator` + `AttributeValueList` form shared by `Expected`, `KeyConditions`,
/// `QueryFilter` and `ScanFilter`, on the top-level attribute `name`: checks the operator, its
/// number of operands and their types.
pub(crate) fn comparison_condition(name: &str, op: &str, list: &[AttributeValue]) -> Result<Cond> {
    let path = || Path::new(name);
    let arity = |valid: bool| -> Result<()> {
        if valid {
            Ok(())
        } else {
            Err(invalid(format!(
                "Invalid number of argument(s) for the {op} ComparisonOperator"
            )))
        }
    };
    let type_check = |value: &AttributeValue, allowed: fn(&AttributeValue) -> bool| -> Result<()> {
        if allowed(value) {
            Ok(())
        } else {
            Err(invalid(format!(
                "ComparisonOperator {op} is not valid for {} AttributeValue type",
                value.value_type()
            )))
        }
    };
    let single = || -> Result<&AttributeValue> {
        arity(list.len() == 1)?;
        list.first().ok_or_else(|| invalid("missing argument"))
    };
    let attr = || Operand::Path(path());
    let value = |v: &AttributeValue| Operand::Value(v.clone());
    Ok(match op {
        "EQ" | "NE" => {
            let v = single()?;
            let cmp = if op == "EQ" { CmpOp::Eq } else { CmpOp::Ne };
            Cond::Compare(cmp, attr(), value(v))
        }
        "LT" | "LE" | "GT" | "GE" => {
            let v = single()?;
            type_check(v, is_scalar)?;
            let cmp = match op {
                "LT" => CmpOp::Lt,
                "LE" => CmpOp::Le,
                "GT" => CmpOp::Gt,
                _ => CmpOp::Ge,
            };
            Cond::Compare(cmp, attr(), value(v))
        }
        "NULL" | "NOT_NULL" => {
            arity(list.is_empty())?;
            if op == "NULL" {
                Cond::NotExists(path())
            } else {
                Cond::Exists(path())
            }
        }
        "CONTAINS" | "NOT_CONTAINS" => {
            let v = single()?;
            type_check(v, is_scalar)?;
            let contains = Cond::Contains(attr(), value(v));
            if op == "CONTAINS" {
                contains
            } else {
                // A missing attribute satisfies neither CONTAINS nor NOT_CONTAINS.
                Cond::And(vec![Cond::Exists(path()), Cond::Not(Box::new(contains))])
            }
        }
        "BEGINS_WITH" => {
            let v = single()?;
            type_check(v, |v| {
                matches!(v, AttributeValue::S(_) | AttributeValue::B(_))
            })?;
            Cond::BeginsWith(attr(), value(v))
        }
        "IN" => {
            arity(!list.is_empty())?;
            for v in list {
                type_check(v, is_scalar)?;
            }
            if let Some(first) = list.first()
                && list.iter().any(|v| v.value_type() != first.value_type())
            {
                return Err(invalid(
                    "AttributeValues inside AttributeValueList must be of same type",
                ));
            }
            Cond::In(attr(), list.iter().map(value).collect())
        }
        "BETWEEN" => {
            arity(list.len() == 2)?;
            let (Some(low), Some(high)) = (list.first(), list.get(1)) else {
                return Err(invalid("missing argument"));
            };
            type_check(low, is_scalar)?;
            type_check(high, is_scalar)?;
            match compare_ordered(low, high) {
                None => {
                    return Err(invalid(
                        "AttributeValues inside AttributeValueList must be of same type",
                    ));
                }
                Some(std::cmp::Ordering::Greater) => {
                    return Err(Error::validation(
                        "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
                    ));
                }
                Some(_) => {}
            }
            Cond::Between(attr(), value(low), value(high))
        }
        other => {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{other}' at 'comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: {COMPARISON_OPERATORS}"
            )));
        }
    })
}

/// Per-attribute conditions joined by `ConditionalOperator` (AND unless it says OR); no
/// conditions at all is always true.
fn combine<T>(
    expected: &HashMap<String, T>,
    conditional_operator: Option<&str>,
    condition: impl Fn(&str, &T) -> Result<Cond>,
) -> Result<Cond> {
    let or = match conditional_operator {
        None | Some("AND") => false,
        Some("OR") => true,
        Some(other) => {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{other}' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]"
            )));
        }
    };
    if expected.is_empty() {
        if conditional_operator.is_some() {
            return Err(Error::validation(
                "ConditionalOperator can not be used when there are no conditions",
            ));
        }
        return Ok(Cond::True);
    }
    // Sorted, so that the first error reported does not depend on hash order.
    let mut names: Vec<&String> = expected.keys().collect();
    names.sort();
    let mut parts = Vec::with_capacity(names.len());
    for name in names {
        if let Some(e) = expected.get(name) {
            parts.push(condition(name, e)?);
        }
    }
    Ok(match parts.len() {
        1 => parts.pop().unwrap_or(Cond::True),
        _ if or => Cond::Or(parts),
        _ => Cond::And(parts),
    })
}

/// `Expected` + `ConditionalOperator` as one condition.
pub(crate) fn condition_from_expected(
    expected: &HashMap<String, ExpectedAttributeValue>,
    conditional_operator: Option<&str>,
) -> Result<Cond> {
    combine(expected, conditional_operator, expected_condition)
}

/// The operator of a `KeyConditions`, `QueryFilter` or `ScanFilter` entry; unlike `Expected`,
/// these have no `Value`/`Exists` form, so the operator is required. `field` names it in the
/// error.
pub(crate) fn legacy_operator<'c>(field: &str, condition: &'c LegacyCondition) -> Result<&'c str> {
    condition.comparison_operator.as_deref().ok_or_else(|| {
        Error::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// One `QueryFilter` / `ScanFilter` entry as a condition.
fn filter_condition(name: &str, condition: &LegacyCondition) -> Result<Cond> {
    checked_name(name)?;
    // Which of the two parameters this is is not known here, so the field stays unqualified.
    let op = legacy_operator("comparisonOperator", condition)?;
    let list: &[AttributeValue] = condition.attribute_value_list.as_deref().unwrap_or(&[]);
    comparison_condition(name, op, list)
}

/// `QueryFilter` / `ScanFilter` + `ConditionalOperator` as one condition.
pub(crate) fn condition_from_legacy_filter(
    filter: &HashMap<String, LegacyCondition>,
    conditional_operator: Option<&str>,
) -> Result<Cond> {
    combine(filter, conditional_operator, filter_condition)
}

/// `AttributeUpdates` as update actions.
pub(crate) fn actions_from_attribute_updates(
    updates: &HashMap<String, AttributeValueUpdate>,
) -> Result<Vec<Action>> {
    let mut names: Vec<&String> = updates.keys().collect();
    names.sort();
    let mut actions = Vec::with_capacity(names.len());
    for name in names {
        let Some(update) = updates.get(name) else {
            continue;
        };
        checked_name(name)?;
        let path = Path::new(name.as_str());
        let action = update.action.as_deref().unwrap_or("PUT");
        let needs_value =
            || invalid("Only DELETE action is allowed when no attribute value is specified");
        actions.push(match action {
            "PUT" => {
                let value = update.value.clone().ok_or_else(needs_value)?;
                Action::Set(path, SetValue::Operand(UpdOperand::Value(value)))
            }
            "DELETE" => match &update.value {
                None => Action::Remove(path),
                Some(value) if is_set(value) => Action::LegacyDelete(path, value.clone()),
                Some(value) => {
                    return Err(invalid(format!(
                        "DELETE action with value is not supported for the type {}",
                        value.value_type()
                    )));
                }
            },
            "ADD" => {
                let value = update.value.clone().ok_or_else(needs_value)?;
                if !(is_set(&value) || matches!(value, AttributeValue::N(_) | AttributeValue::L(_)))
                {
                    return Err(invalid(format!(
                        "ADD action is not supported for the type {}",
                        value.value_type()
                    )));
                }
                Action::LegacyAdd(path, value)
            }
            other => {
                return Err(Error::validation(format!(
                    "1 validation error detected: Value '{other}' at 'attributeUpdates.{name}.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"
                )));
            }
        });
    }
    Ok(actions)
}

/// `AttributesToGet` as projection paths.
pub(crate) fn paths_from_attributes_to_get(names: &[String]) -> Result<Vec<Path>> {
    if names.is_empty() {
        return Err(Error::validation(
            "1 validation error detected: Value '[]' at 'attributesToGet' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    let mut seen = HashSet::new();
    for name in names {
        checked_name(name)?;
        if !seen.insert(name.as_str()) {
            return Err(invalid(format!(
                "Duplicate value in attribute name: {name}"
            )));
        }
    }
    Ok(names.iter().map(|n| Path::new(n.as_str())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Item;

    fn av(json: &str) -> AttributeValue {
        serde_json::from_str(json).unwrap()
    }

    fn n(x: &str) -> AttributeValue {
        av(&format!(r#"{{"N":"{x}"}}"#))
    }

    fn s(x: &str) -> AttributeValue {
        AttributeValue::S(x.to_string())
    }

    fn cmp(op: &str, list: Vec<AttributeValue>) -> ExpectedAttributeValue {
        ExpectedAttributeValue {
            value: None,
            exists: None,
            comparison_operator: Some(op.to_string()),
            attribute_value_list: Some(list),
        }
    }

    fn item() -> Item {
        serde_json::from_str(
            r#"{"a":{"N":"1"},"s":{"S":"hello"},"ns":{"NS":["2","4"]},"l":{"L":[{"N":"4"}]},"z":{"NULL":true}}"#,
        )
        .unwrap()
    }

    fn check(attr: &str, e: ExpectedAttributeValue) -> Result<bool> {
        let map = HashMap::from([(attr.to_string(), e)]);
        Ok(condition_from_expected(&map, None)?.evaluate(Some(&item())))
    }

    #[test]
    fn comparison_operators() {
        assert!(check("a", cmp("EQ", vec![n("1")])).unwrap());
        assert!(!check("a", cmp("EQ", vec![s("1")])).unwrap());
        assert!(check("a", cmp("NE", vec![s("1")])).unwrap());
        assert!(check("q", cmp("NE", vec![n("1")])).unwrap());
        assert!(check("a", cmp("LE", vec![n("1")])).unwrap());
        assert!(!check("a", cmp("LT", vec![n("1")])).unwrap());
        assert!(check("a", cmp("GE", vec![n("0")])).unwrap());
        assert!(check("z", cmp("NOT_NULL", vec![])).unwrap());
        assert!(check("q", cmp("NULL", vec![])).unwrap());
        assert!(check("s", cmp("CONTAINS", vec![s("ell")])).unwrap());
        assert!(check("ns", cmp("CONTAINS", vec![n("4")])).unwrap());
        assert!(check("l", cmp("CONTAINS", vec![n("4")])).unwrap());
        assert!(check("s", cmp("NOT_CONTAINS", vec![n("1")])).unwrap());
        assert!(!check("q", cmp("NOT_CONTAINS", vec![n("1")])).unwrap());
        assert!(check("s", cmp("BEGINS_WITH", vec![s("hell")])).unwrap());
        assert!(check("a", cmp("IN", vec![n("3"), n("1")])).unwrap());
        assert!(check("a", cmp("BETWEEN", vec![n("1"), n("2")])).unwrap());
        assert!(!check("q", cmp("BETWEEN", vec![n("0"), n("100")])).unwrap());
    }

    #[test]
    fn comparison_operator_validation() {
        let e = |attr: &str, x: ExpectedAttributeValue| check(attr, x).unwrap_err().to_string();
        assert!(e("a", cmp("EQ", vec![n("1"), n("2")])).contains("EQ ComparisonOperator"));
        assert!(e("a", cmp("NULL", vec![n("1")])).contains("NULL"));
        assert!(e("a", cmp("LE", vec![av(r#"{"L":[]}"#)])).contains(" type"));
        assert!(e("a", cmp("CONTAINS", vec![])).contains("CONTAINS"));
        assert!(e("a", cmp("CONTAINS", vec![av(r#"{"L":[]}"#)])).contains(" type"));
        assert!(e("a", cmp("BEGINS_WITH", vec![n("3")])).contains(" type"));
        assert!(e("a", cmp("IN", vec![])).contains("IN"));
        assert!(e("a", cmp("IN", vec![n("3"), s("dog")])).contains(" type"));
        assert!(e("a", cmp("BETWEEN", vec![n("2")])).contains("BETWEEN"));
        assert!(e("a", cmp("BETWEEN", vec![n("4"), n("3")])).contains(" BETWEEN"));
        assert!(e("a", cmp("BETWEEN", vec![n("4"), s("dog")])).contains(" type"));
        assert!(e("a", cmp("eq", vec![n("3")])).contains("comparison"));
        let mut clash = cmp("EQ", vec![n("3")]);
        clash.exists = Some(false);
        assert!(check("a", clash).is_err());
    }

    #[test]
    fn value_and_exists() {
        let exp = |value: Option<AttributeValue>, exists: Option<bool>| ExpectedAttributeValue {
            value,
            exists,
            comparison_operator: None,
            attribute_value_list: None,
        };
        assert!(check("a", exp(Some(n("1")), None)).unwrap());
        assert!(check("a", exp(Some(n("1")), Some(true))).unwrap());
        assert!(!check("q", exp(Some(n("1")), None)).unwrap());
        assert!(check("q", exp(None, Some(false))).unwrap());
        assert!(!check("a", exp(None, Some(false))).unwrap());
        assert!(check("a", exp(None, Some(true))).is_err());
        assert!(check("a", exp(Some(n("1")), Some(false))).is_err());
        assert!(
            check("", exp(Some(n("1")), None))
                .unwrap_err()
                .to_string()
                .contains("Empty attribute name")
        );
    }

    #[test]
    fn conditional_operator() {
        let map = HashMap::from([
            ("a".to_string(), cmp("EQ", vec![n("1")])),
            ("s".to_string(), cmp("EQ", vec![s("nope")])),
        ]);
        assert!(
            !condition_from_expected(&map, None)
                .unwrap()
                .evaluate(Some(&item()))
        );
        assert!(
            !condition_from_expected(&map, Some("AND"))
                .unwrap()
                .evaluate(Some(&item()))
        );
        assert!(
            condition_from_expected(&map, Some("OR"))
                .unwrap()
                .evaluate(Some(&item()))
        );
        assert!(condition_from_expected(&map, Some("and")).is_err());
        let empty = HashMap::new();
        assert!(
            condition_from_expected(&empty, None)
                .unwrap()
                .evaluate(None)
        );
        assert!(
            condition_from_expected(&empty, Some("OR"))
                .unwrap_err()
                .to_string()
                .contains("ConditionalOperator")
        );
    }

    fn filter(entries: Vec<(&str, &str, Vec<AttributeValue>)>) -> HashMap<String, LegacyCondition> {
        entries
            .into_iter()
            .map(|(name, op, list)| {
                let condition = LegacyCondition {
                    attribute_value_list: Some(list),
                    comparison_operator: Some(op.to_string()),
                };
                (name.to_string(), condition)
            })
            .collect()
    }

    fn filter_matches(
        entries: Vec<(&str, &str, Vec<AttributeValue>)>,
        conditional_operator: Option<&str>,
    ) -> Result<bool> {
        let cond = condition_from_legacy_filter(&filter(entries), conditional_operator)?;
        Ok(cond.evaluate(Some(&item())))
    }

    #[test]
    fn legacy_filter_operators() {
        let one = |attr: &str, op: &str, list: Vec<AttributeValue>| {
            filter_matches(vec![(attr, op, list)], None).unwrap()
        };
        assert!(one("a", "EQ", vec![n("1")]));
        assert!(one("a", "NE", vec![n("2")]));
        assert!(one("q", "NE", vec![n("2")]));
        assert!(one("a", "LT", vec![n("2")]));
        assert!(one("a", "LE", vec![n("1")]));
        assert!(!one("a", "GT", vec![n("1")]));
        assert!(one("a", "GE", vec![n("1")]));
        assert!(one("z", "NOT_NULL", vec![]));
        assert!(one("q", "NULL", vec![]));
        assert!(one("s", "CONTAINS", vec![s("ell")]));
        assert!(one("ns", "CONTAINS", vec![n("2")]));
        assert!(one("l", "NOT_CONTAINS", vec![n("5")]));
        assert!(!one("q", "NOT_CONTAINS", vec![n("5")]));
        assert!(one("s", "BEGINS_WITH", vec![s("he")]));
        assert!(one("a", "IN", vec![n("4"), n("1")]));
        assert!(one("a", "BETWEEN", vec![n("0"), n("1")]));
        assert!(!one("q", "EQ", vec![n("3")]));
    }

    #[test]
    fn legacy_filter_combination() {
        let parts = || vec![("a", "EQ", vec![n("1")]), ("s", "EQ", vec![s("nope")])];
        assert!(!filter_matches(parts(), None).unwrap());
        assert!(!filter_matches(parts(), Some("AND")).unwrap());
        assert!(filter_matches(parts(), Some("OR")).unwrap());
        for bad in ["DOG", "and"] {
            let err = filter_matches(parts(), Some(bad)).unwrap_err().to_string();
            assert!(err.contains("conditionalOperator"), "{err}");
        }
        assert!(filter_matches(vec![], None).unwrap());
        assert!(
            condition_from_legacy_filter(&HashMap::new(), Some("OR"))
                .unwrap_err()
                .to_string()
                .contains("ConditionalOperator")
        );
    }

    #[test]
    fn legacy_filter_validation() {
        let e = |op: &str, list: Vec<AttributeValue>| {
            filter_matches(vec![("a", op, list)], None)
                .unwrap_err()
                .to_string()
        };
        for op in ["LT", "LE", "GT", "GE"] {
            assert!(e(op, vec![av(r#"{"L":[]}"#)]).contains(" type"));
            assert!(e(op, vec![av(r#"{"BOOL":true}"#)]).contains(" type"));
        }
        assert!(e("BETWEEN", vec![n("2"), n("1")]).contains(" BETWEEN"));
        assert!(e("BETWEEN", vec![s("a"), n("3")]).contains(" type"));
        for list in [vec![], vec![n("2")], vec![n("2"), n("3"), n("4")]] {
            assert!(e("BETWEEN", list).contains("BETWEEN"));
        }
        assert!(e("IN", vec![]).contains("IN"));
        assert!(e("IN", vec![s("a"), n("3")]).contains(" type"));
        assert!(e("BEGINS_WITH", vec![n("3")]).contains(" type"));
        assert!(e("eq", vec![n("3")]).contains("comparison"));
        assert!(e("DOG", vec![n("3")]).contains("comparison"));
        let no_operator = HashMap::from([(
            "a".to_string(),
            LegacyCondition {
                attribute_value_list: Some(vec![n("1")]),
                comparison_operator: None,
            },
        )]);
        assert!(
            condition_from_legacy_filter(&no_operator, None)
                .unwrap_err()
                .to_string()
                .contains("comparisonOperator")
        );
        let unnamed = filter(vec![("", "EQ", vec![n("1")])]);
        assert!(
            condition_from_legacy_filter(&unnamed, None)
                .unwrap_err()
                .to_string()
                .contains("Empty attribute name")
        );
    }

    #[test]
    fn attribute_updates_validation() {
        let upd = |action: Option<&str>, value: Option<AttributeValue>| {
            HashMap::from([(
                "a".to_string(),
                AttributeValueUpdate {
                    value,
                    action: action.map(str::to_string),
                },
            )])
        };
        assert!(actions_from_attribute_updates(&upd(None, Some(n("1")))).is_ok());
        assert!(actions_from_attribute_updates(&upd(Some("DELETE"), None)).is_ok());
        assert!(actions_from_attribute_updates(&upd(Some("PUT"), None)).is_err());
        assert!(actions_from_attribute_updates(&upd(Some("NONEXISTENT"), Some(n("1")))).is_err());
        let e = actions_from_attribute_updates(&upd(Some("DELETE"), Some(n("1"))))
            .unwrap_err()
            .to_string();
        assert!(e.contains("type"), "{e}");
        let e = actions_from_attribute_updates(&upd(Some("ADD"), Some(s("x"))))
            .unwrap_err()
            .to_string();
        assert!(e.contains("type"), "{e}");
    }

    #[test]
    fn attributes_to_get() {
        assert_eq!(
            paths_from_attributes_to_get(&["a".into(), "b".into()]).unwrap(),
            vec![Path::new("a"), Path::new("b")]
        );
        assert!(paths_from_attributes_to_get(&[]).is_err());
        assert!(
            paths_from_attributes_to_get(&["a".into(), "a".into()])
                .unwrap_err()
                .to_string()
                .contains("Duplicate")
        );
        assert!(
            paths_from_attributes_to_get(&["x".repeat(65536)])
                .unwrap_err()
                .to_string()
                .contains("65535")
        );
    }
}
