//! Pieces several operations share: required fields, instants, expression parameters (and the
//! rules for mixing them with the legacy parameters), ReturnValues and ConsumedCapacity.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use tidemark_core::expr::{
    self, AttributeValueUpdate, Condition, ExpectedAttributeValue, KeyCondition, LegacyCondition,
    Placeholders, Projection, UpdateExpression,
};
use tidemark_core::model::Item;
use tidemark_core::model::{AttributeValue, KeyShape, VALIDATION_ERROR_MARKER, reading_deep};
use tidemark_core::ops::{IndexUnits, PageOutcome, ReturnValues, Select};

use crate::server::error::{ApiError, strip_position};
use tidemark_core::Store;

/// A table call's `TableName`: required, and the table's name when it came as its ARN.
pub(crate) fn named_table(store: &Store, given: Option<String>) -> Result<String, ApiError> {
    let given = required(given, "tableName")?;
    Ok(store.table_name_of(&given)?.to_string())
}

/// Query's and Scan's `Limit`: at least 1. Sic: DynamoDB names it in Pascal case here and
/// echoes no value.
pub(crate) fn check_limit(limit: Option<i64>) -> Result<(), ApiError> {
    match limit {
        Some(limit) if limit < 1 => Err(ApiError::validation(
            "1 validation error detected: Value at 'Limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
        )),
        _ => Ok(()),
    }
}

/// A table name inside a request (a transaction's action): required, and a name or ARN by
/// the rules of `TableName`, its violations naming where it stands (`at`).
pub(crate) fn table_reference(given: Option<String>, at: &str) -> Result<String, ApiError> {
    let given = required(given, at)?;
    let mut violations = Violations::default();
    violations.table_reference(&given, at);
    violations.check()?;
    Ok(given)
}

/// A required member, or DynamoDB's "must not be null" validation error.
pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| Violations::missing(field).into())
}

pub(crate) use tidemark_core::Violations;

/// `ReturnValues`' values, in the order DynamoDB lists them in its message.
const RETURN_VALUES: [&str; 5] = ["ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW"];
/// `ReturnConsumedCapacity`'s values, in DynamoDB's order.
const RETURN_CONSUMED_CAPACITY: [&str; 3] = ["INDEXES", "TOTAL", "NONE"];
/// `ReturnItemCollectionMetrics`' values, in DynamoDB's order.
const RETURN_ITEM_COLLECTION_METRICS: [&str; 2] = ["SIZE", "NONE"];

/// The members a single-item request (GetItem, PutItem, UpdateItem, DeleteItem) shares,
/// checked together as DynamoDB checks them, every violation in one error, in the order
/// DynamoDB lists them for the operation (`order`).
#[derive(Debug)]
pub(crate) struct ItemRequestMembers<'a> {
    pub(crate) table_name: Option<&'a str>,
    /// `item` or `key`, and whether it was sent.
    pub(crate) target: (&'static str, bool),
    pub(crate) return_consumed_capacity: Option<&'a str>,
    pub(crate) return_values: Option<&'a str>,
    pub(crate) return_item_collection_metrics: Option<&'a str>,
    /// The legacy `ConditionalOperator`, where the order lists it.
    pub(crate) conditional_operator: Option<&'a str>,
    pub(crate) order: &'static [Member],
}

/// A member [`ItemRequestMembers`] checks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Member {
    TableName,
    /// The item or the key.
    Target,
    ReturnConsumedCapacity,
    ReturnValues,
    ReturnItemCollectionMetrics,
    ConditionalOperator,
}

/// The orders DynamoDB lists an item call's violations in: PutItem, DeleteItem and
/// UpdateItem as recorded from AWS in 2026 (docs/compatibility.md; UpdateItem's table name
/// between its two enums, its ConditionalOperator first), GetItem as dynalite's tests list
/// them.
pub(crate) mod order {
    use super::Member;
    use super::Member::*;

    pub(crate) const PUT_ITEM: &[Member] = &[
        ReturnValues,
        ReturnConsumedCapacity,
        ReturnItemCollectionMetrics,
        TableName,
        Target,
    ];
    pub(crate) const DELETE_ITEM: &[Member] = PUT_ITEM;
    pub(crate) const UPDATE_ITEM: &[Member] = &[
        ConditionalOperator,
        ReturnConsumedCapacity,
        TableName,
        ReturnValues,
        ReturnItemCollectionMetrics,
        Target,
    ];
    pub(crate) const GET_ITEM: &[Member] = &[ReturnConsumedCapacity, Target, TableName];
}

impl ItemRequestMembers<'_> {
    /// Nothing, or every violation in one ValidationException.
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        let mut violations = Violations::default();
        for member in self.order {
            match member {
                Member::TableName => match self.table_name {
                    None => violations.null("tableName"),
                    Some(name) => violations.table_reference(name, "tableName"),
                },
                Member::Target => {
                    let (target, sent) = self.target;
                    if !sent {
                        violations.null(target);
                    }
                }
                Member::ReturnConsumedCapacity => {
                    if let Some(value) = self.return_consumed_capacity {
                        violations.one_of(
                            value,
                            "returnConsumedCapacity",
                            &RETURN_CONSUMED_CAPACITY,
                        );
                    }
                }
                Member::ReturnValues => {
                    if let Some(value) = self.return_values {
                        violations.one_of(value, "returnValues", &RETURN_VALUES);
                    }
                }
                Member::ConditionalOperator => {
                    if let Some(value) = self.conditional_operator {
                        violations.one_of(value, "conditionalOperator", &["OR", "AND"]);
                    }
                }
                Member::ReturnItemCollectionMetrics => {
                    if let Some(value) = self.return_item_collection_metrics {
                        violations.one_of(
                            value,
                            "returnItemCollectionMetrics",
                            &RETURN_ITEM_COLLECTION_METRICS,
                        );
                    }
                }
            }
        }
        Ok(violations.check()?)
    }
}

/// Checks a transaction's `ClientRequestToken`: 1 to 36 characters, checked before (and
/// reported without) any other member.
pub(crate) fn check_client_request_token(token: Option<&str>) -> Result<(), ApiError> {
    match token {
        Some(token) if !(1..=36).contains(&token.len()) => Err(ApiError::validation(
            "1 validation error detected: Value at 'ClientRequestToken' failed to satisfy constraint: Member must have length less than or equal to 36",
        )),
        _ => Ok(()),
    }
}

/// The batch and transaction calls' ReturnConsumedCapacity and ReturnItemCollectionMetrics,
/// each violation added to `violations`, in that order.
pub(crate) fn check_return_enums(
    violations: &mut Violations,
    capacity: Option<&str>,
    metrics: Option<&str>,
) {
    if let Some(value) = capacity {
        violations.one_of(value, "returnConsumedCapacity", &RETURN_CONSUMED_CAPACITY);
    }
    if let Some(value) = metrics {
        violations.one_of(
            value,
            "returnItemCollectionMetrics",
            &RETURN_ITEM_COLLECTION_METRICS,
        );
    }
}

/// [`check_return_enums`] alone: nothing, or its violations as one error.
pub(crate) fn return_enums(capacity: Option<&str>, metrics: Option<&str>) -> Result<(), ApiError> {
    let mut violations = Violations::default();
    check_return_enums(&mut violations, capacity, metrics);
    Ok(violations.check()?)
}

/// The batch calls' check of `RequestItems`' keys: a table name that is no ARN must keep the
/// name rules, and the whole map (`echoed` as DynamoDB quotes it) is reported once.
pub(crate) fn check_request_item_names<'a>(
    violations: &mut Violations,
    mut names: impl Iterator<Item = &'a String>,
    echoed: impl FnOnce() -> String,
) {
    let bad = |name: &str| {
        let mut rules = Violations::default();
        rules.name(name, "tableName");
        !name.starts_with("arn:") && rules.check().is_err()
    };
    if names.any(|name| bad(name)) {
        violations.breaks(
            &echoed(),
            "requestItems",
            "Map keys must satisfy constraint: [Member must have length less than or equal to 255, Member must have length greater than or equal to 3, Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+]",
        );
    }
}

/// The batch calls' refusal of an empty `RequestItems`.
pub(crate) const EMPTY_REQUEST_ITEMS: &str = "1 validation error detected: Value at 'RequestItems' failed to satisfy constraint: Member must have length greater than or equal to 1";

/// Seconds since the epoch, as DynamoDB's JSON protocol writes instants.
pub(crate) fn seconds(millis: u64) -> f64 {
    millis as f64 / 1000.0
}

/// An instant sent as seconds since the epoch, to the millisecond.
pub(crate) fn millis(seconds: f64, field: &str) -> Result<u64, ApiError> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(ApiError::validation(format!("Invalid {field}: {seconds}")));
    }
    Ok((seconds * 1000.0).round() as u64)
}

/// The expression-related parameters of a request, as sent.
#[derive(Debug, Default)]
pub(crate) struct ExpressionParams<'a> {
    pub(crate) condition_expression: Option<&'a str>,
    pub(crate) update_expression: Option<&'a str>,
    pub(crate) projection_expression: Option<&'a str>,
    pub(crate) names: Option<&'a HashMap<String, String>>,
    pub(crate) values: Option<&'a HashMap<String, AttributeValue>>,
    pub(crate) expected: Option<&'a HashMap<String, ExpectedAttributeValue>>,
    pub(crate) conditional_operator: Option<&'a str>,
    pub(crate) attribute_updates: Option<&'a HashMap<String, AttributeValueUpdate>>,
    pub(crate) attributes_to_get: Option<&'a [String]>,
    pub(crate) key_condition_expression: Option<&'a str>,
    pub(crate) filter_expression: Option<&'a str>,
    pub(crate) key_conditions: Option<&'a HashMap<String, LegacyCondition>>,
    /// Legacy `QueryFilter` or `ScanFilter`, with the name of the parameter it came in.
    pub(crate) legacy_filter: Option<(&'static str, &'a HashMap<String, LegacyCondition>)>,
    /// The key schema key conditions are checked against (Query only; none while the table
    /// is missing).
    pub(crate) key_shape: Option<&'a KeyShape>,
    /// The expressions of the operation that take values, in the order DynamoDB names them
    /// when `ExpressionAttributeValues` comes without any of them (empty: not known, and any
    /// expression will do).
    pub(crate) value_expressions: &'static [&'static str],
}

/// The parsed expressions of a request.
#[derive(Debug, Default)]
pub(crate) struct Expressions {
    pub(crate) condition: Option<Condition>,
    pub(crate) update: Option<UpdateExpression>,
    pub(crate) projection: Option<Projection>,
    pub(crate) key_condition: Option<KeyCondition>,
    pub(crate) filter: Option<Condition>,
}

impl ExpressionParams<'_> {
    /// Parses every expression with one set of placeholders, enforcing DynamoDB's rules: no
    /// mixing with legacy parameters, placeholders only with expressions, none unused.
    pub(crate) fn parse(&self) -> Result<Expressions, ApiError> {
        let mut modern = Vec::new();
        if self.condition_expression.is_some() {
            modern.push("ConditionExpression");
        }
        if self.update_expression.is_some() {
            modern.push("UpdateExpression");
        }
        if self.projection_expression.is_some() {
            modern.push("ProjectionExpression");
        }
        if self.key_condition_expression.is_some() {
            modern.push("KeyConditionExpression");
        }
        if self.filter_expression.is_some() {
            modern.push("FilterExpression");
        }
        let mut legacy = Vec::new();
        if self.expected.is_some() {
            legacy.push("Expected");
        }
        if self.attribute_updates.is_some() {
            legacy.push("AttributeUpdates");
        }
        if self.attributes_to_get.is_some() {
            legacy.push("AttributesToGet");
        }
        if let Some((name, _)) = self.legacy_filter {
            legacy.push(name);
        }
        if self.conditional_operator.is_some() {
            legacy.push("ConditionalOperator");
        }
        // DynamoDB accepts legacy KeyConditions beside FilterExpression and
        // ProjectionExpression; only KeyConditionExpression conflicts with it.
        if self.key_conditions.is_some() && self.key_condition_expression.is_some() {
            legacy.push("KeyConditions");
            modern.retain(|m| *m == "KeyConditionExpression");
        }
        if !modern.is_empty() && !legacy.is_empty() {
            return Err(ApiError::validation(format!(
                "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
                legacy.join(", "),
                modern.join(", ")
            )));
        }
        if let Some(names) = self.names {
            if modern.is_empty() {
                return Err(ApiError::validation(
                    "ExpressionAttributeNames can only be specified when using expressions",
                ));
            }
            if names.is_empty() {
                return Err(ApiError::validation(
                    "ExpressionAttributeNames must not be empty",
                ));
            }
        }
        if let Some(values) = self.values {
            let valued = self.condition_expression.is_some()
                || self.update_expression.is_some()
                || self.key_condition_expression.is_some()
                || self.filter_expression.is_some();
            match self.value_expressions {
                [] if modern.is_empty() => {
                    return Err(ApiError::validation(
                        "ExpressionAttributeValues can only be specified when using expressions",
                    ));
                }
                // DynamoDB names the operation's expressions that take values (dynalite's
                // tests: putItem.js, updateItem.js, query.js, scan.js).
                [_, ..] if !valued => {
                    return Err(ApiError::validation(format!(
                        "ExpressionAttributeValues can only be specified when using expressions: {} {} null",
                        self.value_expressions.join(" and "),
                        if self.value_expressions.len() > 1 {
                            "are"
                        } else {
                            "is"
                        }
                    )));
                }
                _ => {}
            }
            if values.is_empty() {
                return Err(ApiError::validation(
                    "ExpressionAttributeValues must not be empty",
                ));
            }
        }
        if self.conditional_operator.is_some()
            && self.expected.is_none()
            && self.legacy_filter.is_none()
        {
            return Err(ApiError::validation(
                "ConditionalOperator can only be used when Expected or QueryFilter or ScanFilter are present",
            ));
        }
        let mut placeholders = Placeholders::new(self.names, self.values);
        let mut out = Expressions::default();
        if let Some(text) = self.update_expression {
            out.update = Some(expr::parse_update(text, &mut placeholders)?);
        }
        if let Some(text) = self.condition_expression {
            out.condition = Some(expr::parse_condition(text, &mut placeholders)?);
        }
        if let Some(text) = self.projection_expression {
            out.projection = Some(expr::parse_projection(text, &mut placeholders)?);
        }
        if let Some(text) = self.key_condition_expression {
            out.key_condition = expr::parse_key_condition(text, &mut placeholders, self.key_shape)?;
        }
        if let Some(text) = self.filter_expression {
            out.filter = Some(expr::parse_filter(text, &mut placeholders)?);
        }
        placeholders.check_all_used()?;
        if let Some(conditions) = self.key_conditions {
            out.key_condition =
                expr::key_condition_from_key_conditions(conditions, self.key_shape)?;
        }
        if let Some((_, filter)) = self.legacy_filter {
            out.filter = Some(expr::condition_from_legacy_filter(
                filter,
                self.conditional_operator,
            )?);
        }
        if let Some(expected) = self.expected {
            out.condition = Some(expr::condition_from_expected(
                expected,
                self.conditional_operator,
            )?);
        }
        if let Some(updates) = self.attribute_updates {
            out.update = Some(expr::update_from_attribute_updates(updates)?);
        }
        if let Some(names) = self.attributes_to_get {
            out.projection = Some(expr::projection_from_attributes_to_get(names)?);
        }
        Ok(out)
    }
}

/// Parses `ReturnValues`, allowing only `allowed` for this operation.
pub(crate) fn return_values(
    text: Option<&str>,
    allowed: &[&str],
) -> Result<ReturnValues, ApiError> {
    match text {
        None => Ok(ReturnValues::None),
        Some(t) if allowed.contains(&t) => ReturnValues::parse(t).ok_or_else(|| {
            ApiError::validation(format!("Return values set to invalid value: {t}"))
        }),
        // PutItem and DeleteItem return the old item or nothing (AWS, 2026-10, for both);
        // a request read deep gets the older, bare form.
        Some(t) if ReturnValues::parse(t).is_some() && allowed == ["NONE", "ALL_OLD"] => {
            let refusal = ApiError::validation("ReturnValues can only be ALL_OLD or NONE");
            Err(match reading_deep() {
                true => refusal,
                false => refusal.enveloped(),
            })
        }
        Some(t) if ReturnValues::parse(t).is_some() => Err(ApiError::validation(format!(
            "Return values set to invalid value: {t}"
        ))),
        Some(t) => Err(Violations::not_one_of(t, "returnValues", &RETURN_VALUES).into()),
    }
}

/// Parses `ReturnValuesOnConditionCheckFailure`: true for `ALL_OLD`.
pub(crate) fn return_old_on_failure(text: Option<&str>) -> Result<bool, ApiError> {
    match text {
        None | Some("NONE") => Ok(false),
        Some("ALL_OLD") => Ok(true),
        Some(t) => Err(Violations::not_one_of(
            t,
            "returnValuesOnConditionCheckFailure",
            &["ALL_OLD", "NONE"],
        )
        .into()),
    }
}

/// What `ReturnConsumedCapacity` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CapacityDetail {
    None,
    Total,
    Indexes,
}

/// Parses `ReturnConsumedCapacity`.
pub(crate) fn capacity_detail(text: Option<&str>) -> Result<CapacityDetail, ApiError> {
    match text {
        None | Some("NONE") => Ok(CapacityDetail::None),
        Some("TOTAL") => Ok(CapacityDetail::Total),
        Some("INDEXES") => Ok(CapacityDetail::Indexes),
        Some(t) => {
            Err(
                Violations::not_one_of(t, "returnConsumedCapacity", &RETURN_CONSUMED_CAPACITY)
                    .into(),
            )
        }
    }
}

/// Units consumed on one table or index.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Capacity {
    pub(crate) capacity_units: f64,
}

/// DynamoDB's `ConsumedCapacity`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ConsumedCapacity {
    pub(crate) table_name: String,
    pub(crate) capacity_units: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) read_capacity_units: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) write_capacity_units: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) table: Option<Capacity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) local_secondary_indexes: Option<BTreeMap<String, Capacity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) global_secondary_indexes: Option<BTreeMap<String, Capacity>>,
}

impl CapacityDetail {
    /// The `ConsumedCapacity` to report, if any was asked for, for an operation that took
    /// `units` of which nothing went to a secondary index.
    pub(crate) fn report(
        self,
        table_name: &str,
        units: f64,
        write: bool,
    ) -> Option<ConsumedCapacity> {
        self.report_with_indexes(table_name, units, &[], write)
    }

    /// The `ConsumedCapacity` to report, if any was asked for: `units` in all, of which
    /// `indexes` went to secondary indexes and the rest to the table. With `INDEXES`, each
    /// part is reported on its own (`Table` only when the table itself was read or written,
    /// as DynamoDB omits it for a read of an index).
    pub(crate) fn report_with_indexes(
        self,
        table_name: &str,
        units: f64,
        indexes: &[IndexUnits],
        write: bool,
    ) -> Option<ConsumedCapacity> {
        if self == CapacityDetail::None {
            return None;
        }
        let detailed = self == CapacityDetail::Indexes;
        let table_units = units - indexes.iter().map(|i| i.units).sum::<f64>();
        let of = |global: bool| {
            let map: BTreeMap<String, Capacity> = indexes
                .iter()
                .filter(|i| i.global == global)
                .map(|i| {
                    (
                        i.index_name.clone(),
                        Capacity {
                            capacity_units: i.units,
                        },
                    )
                })
                .collect();
            (detailed && !map.is_empty()).then_some(map)
        };
        Some(ConsumedCapacity {
            table_name: table_name.to_string(),
            capacity_units: units,
            read_capacity_units: (!write).then_some(units),
            write_capacity_units: write.then_some(units),
            table: (detailed && (indexes.is_empty() || table_units > 0.0)).then_some(Capacity {
                capacity_units: table_units,
            }),
            local_secondary_indexes: of(false),
            global_secondary_indexes: of(true),
        })
    }
}

/// Parses `Select`; without it, as in DynamoDB, a projection means SPECIFIC_ATTRIBUTES, and
/// otherwise a table read returns ALL_ATTRIBUTES and an index read ALL_PROJECTED_ATTRIBUTES.
pub(crate) fn select(
    text: Option<&str>,
    has_projection: bool,
    reads_index: bool,
) -> Result<Select, ApiError> {
    match text {
        None if has_projection => Ok(Select::SpecificAttributes),
        None if reads_index => Ok(Select::AllProjectedAttributes),
        None => Ok(Select::AllAttributes),
        Some(t) => Select::parse(t).ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value '{t}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
            ))
        }),
    }
}

/// The answer of a Query or Scan page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PageOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<Vec<Item>>,
    count: usize,
    scanned_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_evaluated_key: Option<Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumed_capacity: Option<ConsumedCapacity>,
}

impl PageOutput {
    pub(crate) fn new(
        page: PageOutcome,
        select: Select,
        table_name: &str,
        capacity: CapacityDetail,
    ) -> Self {
        PageOutput {
            items: (select != Select::Count).then_some(page.items),
            count: page.count,
            scanned_count: page.scanned_count,
            last_evaluated_key: page.last_evaluated_key,
            consumed_capacity: capacity.report_with_indexes(
                table_name,
                page.consumed_capacity_units,
                page.index_units.as_slice(),
                false,
            ),
        }
    }
}

/// Parses `ReturnItemCollectionMetrics`: true for `SIZE`.
pub(crate) fn item_collection_metrics_wanted(text: Option<&str>) -> Result<bool, ApiError> {
    match text {
        None | Some("NONE") => Ok(false),
        Some("SIZE") => Ok(true),
        Some(t) => Err(Violations::not_one_of(
            t,
            "returnItemCollectionMetrics",
            &RETURN_ITEM_COLLECTION_METRICS,
        )
        .into()),
    }
}

/// DynamoDB's `ItemCollectionMetrics`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireItemCollectionMetrics {
    item_collection_key: Item,
    #[serde(rename = "SizeEstimateRangeGB")]
    size_estimate_range_gb: [f64; 2],
}

/// The metrics of the collection `key` (an item or its key) belongs to, when the table has
/// local secondary indexes (DynamoDB returns nothing for other tables).
pub(crate) fn collection_metrics(
    store: &Store,
    table_name: &str,
    key: &Item,
) -> Result<Option<WireItemCollectionMetrics>, ApiError> {
    Ok(store
        .item_collection_metrics(table_name, key)?
        .map(|m| WireItemCollectionMetrics {
            size_estimate_range_gb: m.size_estimate_range_gb(),
            item_collection_key: m.key,
        }))
}

/// The metrics of every collection a batch or transaction wrote, by table, each collection
/// once; `None` when not asked for or no table written has local secondary indexes.
pub(crate) fn collection_metrics_by_table<'a>(
    store: &Store,
    wanted: bool,
    written: impl Iterator<Item = (&'a str, &'a Item)>,
) -> Result<Option<BTreeMap<String, Vec<WireItemCollectionMetrics>>>, ApiError> {
    if !wanted {
        return Ok(None);
    }
    let mut by_table: BTreeMap<String, Vec<WireItemCollectionMetrics>> = BTreeMap::new();
    for (table_name, key) in written {
        let Some(metrics) = collection_metrics(store, table_name, key)? else {
            continue;
        };
        let list = by_table.entry(table_name.to_string()).or_default();
        if !list
            .iter()
            .any(|m| m.item_collection_key == metrics.item_collection_key)
        {
            list.push(metrics);
        }
    }
    Ok((!by_table.is_empty()).then_some(by_table))
}

/// Reads `ExpressionAttributeValues` as DynamoDB's older value checks do (TransactWriteItems):
/// a fault in a value is wrapped with the placeholder it belongs to,
/// `ExpressionAttributeValues contains invalid value: … for key :v` (nubo-db/dynamodb-
/// conformance's valueLayers.test.ts, recorded against AWS in 2026).
pub(crate) fn older_expression_values<'de, D>(
    d: D,
) -> Result<Option<HashMap<String, AttributeValue>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Values;

    impl<'de> serde::de::Visitor<'de> for Values {
        type Value = Option<HashMap<String, AttributeValue>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of expression attribute values")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut values = HashMap::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value::<AttributeValue>().map_err(|e| {
                    let text = e.to_string();
                    let Some(fault) = text.split_once(VALIDATION_ERROR_MARKER).map(|(_, f)| f)
                    else {
                        return e;
                    };
                    serde::de::Error::custom(format_args!(
                        "{VALIDATION_ERROR_MARKER}ExpressionAttributeValues contains invalid value: {} for key {key}",
                        strip_position(fault)
                    ))
                })?;
                values.insert(key, value);
            }
            Ok(Some(values))
        }
    }

    d.deserialize_option(Values)
}
