//! SELECT: a Query per partition-key value when the WHERE fixes the partition key, else a
//! Scan filtered by the whole WHERE; paging with an opaque `NextToken`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN_BASE64;
use serde::{Deserialize, Serialize};

use super::bind::{
    all_of, cmp_op, columns, condition, conjuncts, equality, is_value, projection, row, source,
    top_level, value,
};
use super::parser::{Cmp, Expr, Projection as ColumnsOf, Select};
use super::{StatementOutcome, StatementRequest};
use crate::expr::{Condition, KeyCondition, SortKeyCondition, mirrored, sort_key_condition};
use crate::model::{AttributeValue, Item, KeyShape};
use crate::ops::{
    GSI_CONSISTENT_READ, PageOptions, QueryRequest, ScanRequest, Select as SelectKind, Source,
    add_index_units,
};
use crate::{Error, Result, Store};
use std::collections::BTreeSet;

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

/// What binds a NextToken to its statement and parameters.
fn fingerprint(statement: &str, params: &[AttributeValue]) -> u64 {
    let mut bytes = statement.as_bytes().to_vec();
    bytes.extend(serde_json::to_vec(params).unwrap_or_default());
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// A NextToken: base64 (URL-safe) of the resume point as JSON.
fn encode_token(resume: &Resume) -> Result<String> {
    let json = serde_json::to_vec(resume).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(TOKEN_BASE64.encode(json))
}

/// The resume point of a NextToken given with the statement of `fingerprint`.
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
            let (op, v) = if is_range(a) && is_value(b) {
                (cmp_op(*cmp), b)
            } else if is_range(b) && is_value(a) {
                (mirrored(cmp_op(*cmp)), a)
            } else {
                return Ok(None);
            };
            let v = value(v, params, "root")?;
            if !of_type(&v) {
                return Ok(None);
            }
            match sort_key_condition(op, v) {
                Some(found) => found,
                None => return Ok(None),
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
        Expr::Call(name, args, _) if name == "begins_with" => match args.as_slice() {
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

/// Refuses OR branches of one partition where one bounds the sort key and another names it
/// not at all: DynamoDB reads those as overlapping ranges. A branch that names the sort key
/// without bounding it (`sk <> v`, `NOT sk = v`) runs (nubo-db/dynamodb-conformance's
/// partiqlGrammar.test.ts and whereOverlap.test.ts, AWS 2026-10).
fn check_overlapping_branches(
    filter: &Expr,
    shape: &KeyShape,
    params: &[AttributeValue],
) -> Result<()> {
    let (Expr::Or(branches), Some(range)) = (filter, &shape.range) else {
        return Ok(());
    };
    // Each branch's partition value, whether it bounds the sort key, whether it names it.
    let mut read = Vec::with_capacity(branches.len());
    for branch in branches {
        let parts = conjuncts(branch);
        let partition = parts.iter().find_map(|p| {
            equality(p)
                .filter(|(name, v)| *name == shape.hash.name && is_value(v))
                .map(|(_, v)| v)
        });
        let Some(partition) = partition else {
            return Ok(());
        };
        let mut bounds = false;
        let mut names = BTreeSet::new();
        for part in &parts {
            bounds |= sort_condition(part, shape, params)?.is_some();
            attributes_named(part, &mut names);
        }
        read.push((
            value(partition, params, "root")?,
            bounds,
            names.contains(&range.name),
        ));
    }
    let overlapping = read.iter().any(|(partition, bounds, _)| {
        *bounds
            && read
                .iter()
                .any(|(other, _, names)| other == partition && !names)
    });
    if overlapping {
        return Err(Error::validation(
            "Overlapping conditions with range keys are not supported in where clause",
        ));
    }
    Ok(())
}

/// How a SELECT reads: the partitions its WHERE fixes, the sort-key condition that bounds
/// them, the filter, and the direction `ORDER BY` asks for.
fn plan_read(select: &Select, shape: &KeyShape, params: &[AttributeValue]) -> Result<ReadPlan> {
    let mut partitions = None;
    let mut sort = None;
    let mut rest = Vec::new();
    // A multi-attribute (GSI) key is read by a scan filtered by the whole WHERE: the same
    // items, without binding each key attribute.
    let keyed = !shape.is_multi_attribute();
    if let Some(filter) = &select.filter
        && keyed
    {
        check_overlapping_branches(filter, shape, params)?;
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

/// Runs one page of a SELECT: its rows, each the columns it names (or the whole item).
pub(super) fn run_select(
    store: &Store,
    select: &Select,
    params: &[AttributeValue],
    request: &StatementRequest,
) -> Result<StatementOutcome> {
    let mut outcome = read_select(store, select, params, request).map_err(|e| match e {
        // PartiQL words this refusal its own way (conformance indexReads.test.ts, AWS).
        Error::Validation(m) if m == GSI_CONSISTENT_READ => Error::validation(
            "Strongly consistent read is not supported on Global Secondary Indexes",
        ),
        other => other,
    })?;
    if let Some(columns) = columns(&select.projection) {
        for item in &mut outcome.items {
            *item = row(&columns, item);
        }
    }
    Ok(outcome)
}

/// Refuses a read of an index for attributes it does not project, as DynamoDB words it for
/// PartiQL: a filter on one (any secondary index), or a column of one (a global index; a local
/// one fetches the rest from the table). Source: nubo-db/dynamodb-conformance's
/// partiqlIndexQualifier.test.ts, run against AWS.
fn check_index_attributes(source: &Source, select: &Select) -> Result<()> {
    let Some(index) = &source.index else {
        return Ok(());
    };
    let projected = |name: &&str| index.projects(&source.table.shape, name);
    let mut filtered = BTreeSet::new();
    if let Some(filter) = &select.filter {
        attributes_named(filter, &mut filtered);
    }
    let missing: Vec<&str> = filtered
        .iter()
        .map(String::as_str)
        .filter(|n| !projected(n))
        .collect();
    if !missing.is_empty() {
        return Err(Error::validation(format!(
            "One or more parameter values were invalid: Secondary index {} does not project one or more filter attributes: [{}]",
            index.name,
            missing.join(", ")
        )));
    }
    if let (true, ColumnsOf::Paths(paths)) = (index.global, &select.projection) {
        let missing: Vec<&str> = paths
            .iter()
            .map(|p| p.name.as_str())
            .filter(|n| !projected(n))
            .collect();
        if !missing.is_empty() {
            return Err(Error::validation(format!(
                "One or more parameter values were invalid: Global secondary index {} does not project [{}]",
                index.name,
                missing.join(", ")
            )));
        }
    }
    Ok(())
}

/// The top-level attributes an expression's paths start at.
fn attributes_named(expr: &Expr, names: &mut BTreeSet<String>) {
    let mut visit = |e: &Expr| attributes_named(e, names);
    match expr {
        Expr::Path(p) => {
            names.insert(p.name.clone());
        }
        Expr::Map(entries) => entries.iter().for_each(|(_, e)| visit(e)),
        Expr::List(items) | Expr::Bag(items) | Expr::And(items) | Expr::Or(items) => {
            items.iter().for_each(visit)
        }
        Expr::Call(_, args, _) => args.iter().for_each(visit),
        Expr::Compare(_, a, b) | Expr::Plus(a, b) | Expr::Minus(a, b) => {
            visit(a);
            visit(b);
        }
        Expr::Between(a, b, c) => [a, b, c].into_iter().for_each(|e| visit(e)),
        Expr::In(a, list) => {
            visit(a);
            list.iter().for_each(visit);
        }
        Expr::Is(a, _, _) | Expr::Not(a) => visit(a),
        Expr::Param(_)
        | Expr::Str(_)
        | Expr::Number(_)
        | Expr::Bool(_)
        | Expr::Null
        | Expr::Missing => {}
    }
}

/// One page of the items a SELECT reads, whole.
fn read_select(
    store: &Store,
    select: &Select,
    params: &[AttributeValue],
    request: &StatementRequest,
) -> Result<StatementOutcome> {
    // The WHERE's own faults (an operand of the wrong type) come before a missing table
    // (nubo-db/dynamodb-conformance's validation-ordering/partiql.test.ts, AWS).
    let source = source(store, &select.table, select.index.as_deref()).map_err(|missing| {
        match select.filter.as_ref().map(|f| condition(f, params)) {
            Some(Err(fault)) => fault,
            _ => missing,
        }
    })?;
    let shape = source.shape().clone();
    check_index_attributes(&source, select)?;
    let plan = plan_read(select, &shape, params)?;
    // Checks the columns (no two overlap); they are picked from the whole items afterwards,
    // since a projection would renumber the list elements a column like `a[1]` names.
    projection(&select.projection)?;
    let kind = match &select.index {
        Some(_) => SelectKind::AllProjectedAttributes,
        None => SelectKind::AllAttributes,
    };
    let print = fingerprint(&request.statement, params);
    let resume = request
        .next_token
        .as_deref()
        .map(|t| decode_token(t, print))
        .transpose()?;
    let options = |limit: Option<i64>, start: Option<Item>| PageOptions {
        filter: plan.filter.clone(),
        projection: None,
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
        outcome.index_units.extend(page.index_units);
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
                partition_rest: Vec::new(),
                sort_prefix: Vec::new(),
                sort: plan.sort.clone(),
            }),
            scan_forward: plan.forward,
            options: options(remaining, start_key),
        })?;
        outcome.items.extend(page.items);
        outcome.consumed_capacity_units += page.consumed_capacity_units;
        add_index_units(
            &mut outcome.index_units,
            page.index_units.into_iter().collect(),
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partiql::parser::{Statement, parse};

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
    fn selects_plan_queries_and_scans() {
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
