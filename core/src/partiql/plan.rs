//! Translation of parsed statements into core's typed requests, and their execution.
//!
//! Values are bound here (literals and `?` parameters into attribute values); conditions,
//! updates and projections are built as the expression module's trees through the same
//! builders its grammar uses, so an operand PartiQL accepts is checked exactly as in a
//! ConditionExpression. Every read and write then runs through the JSON API's operations.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN_BASE64;
use serde::{Deserialize, Serialize};

use super::parser::{
    Assignment, Cmp, Expr, IsWhat, Parsed, PathExpr, Projection as Columns, Returning, Select,
    Statement, Step, parse,
};
use super::{BatchStatement, INCOMPLETE_KEY, StatementRequest};
use crate::error::CancellationReason;
use crate::expr::{
    Action, CmpOp, Cond, Condition, KeyCondition, Path, Projection, RawOperand, SetValue,
    SortKeyCondition, UpdOperand, UpdateExpression, build_between, build_comparison,
    build_function_condition, build_in, check_disjoint, convert_update_operand,
};
use crate::model::{AttributeValue, Item, KeyShape, Number};
use crate::ops::{
    DeleteItemRequest, GetItemRequest, PageOptions, PutItemRequest, QueryRequest, ReturnValues,
    ScanRequest, Select as SelectKind, TransactAction, TransactGetItem, TransactWriteItem,
    TransactWriteRequest, UpdateItemRequest,
};
use crate::{Error, Result, Store};

/// Most statements of one transaction.
const MAX_TRANSACTION_STATEMENTS: usize = 100;
/// Most statements of one batch.
const MAX_BATCH_STATEMENTS: usize = 25;

/// DynamoDB's message for a parameter count that does not match the statement's `?`.
const PARAMETER_COUNT: &str = "Number of parameters in request and statement don't match.";

/// The result of one statement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatementOutcome {
    /// The table the statement read or wrote.
    pub table_name: String,
    /// A SELECT's items, or the item a RETURNING clause asked for.
    pub items: Vec<Item>,
    /// Where the next page of a SELECT starts.
    pub next_token: Option<String>,
    /// The key of the last item evaluated, when the page stopped early.
    pub last_evaluated_key: Option<Item>,
    /// Capacity units consumed.
    pub consumed_capacity_units: f64,
    /// True for writes (their capacity is write capacity).
    pub write: bool,
}

/// One statement of an ExecuteTransaction.
#[derive(Debug, Default, Clone)]
pub struct TransactionStatement {
    /// The PartiQL statement.
    pub statement: String,
    /// The values of its `?`, in order.
    pub parameters: Vec<AttributeValue>,
    /// Report the old item in the cancellation reason when its condition fails.
    pub return_old_on_condition_failure: bool,
}

/// The result of an ExecuteTransaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransactionOutcome {
    /// For a transaction of reads, per statement, its item (`None` when there is none).
    pub items: Option<Vec<Option<Item>>>,
    /// Capacity units per table.
    pub consumed_capacity_units: Vec<(String, f64)>,
    /// True for a transaction of writes.
    pub write: bool,
}

/// Why one statement of a batch failed.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStatementError {
    /// `ValidationError`, `ConditionalCheckFailed`, `DuplicateItem`, `ResourceNotFound`.
    pub code: String,
    /// Details.
    pub message: String,
    /// The old item, for a failed condition with ALL_OLD.
    pub item: Option<Item>,
}

/// The result of one statement of a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchStatementResult {
    /// The table of the statement, when known.
    pub table_name: Option<String>,
    /// The item a read found.
    pub item: Option<Item>,
    /// Why the statement failed.
    pub error: Option<BatchStatementError>,
    /// Capacity units consumed.
    pub consumed_capacity_units: f64,
    /// True for writes.
    pub write: bool,
}

/// Parses a statement and checks its parameters against its `?`.
fn parse_with(text: &str, parameters: &[AttributeValue]) -> Result<Statement> {
    let Parsed {
        statement,
        parameters: expected,
    } = parse(text)?;
    if expected != parameters.len() {
        return Err(Error::validation(PARAMETER_COUNT));
    }
    Ok(statement)
}

// ---- values ----

/// The attribute value of a literal, parameter, map, list or set; `at` names where it is,
/// for error messages (`root`, `root.a`, `root[1]`).
fn value(expr: &Expr, params: &[AttributeValue], at: &str) -> Result<AttributeValue> {
    Ok(match expr {
        Expr::Param(i) => params
            .get(*i)
            .cloned()
            .ok_or_else(|| Error::validation(PARAMETER_COUNT))?,
        Expr::Str(s) => AttributeValue::S(s.clone()),
        Expr::Number(n) => AttributeValue::N(
            Number::parse(n).map_err(|e| Error::validation(format!("{e} under {at}")))?,
        ),
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
        _ => {
            return Err(super::syntax_error("Expected a value"));
        }
    })
}

/// A `<<...>>` as a string, number or binary set.
fn bag(elements: &[Expr], params: &[AttributeValue], at: &str) -> Result<AttributeValue> {
    let unsupported = || {
        Error::validation(
            "Unsupported data type in Bag. DynamoDB only supports either numbers or strings in bags",
        )
    };
    let values = elements
        .iter()
        .map(|e| value(e, params, at))
        .collect::<Result<Vec<_>>>()?;
    match values.first() {
        None => Err(Error::validation("Empty bags are not supported")),
        Some(AttributeValue::S(_)) => values
            .into_iter()
            .map(|v| match v {
                AttributeValue::S(s) => Ok(s),
                _ => Err(unsupported()),
            })
            .collect::<Result<BTreeSet<_>>>()
            .map(AttributeValue::Ss),
        Some(AttributeValue::N(_)) => values
            .into_iter()
            .map(|v| match v {
                AttributeValue::N(n) => Ok(n),
                _ => Err(unsupported()),
            })
            .collect::<Result<BTreeSet<_>>>()
            .map(AttributeValue::Ns),
        Some(AttributeValue::B(_)) => values
            .into_iter()
            .map(|v| match v {
                AttributeValue::B(b) => Ok(b),
                _ => Err(unsupported()),
            })
            .collect::<Result<BTreeSet<_>>>()
            .map(AttributeValue::Bs),
        Some(_) => Err(unsupported()),
    }
}

/// True when `expr` is a value (no paths, no operators).
fn is_value(expr: &Expr) -> bool {
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
fn key_shape(store: &Store, table: &str, index: Option<&str>) -> Result<KeyShape> {
    store.key_shape(table, index).map_err(|e| match e {
        Error::ResourceNotFound(_) => {
            Error::ResourceNotFound("Requested resource not found".into())
        }
        other => other,
    })
}

fn path(p: &PathExpr) -> Path {
    p.steps
        .iter()
        .fold(Path::new(p.name.clone()), |path, step| match step {
            Step::Field(f) => path.field(f.clone()),
            Step::Index(i) => path.index(*i),
        })
}

/// The name of a path that is just a top-level attribute.
fn top_level(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Path(p) if p.steps.is_empty() => Some(&p.name),
        _ => None,
    }
}

// ---- conditions ----

fn operand(expr: &Expr, params: &[AttributeValue]) -> Result<RawOperand> {
    Ok(match expr {
        Expr::Path(p) => RawOperand::Path(path(p)),
        Expr::Call(name, args) => RawOperand::Call {
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

fn unsupported_condition_operator(operator: &str) -> Error {
    Error::validation(format!(
        "Unsupported operator in Condition Expression. Operator: {operator}"
    ))
}

fn cmp_op(cmp: Cmp) -> CmpOp {
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
fn condition(expr: &Expr, params: &[AttributeValue]) -> Result<Cond> {
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
            let test = match what {
                IsWhat::Missing => Cond::NotExists(path(p)),
                IsWhat::Null => checked(build_function_condition(
                    "attribute_type",
                    vec![
                        RawOperand::Path(path(p)),
                        RawOperand::Value(AttributeValue::S("NULL".into())),
                    ],
                ))?,
            };
            Ok(match (negated, test) {
                (true, Cond::NotExists(p)) => Cond::Exists(p),
                (true, test) => Cond::Not(Box::new(test)),
                (false, test) => test,
            })
        }
        Expr::Call(name, args) => {
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

/// The parts of a chain of ANDs (parenthesized ANDs included).
fn conjuncts(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::And(parts) => parts.iter().flat_map(conjuncts).collect(),
        other => vec![other],
    }
}

/// `name = value` or `value = name`.
fn equality(expr: &Expr) -> Option<(&str, &Expr)> {
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
fn all_of(parts: Vec<Cond>) -> Option<Cond> {
    match parts.len() {
        0 => None,
        1 => parts.into_iter().next(),
        _ => Some(Cond::And(parts)),
    }
}

/// A single-item WHERE: the key it fixes, and the condition made of the rest.
fn split_key(
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
fn item_exists(shape: &KeyShape) -> Cond {
    Cond::Exists(Path::new(shape.hash.name.clone()))
}

fn projection(columns: &Columns) -> Result<Option<Projection>> {
    match columns {
        Columns::All => Ok(None),
        Columns::Paths(paths) => {
            let paths: Vec<Path> = paths.iter().map(path).collect();
            check_disjoint(&paths.iter().collect::<Vec<_>>()).map_err(Error::Validation)?;
            Ok(Some(Projection::from_paths(paths)))
        }
    }
}

// ---- SELECT ----

/// Where a SELECT resumes: which partition of its `IN` list, and after which key.
#[derive(Debug, Serialize, Deserialize)]
struct Resume {
    /// Fingerprint of the statement and its parameters.
    #[serde(rename = "f")]
    fingerprint: u64,
    /// Index of the partition value (0 for a scan or a single partition).
    #[serde(rename = "p")]
    partition: usize,
    /// The last key evaluated, if the partition was left in the middle.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    key: Option<Item>,
}

fn fingerprint(statement: &str, params: &[AttributeValue]) -> u64 {
    let mut bytes = statement.as_bytes().to_vec();
    bytes.extend(serde_json::to_vec(params).unwrap_or_default());
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

fn encode_token(resume: &Resume) -> Result<String> {
    let json = serde_json::to_vec(resume).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(TOKEN_BASE64.encode(json))
}

fn decode_token(token: &str, fingerprint: u64) -> Result<Resume> {
    let invalid = || Error::validation("Invalid NextToken");
    let bytes = TOKEN_BASE64.decode(token).map_err(|_| invalid())?;
    let resume: Resume = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if resume.fingerprint != fingerprint {
        return Err(Error::validation("NextToken does not match request"));
    }
    Ok(resume)
}

/// How a SELECT reads.
struct ReadPlan {
    /// The partition key values to query, in order; `None` scans.
    partitions: Option<Vec<AttributeValue>>,
    sort: Option<SortKeyCondition>,
    filter: Option<Condition>,
    forward: bool,
}

/// The sort-key condition a conjunct states, if it is one Query can use.
fn sort_condition(
    part: &Expr,
    shape: &KeyShape,
    params: &[AttributeValue],
) -> Result<Option<SortKeyCondition>> {
    let Some(range) = &shape.range else {
        return Ok(None);
    };
    let of_type = |v: &AttributeValue| v.value_type() == range.scalar_type.value_type();
    let is_range = |e: &Expr| top_level(e) == Some(range.name.as_str());
    let found = match part {
        Expr::Compare(cmp, a, b) if *cmp != Cmp::Ne => {
            let (cmp, v) = if is_range(a) && is_value(b) {
                (*cmp, b)
            } else if is_range(b) && is_value(a) {
                let flipped = match cmp {
                    Cmp::Lt => Cmp::Gt,
                    Cmp::Le => Cmp::Ge,
                    Cmp::Gt => Cmp::Lt,
                    Cmp::Ge => Cmp::Le,
                    other => *other,
                };
                (flipped, a)
            } else {
                return Ok(None);
            };
            let v = value(v, params, "root")?;
            if !of_type(&v) {
                return Ok(None);
            }
            match cmp {
                Cmp::Eq => SortKeyCondition::Eq(v),
                Cmp::Lt => SortKeyCondition::Lt(v),
                Cmp::Le => SortKeyCondition::Le(v),
                Cmp::Gt => SortKeyCondition::Gt(v),
                Cmp::Ge | Cmp::Ne => SortKeyCondition::Ge(v),
            }
        }
        Expr::Between(v, low, high) if is_range(v) && is_value(low) && is_value(high) => {
            let (low, high) = (value(low, params, "root")?, value(high, params, "root")?);
            // An empty range is left to the filter, which then matches nothing.
            if !of_type(&low) || !of_type(&high) || low > high {
                return Ok(None);
            }
            SortKeyCondition::Between(low, high)
        }
        Expr::Call(name, args) if name == "begins_with" => match args.as_slice() {
            [v, prefix] if is_range(v) && is_value(prefix) => {
                let prefix = value(prefix, params, "root")?;
                if !of_type(&prefix)
                    || !matches!(prefix, AttributeValue::S(_) | AttributeValue::B(_))
                {
                    return Ok(None);
                }
                SortKeyCondition::BeginsWith(prefix)
            }
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(found))
}

/// The partition key values a conjunct fixes: `pk = v`, `pk IN [...]`, or `pk = v OR pk = w
/// ...`.
fn partition_values(
    part: &Expr,
    shape: &KeyShape,
    params: &[AttributeValue],
) -> Result<Option<Vec<AttributeValue>>> {
    let hash = shape.hash.name.as_str();
    let listed: Vec<&Expr> = match part {
        Expr::In(v, list) if top_level(v) == Some(hash) => list.iter().collect(),
        Expr::Or(branches) => branches
            .iter()
            .map(|b| {
                equality(b)
                    .filter(|(name, _)| *name == hash)
                    .map(|(_, v)| v)
            })
            .collect::<Option<_>>()
            .unwrap_or_default(),
        other => equality(other)
            .filter(|(name, _)| *name == hash)
            .map(|(_, v)| vec![v])
            .unwrap_or_default(),
    };
    if listed.is_empty() || !listed.iter().all(|e| is_value(e)) {
        return Ok(None);
    }
    let mut values = Vec::new();
    for e in listed {
        let v = value(e, params, "root")?;
        if !values.contains(&v) {
            values.push(v);
        }
    }
    Ok(Some(values))
}

fn plan_read(select: &Select, shape: &KeyShape, params: &[AttributeValue]) -> Result<ReadPlan> {
    let mut partitions = None;
    let mut sort = None;
    let mut rest = Vec::new();
    if let Some(filter) = &select.filter {
        for part in conjuncts(filter) {
            if partitions.is_none()
                && let Some(values) = partition_values(part, shape, params)?
            {
                partitions = Some(values);
                continue;
            }
            if sort.is_none()
                && let Some(found) = sort_condition(part, shape, params)?
            {
                sort = Some(found);
                continue;
            }
            rest.push(part);
        }
    }
    let mut forward = true;
    if !select.order_by.is_empty() {
        if select.filter.is_none() {
            return Err(Error::validation(
                "Must have WHERE clause in the statement when using ORDER BY clause.",
            ));
        }
        let Some(values) = &mut partitions else {
            return Err(Error::validation(
                "Must have at least one non-optional hash key condition in WHERE clause when using ORDER BY clause.",
            ));
        };
        let mut by_hash = false;
        for (name, descending) in &select.order_by {
            if !shape.is_key_attribute(name) {
                return Err(Error::validation(format!(
                    "Variable reference {name} in ORDER BY clause must be part of the primary key"
                )));
            }
            if *name == shape.hash.name {
                by_hash = true;
                values.sort();
                if *descending {
                    values.reverse();
                }
            } else {
                forward = !descending;
            }
        }
        if values.len() > 1 && !by_hash {
            return Err(Error::validation(
                "Must have hash key in ORDER BY clause when more than one hash key condition specified in WHERE clause.",
            ));
        }
    }
    // Without a partition key the whole WHERE filters a scan.
    let filter_parts: Vec<&Expr> = match (&partitions, &select.filter) {
        (None, Some(filter)) => vec![filter],
        _ => rest,
    };
    let filter = all_of(
        filter_parts
            .into_iter()
            .map(|p| condition(p, params))
            .collect::<Result<_>>()?,
    )
    .map(Condition::from_tree);
    // A scan filters with the whole WHERE, sort-key parts included.
    let sort = partitions.as_ref().and(sort);
    Ok(ReadPlan {
        partitions,
        sort,
        filter,
        forward,
    })
}

fn run_select(
    store: &Store,
    select: &Select,
    params: &[AttributeValue],
    request: &StatementRequest,
) -> Result<StatementOutcome> {
    let shape = key_shape(store, &select.table, select.index.as_deref())?;
    let plan = plan_read(select, &shape, params)?;
    let projection = projection(&select.projection)?;
    let kind = match (&projection, &select.index) {
        (Some(_), _) => SelectKind::SpecificAttributes,
        (None, Some(_)) => SelectKind::AllProjectedAttributes,
        (None, None) => SelectKind::AllAttributes,
    };
    let print = fingerprint(&request.statement, params);
    let resume = request
        .next_token
        .as_deref()
        .map(|t| decode_token(t, print))
        .transpose()?;
    let options = |limit: Option<i64>, start: Option<Item>| PageOptions {
        filter: plan.filter.clone(),
        projection: projection.clone(),
        select: kind,
        limit,
        exclusive_start_key: start,
        consistent_read: request.consistent_read,
    };
    let mut outcome = StatementOutcome {
        table_name: select.table.clone(),
        ..Default::default()
    };
    let Some(partitions) = &plan.partitions else {
        let page = store.scan(ScanRequest {
            table_name: select.table.clone(),
            index_name: select.index.clone(),
            segment: None,
            total_segments: None,
            options: options(request.limit, resume.and_then(|r| r.key)),
        })?;
        outcome.items = page.items;
        outcome.consumed_capacity_units = page.consumed_capacity_units;
        if let Some(key) = &page.last_evaluated_key {
            outcome.next_token = Some(encode_token(&Resume {
                fingerprint: print,
                partition: 0,
                key: Some(key.clone()),
            })?);
        }
        outcome.last_evaluated_key = page.last_evaluated_key;
        return Ok(outcome);
    };
    let (first, mut start) = match resume {
        Some(r) => (r.partition, r.key),
        None => (0, None),
    };
    if first > partitions.len() {
        return Err(Error::validation("Invalid NextToken"));
    }
    let mut remaining = request.limit;
    for (index, partition) in partitions.iter().enumerate().skip(first) {
        if remaining.is_some_and(|r| r <= 0) {
            outcome.next_token = Some(encode_token(&Resume {
                fingerprint: print,
                partition: index,
                key: None,
            })?);
            break;
        }
        let start_key = start.take();
        // A partition value of the wrong type can match no item.
        if partition.value_type() != shape.hash.scalar_type.value_type() {
            continue;
        }
        let page = store.query_allowing_key_filters(QueryRequest {
            table_name: select.table.clone(),
            index_name: select.index.clone(),
            key_condition: Some(KeyCondition {
                partition_value: partition.clone(),
                sort: plan.sort.clone(),
            }),
            scan_forward: plan.forward,
            options: options(remaining, start_key),
        })?;
        outcome.items.extend(page.items);
        outcome.consumed_capacity_units += page.consumed_capacity_units;
        if let Some(limit) = &mut remaining {
            *limit -= page.scanned_count as i64;
        }
        if let Some(key) = page.last_evaluated_key {
            outcome.next_token = Some(encode_token(&Resume {
                fingerprint: print,
                partition: index,
                key: Some(key.clone()),
            })?);
            outcome.last_evaluated_key = Some(key);
            break;
        }
    }
    Ok(outcome)
}

// ---- writes ----

fn update_actions(
    assignments: &[Assignment],
    params: &[AttributeValue],
) -> Result<UpdateExpression> {
    let invalid = |m: String| Error::Validation(m);
    let mut actions = Vec::with_capacity(assignments.len());
    for assignment in assignments {
        let action = match assignment {
            Assignment::Remove(p) => Action::Remove(path(p)),
            Assignment::Set(p, Expr::Call(name, args))
                if name == "set_add" || name == "set_delete" =>
            {
                let upper = name.to_uppercase();
                let [first, second] = args.as_slice() else {
                    return Err(Error::validation(format!(
                        "{upper} must have exactly two arguments"
                    )));
                };
                if !matches!(first, Expr::Path(f) if f == p) {
                    return Err(Error::validation(format!(
                        "The first argument to {upper} must equal the assignment value"
                    )));
                }
                let set = if is_value(second) {
                    Some(value(second, params, "root")?)
                } else {
                    None
                };
                match set {
                    Some(
                        v @ (AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)),
                    ) => {
                        if name == "set_add" {
                            Action::Add(path(p), v)
                        } else {
                            Action::Delete(path(p), v)
                        }
                    }
                    _ => {
                        return Err(Error::validation(format!(
                            "The second argument to {upper} must be a value with type SET"
                        )));
                    }
                }
            }
            Assignment::Set(p, Expr::Plus(a, b) | Expr::Minus(a, b)) => {
                let plus = matches!(assignment, Assignment::Set(_, Expr::Plus(..)));
                let (a, b) = (
                    convert_update_operand(operand(a, params)?).map_err(invalid)?,
                    convert_update_operand(operand(b, params)?).map_err(invalid)?,
                );
                for side in [&a, &b] {
                    if let UpdOperand::Value(v) = side
                        && !matches!(v, AttributeValue::N(_))
                    {
                        return Err(Error::validation(format!(
                            "Incorrect operand type for operator or function; operator: {}, operand type: {}",
                            if plus { "+" } else { "-" },
                            v.value_type().as_str()
                        )));
                    }
                }
                Action::Set(
                    path(p),
                    if plus {
                        SetValue::Plus(a, b)
                    } else {
                        SetValue::Minus(a, b)
                    },
                )
            }
            Assignment::Set(p, e) => Action::Set(
                path(p),
                SetValue::Operand(convert_update_operand(operand(e, params)?).map_err(invalid)?),
            ),
        };
        actions.push(action);
    }
    let paths: Vec<&Path> = actions.iter().map(Action::path).collect();
    check_disjoint(&paths).map_err(Error::Validation)?;
    Ok(UpdateExpression::from_actions(actions))
}

fn insert_item(item: &Expr, params: &[AttributeValue]) -> Result<Item> {
    if !matches!(item, Expr::Map(_) | Expr::Param(_)) {
        return Err(Error::validation(
            "Unsupported format in item expression. Please use struct format {...} to express item values for insert statement.",
        ));
    }
    match value(item, params, "root")? {
        AttributeValue::M(map) => Ok(map),
        _ => Err(Error::validation(
            "Unsupported format in item expression. Please use struct format {...} to express item values for insert statement.",
        )),
    }
}

fn return_values(returning: Option<Returning>) -> ReturnValues {
    match returning {
        None => ReturnValues::None,
        Some(Returning::AllOld) => ReturnValues::AllOld,
        Some(Returning::ModifiedOld) => ReturnValues::UpdatedOld,
        Some(Returning::AllNew) => ReturnValues::AllNew,
        Some(Returning::ModifiedNew) => ReturnValues::UpdatedNew,
    }
}

fn duplicate_item() -> Error {
    Error::DuplicateItem("Duplicate primary key exists in table".into())
}

fn run_write(
    store: &Store,
    statement: &Statement,
    params: &[AttributeValue],
    return_old_on_condition_failure: bool,
) -> Result<StatementOutcome> {
    let written = match statement {
        Statement::Insert { table, item } => {
            let shape = key_shape(store, table, None)?;
            let item = insert_item(item, params)?;
            let outcome = store.put_item(PutItemRequest {
                table_name: table.clone(),
                item,
                condition: Some(Condition::from_tree(Cond::NotExists(Path::new(
                    shape.hash.name.clone(),
                )))),
                return_values: ReturnValues::None,
                return_old_on_condition_failure: false,
            });
            match outcome {
                Err(Error::ConditionalCheckFailed { .. }) => return Err(duplicate_item()),
                other => (table, other?),
            }
        }
        Statement::Update {
            table,
            assignments,
            filter,
            returning,
        } => {
            let shape = key_shape(store, table, None)?;
            let (key, mut rest) = split_key(filter, &shape, params, INCOMPLETE_KEY)?;
            let update = update_actions(assignments, params)?;
            rest.insert(0, item_exists(&shape));
            let outcome = store.update_item(UpdateItemRequest {
                table_name: table.clone(),
                key,
                update: Some(update),
                condition: all_of(rest).map(Condition::from_tree),
                return_values: return_values(*returning),
                return_old_on_condition_failure,
            })?;
            (table, outcome)
        }
        Statement::Delete {
            table,
            filter,
            returning,
        } => {
            let shape = key_shape(store, table, None)?;
            let (key, rest) = split_key(filter, &shape, params, INCOMPLETE_KEY)?;
            let outcome = store.delete_item(DeleteItemRequest {
                table_name: table.clone(),
                key,
                condition: all_of(rest).map(Condition::from_tree),
                return_values: return_values(*returning),
                return_old_on_condition_failure,
            })?;
            (table, outcome)
        }
        Statement::Exists(_) => {
            return Err(Error::validation(
                "EXISTS can only be used in ExecuteTransaction write requests.",
            ));
        }
        Statement::Select(_) => {
            return Err(Error::Internal("a SELECT run as a write".into()));
        }
    };
    let (table, outcome) = written;
    Ok(StatementOutcome {
        table_name: table.clone(),
        items: outcome.attributes.into_iter().collect(),
        consumed_capacity_units: outcome.consumed_capacity_units,
        write: true,
        ..Default::default()
    })
}

/// Refuses indexes in statements that must name one item of a table.
fn refuse_index(select: &Select, message: &str) -> Result<()> {
    match select.index {
        Some(_) => Err(Error::validation(message)),
        None => Ok(()),
    }
}

pub(super) fn execute_statement(
    store: &Store,
    request: StatementRequest,
) -> Result<StatementOutcome> {
    let statement = parse_with(&request.statement, &request.parameters)?;
    match &statement {
        Statement::Select(select) => run_select(store, select, &request.parameters, &request),
        _ => run_write(
            store,
            &statement,
            &request.parameters,
            request.return_old_on_condition_failure,
        ),
    }
}

// ---- transactions ----

fn transaction_write(
    store: &Store,
    statement: &Statement,
    params: &[AttributeValue],
    return_old: bool,
) -> Result<TransactWriteItem> {
    let (table_name, action, condition) = match statement {
        Statement::Insert { table, item } => {
            let shape = key_shape(store, table, None)?;
            let item = insert_item(item, params)?;
            (
                table,
                TransactAction::Put { item },
                Some(Cond::NotExists(Path::new(shape.hash.name.clone()))),
            )
        }
        Statement::Update {
            table,
            assignments,
            filter,
            returning,
        } => {
            refuse_returning(*returning)?;
            let shape = key_shape(store, table, None)?;
            let (key, mut rest) = split_key(filter, &shape, params, INCOMPLETE_KEY)?;
            rest.insert(0, item_exists(&shape));
            let update = Some(update_actions(assignments, params)?);
            (table, TransactAction::Update { key, update }, all_of(rest))
        }
        Statement::Delete {
            table,
            filter,
            returning,
        } => {
            refuse_returning(*returning)?;
            let shape = key_shape(store, table, None)?;
            let (key, rest) = split_key(filter, &shape, params, INCOMPLETE_KEY)?;
            (table, TransactAction::Delete { key }, all_of(rest))
        }
        Statement::Exists(select) => {
            refuse_index(
                select,
                "Operations on indices are not supported in transactions",
            )?;
            let shape = key_shape(store, &select.table, None)?;
            let message = "EXISTS() must contain a single item read with additional condition";
            let filter = select
                .filter
                .as_ref()
                .ok_or_else(|| Error::validation(message))?;
            let (key, mut rest) = split_key(filter, &shape, params, message)?;
            rest.insert(0, item_exists(&shape));
            (
                &select.table,
                TransactAction::ConditionCheck { key },
                all_of(rest),
            )
        }
        Statement::Select(_) => {
            return Err(Error::Internal("a SELECT run as a write".into()));
        }
    };
    Ok(TransactWriteItem {
        table_name: table_name.clone(),
        action,
        condition: condition.map(Condition::from_tree),
        return_old_on_condition_failure: return_old,
    })
}

fn refuse_returning(returning: Option<Returning>) -> Result<()> {
    match returning {
        Some(_) => Err(Error::validation(
            "RETURNING is not supported in ExecuteTransaction",
        )),
        None => Ok(()),
    }
}

/// A key read of a transaction or batch: the table, key, projection and any further
/// condition on the item.
fn key_read(
    store: &Store,
    select: &Select,
    params: &[AttributeValue],
    message: &str,
) -> Result<(Item, Option<Projection>, Vec<Cond>)> {
    let shape = key_shape(store, &select.table, None)?;
    let filter = select
        .filter
        .as_ref()
        .ok_or_else(|| Error::validation(message))?;
    let (key, rest) = split_key(filter, &shape, params, message)?;
    Ok((key, projection(&select.projection)?, rest))
}

pub(super) fn execute_transaction(
    store: &Store,
    statements: Vec<TransactionStatement>,
    client_request_token: Option<String>,
) -> Result<TransactionOutcome> {
    if statements.is_empty() || statements.len() > MAX_TRANSACTION_STATEMENTS {
        return Err(Error::validation(format!(
            "1 validation error detected: Value at 'transactStatements' failed to satisfy constraint: Member must have length less than or equal to {MAX_TRANSACTION_STATEMENTS} and greater than or equal to 1"
        )));
    }
    let in_statement = |i: usize, e: Error| match e {
        Error::Validation(m) => {
            Error::validation(format!("Validation failed in TransactStatements[{i}]: {m}"))
        }
        other => other,
    };
    let mut parsed = Vec::with_capacity(statements.len());
    for (i, s) in statements.iter().enumerate() {
        parsed.push(parse_with(&s.statement, &s.parameters).map_err(|e| in_statement(i, e))?);
    }
    let reads = parsed.iter().filter(|s| s.is_read()).count();
    if reads > 0 && reads < parsed.len() {
        return Err(Error::validation(
            "ExecuteTransaction API does not support both read and write operations in the same request.",
        ));
    }
    if reads > 0 {
        let mut gets = Vec::with_capacity(parsed.len());
        for (i, (statement, s)) in parsed.iter().zip(&statements).enumerate() {
            let Statement::Select(select) = statement else {
                return Err(Error::Internal("a write among reads".into()));
            };
            let message = "Select statements within ExecuteTransaction must specify the primary key in the where clause.";
            let get = refuse_index(
                select,
                "Reads on indices are not supported within transactions.",
            )
            .and_then(|()| key_read(store, select, &s.parameters, message))
            .and_then(|(key, projection, rest)| match rest.is_empty() {
                true => Ok(TransactGetItem {
                    table_name: select.table.clone(),
                    key,
                    projection,
                }),
                false => Err(Error::validation(message)),
            })
            .map_err(|e| in_statement(i, e))?;
            gets.push(get);
        }
        let outcome = store.transact_get_items(gets)?;
        return Ok(TransactionOutcome {
            items: Some(outcome.items),
            consumed_capacity_units: outcome.consumed_capacity_units,
            write: false,
        });
    }
    let mut items = Vec::with_capacity(parsed.len());
    for (i, (statement, s)) in parsed.iter().zip(&statements).enumerate() {
        items.push(
            transaction_write(
                store,
                statement,
                &s.parameters,
                s.return_old_on_condition_failure,
            )
            .map_err(|e| in_statement(i, e))?,
        );
    }
    let inserts: Vec<bool> = parsed
        .iter()
        .map(|s| matches!(s, Statement::Insert { .. }))
        .collect();
    let outcome = store
        .transact_write_items(TransactWriteRequest {
            items,
            client_request_token,
        })
        .map_err(|e| match e {
            // An INSERT's only condition is that its key is new.
            Error::TransactionCanceled { reasons } => Error::TransactionCanceled {
                reasons: reasons
                    .into_iter()
                    .zip(&inserts)
                    .map(|(reason, insert)| match reason.code.as_str() {
                        "ConditionalCheckFailed" if *insert => CancellationReason {
                            code: "DuplicateItem".into(),
                            message: Some("Duplicate primary key exists in table".into()),
                            item: None,
                        },
                        _ => reason,
                    })
                    .collect(),
            },
            other => other,
        })?;
    Ok(TransactionOutcome {
        items: None,
        consumed_capacity_units: outcome.consumed_capacity_units,
        write: true,
    })
}

// ---- batches ----

/// The code a failed batch statement reports, or `None` when the whole request must fail.
fn batch_error(error: Error) -> std::result::Result<BatchStatementError, Error> {
    let (code, item) = match &error {
        Error::Validation(_) => ("ValidationError", None),
        Error::ConditionalCheckFailed { item } => {
            ("ConditionalCheckFailed", item.as_deref().cloned())
        }
        Error::DuplicateItem(_) => ("DuplicateItem", None),
        Error::ResourceNotFound(_) => ("ResourceNotFound", None),
        _ => return Err(error),
    };
    Ok(BatchStatementError {
        code: code.into(),
        message: error.to_string(),
        item,
    })
}

fn batch_read(
    store: &Store,
    select: &Select,
    statement: &BatchStatement,
) -> Result<BatchStatementResult> {
    refuse_index(select, "This operation is not supported on an index")?;
    let (key, projection, rest) = key_read(store, select, &statement.parameters, INCOMPLETE_KEY)?;
    let got = store.get_item(GetItemRequest {
        table_name: select.table.clone(),
        key,
        projection: None,
        consistent_read: statement.consistent_read,
    })?;
    // Further conditions filter the item, as they would a Query's.
    let filter = all_of(rest).map(Condition::from_tree);
    let mut item = got.item;
    if let (Some(filter), Some(found)) = (&filter, &item)
        && !filter.evaluate(Some(found))?
    {
        item = None;
    }
    Ok(BatchStatementResult {
        table_name: Some(select.table.clone()),
        item: match (item, projection) {
            (Some(item), Some(projection)) => Some(projection.apply(&item)),
            (item, _) => item,
        },
        error: None,
        consumed_capacity_units: got.consumed_capacity_units,
        write: false,
    })
}

fn table_of(statement: &Statement) -> &str {
    match statement {
        Statement::Select(s) | Statement::Exists(s) => &s.table,
        Statement::Insert { table, .. }
        | Statement::Update { table, .. }
        | Statement::Delete { table, .. } => table,
    }
}

pub(super) fn batch_execute_statement(
    store: &Store,
    statements: Vec<BatchStatement>,
) -> Result<Vec<BatchStatementResult>> {
    if statements.is_empty() || statements.len() > MAX_BATCH_STATEMENTS {
        return Err(Error::validation(format!(
            "1 validation error detected: Value at 'statements' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH_STATEMENTS} and greater than or equal to 1"
        )));
    }
    let parsed: Vec<Result<Statement>> = statements
        .iter()
        .map(|s| parse_with(&s.statement, &s.parameters))
        .collect();
    let reads = parsed
        .iter()
        .filter(|p| matches!(p, Ok(s) if s.is_read()))
        .count();
    let writes = parsed
        .iter()
        .filter(|p| matches!(p, Ok(s) if !s.is_read()))
        .count();
    if reads > 0 && writes > 0 {
        return Err(Error::validation(
            "Batch execute statement does not support both read and write operations in the same request.",
        ));
    }
    let mut results = Vec::with_capacity(statements.len());
    for (parsed, statement) in parsed.into_iter().zip(&statements) {
        let table_name = parsed.as_ref().ok().map(|s| table_of(s).to_string());
        let ran = parsed.and_then(|parsed| match &parsed {
            Statement::Select(select) => batch_read(store, select, statement),
            Statement::Exists(_) => Err(Error::validation(
                "EXISTS can only be used in ExecuteTransaction write requests.",
            )),
            write => run_write(
                store,
                write,
                &statement.parameters,
                statement.return_old_on_condition_failure,
            )
            .map(|outcome| BatchStatementResult {
                table_name: Some(outcome.table_name),
                item: None,
                error: None,
                consumed_capacity_units: outcome.consumed_capacity_units,
                write: true,
            }),
        });
        results.push(match ran {
            Ok(result) => result,
            Err(error) => BatchStatementResult {
                table_name,
                error: Some(batch_error(error)?),
                ..Default::default()
            },
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_statement() {
        let key: Item = [("pk".to_string(), AttributeValue::S("a".into()))].into();
        let token = encode_token(&Resume {
            fingerprint: 7,
            partition: 2,
            key: Some(key.clone()),
        })
        .unwrap();
        let resume = decode_token(&token, 7).unwrap();
        assert_eq!((resume.partition, resume.key), (2, Some(key)));
        assert_eq!(
            decode_token(&token, 8).unwrap_err().to_string(),
            "NextToken does not match request"
        );
        assert_eq!(
            decode_token("not a token!", 7).unwrap_err().to_string(),
            "Invalid NextToken"
        );
    }

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
            "Number overflow. Attempting to store a number with magnitude larger than supported range under root.m.x"
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
        let select = |text: &str| {
            let Statement::Select(select) = parse(text).unwrap().statement else {
                panic!("not a select");
            };
            select
        };
        let plan = plan_read(
            &select("SELECT * FROM t WHERE pk IN ['a', 'b'] AND sk BETWEEN 1 AND 5 AND x = 1"),
            &shape,
            &[],
        )
        .unwrap();
        assert_eq!(plan.partitions.as_ref().map(Vec::len), Some(2));
        assert!(matches!(plan.sort, Some(SortKeyCondition::Between(..))));
        assert!(plan.filter.is_some());
        let plan = plan_read(&select("SELECT * FROM t WHERE x = 1"), &shape, &[]).unwrap();
        assert!(plan.partitions.is_none());
        let plan = plan_read(
            &select("SELECT * FROM t WHERE (pk = 'a' OR 'b' = pk OR pk = 'a') AND sk = 1"),
            &shape,
            &[],
        )
        .unwrap();
        assert_eq!(
            plan.partitions,
            Some(vec![
                AttributeValue::S("a".into()),
                AttributeValue::S("b".into())
            ])
        );
        assert!(matches!(plan.sort, Some(SortKeyCondition::Eq(_))));
        let plan = plan_read(
            &select("SELECT * FROM t WHERE pk = 'a' OR x = 1"),
            &shape,
            &[],
        )
        .unwrap();
        assert!(plan.partitions.is_none());
        assert_eq!(
            plan_read(
                &select("SELECT * FROM t WHERE x = 1 ORDER BY sk"),
                &shape,
                &[]
            )
            .err()
            .unwrap()
            .to_string(),
            "Must have at least one non-optional hash key condition in WHERE clause when using ORDER BY clause."
        );
        let plan = plan_read(
            &select("SELECT * FROM t WHERE pk = 'a' ORDER BY sk DESC"),
            &shape,
            &[],
        )
        .unwrap();
        assert!(!plan.forward);
        let plan = plan_read(
            &select("SELECT * FROM t WHERE pk IN ['a', 'c', 'b'] ORDER BY pk DESC, sk"),
            &shape,
            &[],
        )
        .unwrap();
        assert!(plan.forward);
        assert_eq!(
            plan.partitions,
            Some(
                ["c", "b", "a"]
                    .map(|v| AttributeValue::S(v.into()))
                    .to_vec()
            )
        );
        assert!(
            plan_read(
                &select("SELECT * FROM t WHERE pk IN ['a', 'b'] ORDER BY sk"),
                &shape,
                &[]
            )
            .is_err()
        );
    }
}
