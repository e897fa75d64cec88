//! TransactWriteItems.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tidemark_core::Engine;
use tidemark_core::model::{AttributeValue, Item, MAX_NESTING, NESTED_TOO_DEEP, reading_deep};
use tidemark_core::ops::{TransactAction, TransactWriteItem, TransactWriteRequest};

use super::common::{
    CapacityDetail, ConsumedCapacity, ExpressionParams, WireItemCollectionMetrics, capacity_detail,
    check_client_request_token, collection_metrics_by_table, item_collection_metrics_wanted,
    older_expression_values, required, return_enums, return_old_on_failure, table_reference,
};
use super::echo::{Echo, check_transact_items, object};
use crate::server::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TransactWriteItemsInput {
    transact_items: Option<Vec<WireTransactItem>>,
    client_request_token: Option<String>,
    return_consumed_capacity: Option<String>,
    return_item_collection_metrics: Option<String>,
}

/// One element of `TransactItems`: exactly one of its members is set.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireTransactItem {
    condition_check: Option<WireAction>,
    put: Option<WireAction>,
    delete: Option<WireAction>,
    update: Option<WireAction>,
}

/// The members any of the four actions may carry.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireAction {
    table_name: Option<String>,
    item: Option<Item>,
    key: Option<Item>,
    update_expression: Option<String>,
    condition_expression: Option<String>,
    expression_attribute_names: Option<HashMap<String, String>>,
    #[serde(default, deserialize_with = "older_expression_values")]
    expression_attribute_values: Option<HashMap<String, AttributeValue>>,
    return_values_on_condition_check_failure: Option<String>,
}

impl Echo for WireTransactItem {
    fn echo(&self, out: &mut String) {
        fn shown<'a>(kind: &'static str, action: &'a Option<WireAction>) -> Option<ActionEcho<'a>> {
            action.as_ref().map(|action| ActionEcho { kind, action })
        }
        object(
            out,
            "TransactWriteItem",
            &[
                (
                    "conditionCheck",
                    &shown("ConditionCheck", &self.condition_check),
                ),
                ("put", &shown("Put", &self.put)),
                ("delete", &shown("Delete", &self.delete)),
                ("update", &shown("Update", &self.update)),
            ],
        );
    }
}

/// An action as the Java model of its kind prints it.
struct ActionEcho<'a> {
    kind: &'static str,
    action: &'a WireAction,
}

impl Echo for ActionEcho<'_> {
    fn echo(&self, out: &mut String) {
        self.action.echo_as(self.kind, out);
    }
}

impl WireAction {
    /// Whether any value the action carries is nested past the document limit.
    fn nests_too_deep(&self) -> bool {
        let items = [&self.item, &self.key].into_iter().flatten();
        items
            .flat_map(|item| item.values())
            .chain(
                self.expression_attribute_values
                    .iter()
                    .flat_map(|v| v.values()),
            )
            .any(|v| v.depth() > MAX_NESTING)
    }

    /// The action as the Java model of `kind` prints it, its members in the API's order.
    fn echo_as(&self, kind: &str, out: &mut String) {
        let mut members: Vec<(&str, &dyn Echo)> = Vec::new();
        match kind {
            "Put" => members.push(("item", &self.item)),
            _ => members.push(("key", &self.key)),
        }
        if kind == "Update" {
            members.push(("updateExpression", &self.update_expression));
        }
        members.extend([
            ("tableName", &self.table_name as &dyn Echo),
            ("conditionExpression", &self.condition_expression),
            ("expressionAttributeNames", &self.expression_attribute_names),
            (
                "expressionAttributeValues",
                &self.expression_attribute_values,
            ),
            (
                "returnValuesOnConditionCheckFailure",
                &self.return_values_on_condition_check_failure,
            ),
        ]);
        object(out, kind, &members);
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TransactWriteItemsOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    consumed_capacity: Option<Vec<ConsumedCapacity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_collection_metrics: Option<BTreeMap<String, Vec<WireItemCollectionMetrics>>>,
}

fn convert(item: WireTransactItem, index: usize) -> Result<TransactWriteItem, ApiError> {
    let at = |member: &str| format!("transactItems.{}.member.{member}", index + 1);
    // The action's kind, and the member that carries it as validation messages name it.
    let (kind, member, wire) = match (item.condition_check, item.put, item.delete, item.update) {
        (Some(a), None, None, None) => ("ConditionCheck", "conditionCheck", a),
        (None, Some(a), None, None) => ("Put", "put", a),
        (None, None, Some(a), None) => ("Delete", "delete", a),
        (None, None, None, Some(a)) => ("Update", "update", a),
        (None, None, None, None) => {
            return Err(ApiError::validation(
                "1 validation error detected: Value '' at 'transactItems' failed to satisfy constraint: TransactWriteRequest should contain Delete or Put or Update or ConditionCheck",
            ));
        }
        _ => {
            return Err(ApiError::validation(
                "TransactItems can only contain one of Check, Put, Update or Delete",
            ));
        }
    };
    // Each action in its turn: a value nested too deep is reported before the action's other
    // faults, and after every fault of the actions before it. A request read deep reports it
    // after all of them (`tidemark_core::model::Nesting::Defer`).
    if !reading_deep() && wire.nests_too_deep() {
        return Err(ApiError::validation(NESTED_TOO_DEEP));
    }
    let expressions = ExpressionParams {
        condition_expression: wire.condition_expression.as_deref(),
        update_expression: wire.update_expression.as_deref(),
        names: wire.expression_attribute_names.as_ref(),
        values: wire.expression_attribute_values.as_ref(),
        ..Default::default()
    }
    .parse()?;
    let action = match kind {
        "Put" => {
            let item = required(wire.item, &at("put.item"))?;
            // Before any table is looked up (AWS, 2026-10: deepRequests.test.ts).
            if item.contains_key("") {
                return Err(ApiError::validation("Empty attribute name"));
            }
            TransactAction::Put { item }
        }
        "Delete" => TransactAction::Delete {
            key: required(wire.key, &at("delete.key"))?,
        },
        "Update" => {
            if expressions.update.is_none() {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                    at("update.updateExpression")
                )));
            }
            TransactAction::Update {
                key: required(wire.key, &at("update.key"))?,
                update: expressions.update,
            }
        }
        _ => {
            if expressions.condition.is_none() {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                    at("conditionCheck.conditionExpression")
                )));
            }
            TransactAction::ConditionCheck {
                key: required(wire.key, &at("conditionCheck.key"))?,
            }
        }
    };
    Ok(TransactWriteItem {
        table_name: table_reference(wire.table_name, &at(&format!("{member}.tableName")))?,
        action,
        condition: expressions.condition,
        return_old_on_condition_failure: return_old_on_failure(
            wire.return_values_on_condition_check_failure.as_deref(),
        )?,
    })
}

pub(crate) fn transact_write_items(
    engine: &Engine,
    input: TransactWriteItemsInput,
) -> Result<TransactWriteItemsOutput, ApiError> {
    check_client_request_token(input.client_request_token.as_deref())?;
    return_enums(
        input.return_consumed_capacity.as_deref(),
        input.return_item_collection_metrics.as_deref(),
    )?;
    let capacity = capacity_detail(input.return_consumed_capacity.as_deref())?;
    let metrics = item_collection_metrics_wanted(input.return_item_collection_metrics.as_deref())?;
    let transact_items = required(input.transact_items, "transactItems")?;
    check_transact_items(&transact_items)?;
    let items = transact_items
        .into_iter()
        .enumerate()
        .map(|(i, item)| convert(item, i))
        .collect::<Result<Vec<_>, _>>()?;
    // The collections written (condition checks write nothing), read after the write.
    let collections_of: Vec<(String, Item)> = match metrics {
        true => items
            .iter()
            .filter_map(|i| match &i.action {
                TransactAction::Put { item } => Some((i.table_name.clone(), item.clone())),
                TransactAction::Update { key, .. } | TransactAction::Delete { key } => {
                    Some((i.table_name.clone(), key.clone()))
                }
                TransactAction::ConditionCheck { .. } => None,
            })
            .collect(),
        false => Vec::new(),
    };
    let outcome = engine
        .transactions
        .transact_write_items(TransactWriteRequest {
            items,
            client_request_token: input.client_request_token,
        })?;
    let consumed = (capacity != CapacityDetail::None).then(|| {
        outcome
            .consumed_capacity_units
            .iter()
            .filter_map(|(table, units)| capacity.report(table, *units, true))
            .collect()
    });
    Ok(TransactWriteItemsOutput {
        consumed_capacity: consumed,
        item_collection_metrics: collection_metrics_by_table(
            &engine.store,
            metrics,
            collections_of.iter().map(|(t, k)| (t.as_str(), k)),
        )?,
    })
}
