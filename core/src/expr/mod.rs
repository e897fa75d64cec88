//! The DynamoDB expression language: condition, filter, update, projection and key-condition
//! expressions, plus the legacy parameters (`Expected`, `AttributeUpdates`, `AttributesToGet`,
//! `KeyConditions`, `QueryFilter`, `ScanFilter`) converted to the same trees.
//!
//! Parsing resolves `#name` and `:value` placeholders through one [`Placeholders`] per request
//! (so unused ones can be reported once every expression of the request was parsed), checks
//! DynamoDB's limits and the types of constant operands, and reports errors with DynamoDB's
//! wording (`Invalid UpdateExpression: Syntax error; token: ...`). Evaluation and update
//! application never look at placeholders again.

mod condition;
pub(crate) use condition::describe;
mod key_condition;
pub(crate) use key_condition::{mirrored, sort_condition as sort_key_condition};
mod legacy;
mod lexer;
mod parser;
mod path;
mod projection;
mod reserved;
mod update;

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::model::{AttributeValue, Item, KeyShape};
use crate::{Error, Result};

use parser::{ExprKind, Parser};

pub use path::{Path, PathElement};
pub use tidemark_model::key_condition::{KeyCondition, SortKeyCondition};

// The PartiQL translation (`crate::partiql`) builds condition and update trees directly from
// its own syntax tree, with the same operand checks the expression grammar applies.
pub(crate) use condition::{
    CmpOp, Cond, build_between, build_comparison, build_function_condition, build_in,
};
pub(crate) use parser::RawOperand;
pub(crate) use path::check_disjoint;
pub(crate) use update::{Action, SetValue, arithmetic, convert as convert_update_operand};

/// Expression attribute names and values of one request, with which of them were used.
#[derive(Debug)]
pub struct Placeholders<'a> {
    names: Option<&'a HashMap<String, String>>,
    values: Option<&'a HashMap<String, AttributeValue>>,
    used_names: HashSet<String>,
    used_values: HashSet<String>,
}

impl<'a> Placeholders<'a> {
    /// Placeholders from a request's `ExpressionAttributeNames` and `ExpressionAttributeValues`.
    pub fn new(
        names: Option<&'a HashMap<String, String>>,
        values: Option<&'a HashMap<String, AttributeValue>>,
    ) -> Self {
        Placeholders {
            names,
            values,
            used_names: HashSet::new(),
            used_values: HashSet::new(),
        }
    }

    /// After all of a request's expressions were parsed: errors for unused names, then values,
    /// with DynamoDB's message.
    pub fn check_all_used(&self) -> Result<()> {
        fn unused<V>(
            map: Option<&HashMap<String, V>>,
            used: &HashSet<String>,
            parameter: &str,
        ) -> Result<()> {
            let mut keys: Vec<&str> = map
                .into_iter()
                .flat_map(HashMap::keys)
                .filter(|k| !used.contains(k.as_str()))
                .map(String::as_str)
                .collect();
            if keys.is_empty() {
                return Ok(());
            }
            keys.sort_unstable();
            Err(Error::validation(format!(
                "Value provided in {parameter} unused in expressions: keys: {{{}}}",
                keys.join(", ")
            )))
        }
        unused(self.names, &self.used_names, "ExpressionAttributeNames")?;
        unused(self.values, &self.used_values, "ExpressionAttributeValues")
    }
}

/// A ConditionExpression / FilterExpression (or legacy `Expected`) with placeholders resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    root: condition::Cond,
}

/// An UpdateExpression (or legacy `AttributeUpdates`): actions with placeholders resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateExpression {
    actions: Vec<update::Action>,
}

/// A ProjectionExpression (or legacy `AttributesToGet`): the document paths to return.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    paths: Vec<Path>,
}

fn parse_with<T>(
    kind: ExprKind,
    text: &str,
    placeholders: &mut Placeholders<'_>,
    grammar: impl FnOnce(&mut Parser<'_, '_, '_>) -> std::result::Result<T, String>,
) -> Result<T> {
    let mut parser = Parser::new(kind, text, placeholders).map_err(|m| kind.error(m))?;
    grammar(&mut parser).map_err(|m| kind.error(m))
}

/// Parses a ConditionExpression.
pub fn parse_condition(text: &str, placeholders: &mut Placeholders<'_>) -> Result<Condition> {
    let root = parse_with(ExprKind::Condition, text, placeholders, condition::parse)?;
    Ok(Condition { root })
}

/// Parses a FilterExpression: the grammar of [`parse_condition`], with errors naming
/// `FilterExpression`.
pub fn parse_filter(text: &str, placeholders: &mut Placeholders<'_>) -> Result<Condition> {
    let root = parse_with(ExprKind::Filter, text, placeholders, condition::parse)?;
    Ok(Condition { root })
}

/// Parses an UpdateExpression.
pub fn parse_update(text: &str, placeholders: &mut Placeholders<'_>) -> Result<UpdateExpression> {
    let actions = parse_with(ExprKind::Update, text, placeholders, update::parse)?;
    Ok(UpdateExpression { actions })
}

/// Parses a ProjectionExpression.
pub fn parse_projection(text: &str, placeholders: &mut Placeholders<'_>) -> Result<Projection> {
    let paths = parse_with(ExprKind::Projection, text, placeholders, projection::parse)?;
    Ok(Projection { paths })
}

impl Condition {
    /// A condition of an already checked tree.
    pub(crate) fn from_tree(root: Cond) -> Condition {
        Condition { root }
    }

    /// Evaluates against `item`; `None` when the item does not exist (every attribute is
    /// then missing).
    pub fn evaluate(&self, item: Option<&Item>) -> Result<bool> {
        Ok(self.root.evaluate(item))
    }

    /// Top-level attribute names the condition reads, each once, in order of appearance
    /// (for rejecting filters on key attributes).
    pub fn referenced_attributes(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.root
            .paths()
            .into_iter()
            .map(Path::attribute)
            .filter(|name| seen.insert(*name))
            .collect()
    }
}

impl UpdateExpression {
    /// An update of already checked actions.
    pub(crate) fn from_actions(actions: Vec<Action>) -> UpdateExpression {
        UpdateExpression { actions }
    }

    /// Applies every action to `item` (an empty map when the item did not exist). All
    /// right-hand sides are evaluated against the item as it was before the update. On error
    /// `item` is unchanged.
    pub fn apply(&self, item: &mut Item) -> Result<()> {
        update::apply(&self.actions, item)
    }

    /// Top-level attribute names this expression writes or removes, each once.
    pub fn top_level_attributes(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.actions
            .iter()
            .map(|a| a.path().attribute())
            .filter(|name| seen.insert(*name))
            .collect()
    }

    /// True when every action only takes something away (REMOVE, or DELETE from a set): on a
    /// missing item such an update does nothing and creates nothing.
    pub fn only_removes(&self) -> bool {
        self.actions.iter().all(|a| {
            matches!(
                a,
                update::Action::Remove(_)
                    | update::Action::Delete(..)
                    | update::Action::LegacyDelete(..)
            )
        })
    }

    /// Paths written by SET/ADD/DELETE/REMOVE, for ReturnValues=UPDATED_OLD/UPDATED_NEW.
    pub fn updated_paths(&self) -> Vec<Path> {
        self.actions.iter().map(|a| a.path().clone()).collect()
    }
}

impl Projection {
    /// A projection of the given paths; overlapping paths keep the wider one.
    pub fn from_paths(paths: Vec<Path>) -> Projection {
        Projection { paths }
    }

    /// The projected paths.
    pub fn paths(&self) -> &[Path] {
        &self.paths
    }

    /// The item restricted to the projected paths (nested paths keep only the named parts;
    /// list elements keep their relative order), as DynamoDB returns it.
    pub fn apply(&self, item: &Item) -> Item {
        projection::apply(&self.paths, item)
    }
}

/// One entry of the legacy `Expected` parameter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExpectedAttributeValue {
    /// `Value`: the value the attribute must equal.
    #[serde(default)]
    pub value: Option<AttributeValue>,
    /// `Exists`: `false` requires the attribute to be missing.
    #[serde(default)]
    pub exists: Option<bool>,
    /// `ComparisonOperator`: EQ, NE, LE, LT, GE, GT, NOT_NULL, NULL, CONTAINS, NOT_CONTAINS,
    /// BEGINS_WITH, IN or BETWEEN.
    #[serde(default)]
    pub comparison_operator: Option<String>,
    /// `AttributeValueList`: the operands of `ComparisonOperator`.
    #[serde(default)]
    pub attribute_value_list: Option<Vec<AttributeValue>>,
}

/// One entry of the legacy `AttributeUpdates` parameter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeValueUpdate {
    /// `Value`: the operand of the action.
    #[serde(default)]
    pub value: Option<AttributeValue>,
    /// `Action`: PUT, DELETE or ADD (default PUT).
    #[serde(default)]
    pub action: Option<String>,
}

/// Converts the legacy `Expected` and `ConditionalOperator` parameters to a condition; an
/// empty `Expected` is always true.
pub fn condition_from_expected(
    expected: &HashMap<String, ExpectedAttributeValue>,
    conditional_operator: Option<&str>,
) -> Result<Condition> {
    let root = legacy::condition_from_expected(expected, conditional_operator)?;
    Ok(Condition { root })
}

/// Converts the legacy `AttributeUpdates` parameter to an update expression.
pub fn update_from_attribute_updates(
    updates: &HashMap<String, AttributeValueUpdate>,
) -> Result<UpdateExpression> {
    let actions = legacy::actions_from_attribute_updates(updates)?;
    Ok(UpdateExpression { actions })
}

/// Converts the legacy `AttributesToGet` parameter to a projection.
pub fn projection_from_attributes_to_get(names: &[String]) -> Result<Projection> {
    let paths = legacy::paths_from_attributes_to_get(names)?;
    Ok(Projection { paths })
}

/// One entry of the legacy `KeyConditions`, `QueryFilter` or `ScanFilter` parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LegacyCondition {
    /// `AttributeValueList`: the operands of `ComparisonOperator`.
    #[serde(default)]
    pub attribute_value_list: Option<Vec<AttributeValue>>,
    /// `ComparisonOperator`: EQ, NE, LE, LT, GE, GT, NOT_NULL, NULL, CONTAINS, NOT_CONTAINS,
    /// BEGINS_WITH, IN or BETWEEN (only EQ, LE, LT, GE, GT, BEGINS_WITH, BETWEEN in
    /// `KeyConditions`).
    #[serde(default)]
    pub comparison_operator: Option<String>,
}

/// Parses a KeyConditionExpression and checks it against `shape` (the key schema of the table
/// or index queried). Without a shape (the table is missing) it checks only what needs no
/// schema and gives no condition: DynamoDB reports those faults before a missing table.
pub fn parse_key_condition(
    text: &str,
    placeholders: &mut Placeholders<'_>,
    shape: Option<&KeyShape>,
) -> Result<Option<KeyCondition>> {
    match shape {
        Some(shape) => key_condition::parse_expression(text, placeholders, shape).map(Some),
        None => key_condition::check_expression(text, placeholders).map(|()| None),
    }
}

/// The legacy `KeyConditions` parameter, checked against `shape` as [`parse_key_condition`]
/// checks.
pub fn key_condition_from_key_conditions(
    conditions: &HashMap<String, LegacyCondition>,
    shape: Option<&KeyShape>,
) -> Result<Option<KeyCondition>> {
    match shape {
        Some(shape) => key_condition::from_key_conditions(conditions, shape).map(Some),
        None => key_condition::check_key_conditions(conditions).map(|()| None),
    }
}

/// Legacy `QueryFilter` / `ScanFilter` (with `ConditionalOperator` AND|OR, default AND) as a
/// condition; an empty filter is always true.
pub fn condition_from_legacy_filter(
    filter: &HashMap<String, LegacyCondition>,
    conditional_operator: Option<&str>,
) -> Result<Condition> {
    let root = legacy::condition_from_legacy_filter(filter, conditional_operator)?;
    Ok(Condition { root })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn av(json: &str) -> AttributeValue {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn placeholders_are_tracked_across_expressions() {
        let names = HashMap::from([
            ("#a".to_string(), "a".to_string()),
            ("#b".to_string(), "b".to_string()),
        ]);
        let values = HashMap::from([
            (":one".to_string(), av(r#"{"N":"1"}"#)),
            (":two".to_string(), av(r#"{"N":"2"}"#)),
        ]);
        let mut ph = Placeholders::new(Some(&names), Some(&values));
        parse_update("SET #a = :one", &mut ph).unwrap();
        assert_eq!(
            ph.check_all_used().unwrap_err().to_string(),
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"
        );
        // Short-circuiting evaluation must not matter: use is decided at parse time.
        parse_condition("#a = :one OR #b = :two", &mut ph).unwrap();
        ph.check_all_used().unwrap();

        let mut ph = Placeholders::new(None, Some(&values));
        parse_condition("a = :one", &mut ph).unwrap();
        assert_eq!(
            ph.check_all_used().unwrap_err().to_string(),
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:two}"
        );
        Placeholders::new(None, None).check_all_used().unwrap();
    }

    #[test]
    fn errors_name_the_expression() {
        let mut ph = Placeholders::new(None, None);
        let err = |r: Result<()>| r.unwrap_err().to_string();
        assert!(
            err(parse_condition("a !", &mut ph).map(drop))
                .starts_with("Invalid ConditionExpression: Syntax error; token: \"!\"")
        );
        assert!(
            err(parse_filter("", &mut ph).map(drop))
                .starts_with("Invalid FilterExpression: The expression can not be empty")
        );
        assert!(
            err(parse_update("SET a", &mut ph).map(drop))
                .starts_with("Invalid UpdateExpression: Syntax error")
        );
        assert!(
            err(parse_projection("a,", &mut ph).map(drop))
                .starts_with("Invalid ProjectionExpression: Syntax error")
        );
        assert_eq!(
            err(parse_condition(&format!("a {} = b", " ".repeat(4094)), &mut ph).map(drop)),
            "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: 4100"
        );
    }

    #[test]
    fn update_metadata_and_return_values() {
        let values = HashMap::from([(":v".to_string(), av(r#"{"N":"7"}"#))]);
        let mut ph = Placeholders::new(None, Some(&values));
        let update = parse_update("SET a.c[1] = :v, b = :v REMOVE a.d", &mut ph).unwrap();
        assert_eq!(update.top_level_attributes(), vec!["a", "b"]);
        let old: Item = serde_json::from_str(
            r#"{"a":{"M":{"c":{"L":[{"N":"1"},{"N":"2"}]},"d":{"N":"0"},"e":{"N":"9"}}},"k":{"S":"x"}}"#,
        )
        .unwrap();
        let mut new = old.clone();
        update.apply(&mut new).unwrap();
        let changed = Projection::from_paths(update.updated_paths());
        assert_eq!(
            changed.apply(&old),
            serde_json::from_str::<Item>(r#"{"a":{"M":{"c":{"L":[{"N":"2"}]},"d":{"N":"0"}}}}"#)
                .unwrap()
        );
        assert_eq!(
            changed.apply(&new),
            serde_json::from_str::<Item>(r#"{"a":{"M":{"c":{"L":[{"N":"7"}]}}},"b":{"N":"7"}}"#)
                .unwrap()
        );
    }

    #[test]
    fn condition_metadata() {
        let values = HashMap::from([(":v".to_string(), av(r#"{"N":"7"}"#))]);
        let mut ph = Placeholders::new(None, Some(&values));
        let c = parse_filter("a.x = :v OR (c > :v AND a[1] = :v)", &mut ph).unwrap();
        assert_eq!(c.referenced_attributes(), vec!["a", "c"]);
    }

    #[test]
    fn legacy_wrappers() {
        let updates: HashMap<String, AttributeValueUpdate> = serde_json::from_str(
            r#"{"a":{"Value":{"N":"2"},"Action":"ADD"},"b":{"Action":"DELETE"},"c":{"Value":{"S":"x"}}}"#,
        )
        .unwrap();
        let update = update_from_attribute_updates(&updates).unwrap();
        let mut item: Item = serde_json::from_str(r#"{"a":{"N":"1"},"b":{"S":"gone"}}"#).unwrap();
        update.apply(&mut item).unwrap();
        assert_eq!(
            item,
            serde_json::from_str::<Item>(r#"{"a":{"N":"3"},"c":{"S":"x"}}"#).unwrap()
        );
        let expected: HashMap<String, ExpectedAttributeValue> = serde_json::from_str(
            r#"{"a":{"ComparisonOperator":"GT","AttributeValueList":[{"N":"2"}]},"z":{"Exists":false}}"#,
        )
        .unwrap();
        let cond = condition_from_expected(&expected, None).unwrap();
        assert!(cond.evaluate(Some(&item)).unwrap());
        let projection = projection_from_attributes_to_get(&["c".to_string()]).unwrap();
        assert_eq!(projection.paths(), &[Path::new("c")]);
    }

    #[test]
    fn query_wrappers() {
        use crate::model::{KeyAttribute, ScalarType};
        let shape = KeyShape {
            hash: KeyAttribute {
                name: "p".to_string(),
                scalar_type: ScalarType::S,
            },
            range: Some(KeyAttribute {
                name: "c".to_string(),
                scalar_type: ScalarType::N,
            }),
            hash_rest: vec![],
            range_rest: vec![],
        };
        let values = HashMap::from([
            (":p".to_string(), av(r#"{"S":"x"}"#)),
            (":c".to_string(), av(r#"{"N":"3"}"#)),
        ]);
        let mut ph = Placeholders::new(None, Some(&values));
        let expected = KeyCondition {
            partition_value: av(r#"{"S":"x"}"#),
            partition_rest: vec![],
            sort_prefix: vec![],
            sort: Some(SortKeyCondition::Gt(av(r#"{"N":"3"}"#))),
        };
        assert_eq!(
            parse_key_condition("p = :p AND c > :c", &mut ph, Some(&shape))
                .unwrap()
                .unwrap(),
            expected
        );
        ph.check_all_used().unwrap();
        let legacy: HashMap<String, LegacyCondition> = serde_json::from_str(
            r#"{"p":{"AttributeValueList":[{"S":"x"}],"ComparisonOperator":"EQ"},
                "c":{"AttributeValueList":[{"N":"3"}],"ComparisonOperator":"GT"}}"#,
        )
        .unwrap();
        assert_eq!(
            key_condition_from_key_conditions(&legacy, Some(&shape))
                .unwrap()
                .unwrap(),
            expected
        );
        let filter: HashMap<String, LegacyCondition> = serde_json::from_str(
            r#"{"a":{"AttributeValueList":[{"N":"1"}],"ComparisonOperator":"EQ"},
                "b":{"ComparisonOperator":"NULL"}}"#,
        )
        .unwrap();
        let cond = condition_from_legacy_filter(&filter, None).unwrap();
        let item: Item = serde_json::from_str(r#"{"a":{"N":"1"}}"#).unwrap();
        assert!(cond.evaluate(Some(&item)).unwrap());
        assert_eq!(cond.referenced_attributes(), vec!["a", "b"]);
        let cond = condition_from_legacy_filter(&filter, Some("OR")).unwrap();
        assert!(cond.evaluate(Some(&Item::new())).unwrap());
    }

    fn arb_name() -> impl Strategy<Value = String> {
        "[a-zA-Z][a-zA-Z0-9_]{0,8}".prop_filter("reserved words need an alias", |n| {
            !reserved::is_reserved(n)
        })
    }

    fn arb_path() -> impl Strategy<Value = Path> {
        let element = prop_oneof![
            arb_name().prop_map(PathElement::Field),
            (0usize..1000).prop_map(PathElement::Index),
        ];
        (arb_name(), prop::collection::vec(element, 0..31)).prop_map(|(name, elements)| {
            elements.into_iter().fold(Path::new(name), |p, e| match e {
                PathElement::Field(f) => p.field(f),
                PathElement::Index(i) => p.index(i),
            })
        })
    }

    proptest! {
        #[test]
        fn displayed_paths_parse_back(path in arb_path()) {
            let mut ph = Placeholders::new(None, None);
            let parsed = parse_projection(&path.to_string(), &mut ph).unwrap();
            prop_assert_eq!(parsed.paths(), &[path]);
        }

        #[test]
        fn projecting_a_path_keeps_exactly_its_value(path in arb_path(), leaf in 0i64..100) {
            // Build the smallest item that has `leaf` at `path`, then project it back out.
            let mut value = AttributeValue::N(leaf.into());
            for element in path.elements().iter().rev() {
                value = match element {
                    PathElement::Field(f) => AttributeValue::M([(f.clone(), value)].into()),
                    PathElement::Index(_) => AttributeValue::L(vec![value]),
                };
            }
            let item: Item = [(path.attribute().to_string(), value)].into();
            let dense = path.elements().iter().all(|e| !matches!(e, PathElement::Index(i) if *i > 0));
            let projected = Projection::from_paths(vec![path.clone()]).apply(&item);
            if dense {
                prop_assert_eq!(projected, item);
            } else {
                prop_assert!(projected.is_empty());
            }
        }
    }
}
