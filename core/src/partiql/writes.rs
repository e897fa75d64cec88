//! INSERT, UPDATE and DELETE: a PutItem under "the key is new", an UpdateItem under "the item
//! exists" and the rest of the WHERE, a DeleteItem under the rest of the WHERE; and
//! ExecuteStatement, which runs one statement of any kind.

use super::bind::{
    all_of, is_set_function, is_value, item_exists, key_shape, operand, parse_with, path,
    split_key, value,
};
use super::parser::{Assignment, Expr, Returning, Select, Statement};
use super::select::run_select;
use super::{INCOMPLETE_KEY, StatementOutcome, StatementRequest};
use crate::expr::{
    Action, Cond, Condition, Path, SetValue, UpdateExpression, arithmetic, check_disjoint,
    convert_update_operand,
};
use crate::model::{AttributeValue, Item};
use crate::ops::{
    DeleteItemRequest, PutItemRequest, ReturnValues, TransactAction, UpdateItemRequest,
};
use crate::{Error, Result, Store};

/// The SET and REMOVE clauses of an UPDATE as an update expression.
pub(super) fn update_actions(
    assignments: &[Assignment],
    params: &[AttributeValue],
) -> Result<UpdateExpression> {
    let invalid = |m: String| Error::Validation(m);
    let mut actions = Vec::with_capacity(assignments.len());
    for assignment in assignments {
        let action = match assignment {
            Assignment::Remove(p) => Action::Remove(path(p)),
            Assignment::Set(p, Expr::Call(name, args, span)) if is_set_function(name) => {
                // Each refusal ends with where it is (conformance partiqlFunctions.test.ts,
                // AWS): the function's name, or for the second argument the first's.
                let upper = name.to_uppercase();
                let [first, second] = args.as_slice() else {
                    return Err(Error::validation(format!(
                        "{upper} must have exactly two arguments at {span}"
                    )));
                };
                let first = match first {
                    Expr::Path(first) if first == p => first,
                    _ => {
                        return Err(Error::validation(format!(
                            "The first argument to {upper} must equal the assignment value at {span}"
                        )));
                    }
                };
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
                            "The second argument to {upper} must be a value with type SET at {}",
                            first.span
                        )));
                    }
                }
            }
            Assignment::Set(p, Expr::Plus(a, b) | Expr::Minus(a, b)) => {
                let plus = matches!(assignment, Assignment::Set(_, Expr::Plus(..)));
                let value = arithmetic(
                    plus,
                    convert_update_operand(operand(a, params)?).map_err(invalid)?,
                    convert_update_operand(operand(b, params)?).map_err(invalid)?,
                )
                .map_err(invalid)?;
                Action::Set(path(p), value)
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

/// The item of an INSERT: a `{...}` literal or a map parameter.
pub(super) fn insert_item(item: &Expr, params: &[AttributeValue]) -> Result<Item> {
    if !matches!(item, Expr::Map(_) | Expr::Param(_)) {
        return Err(Error::validation(
            "Unsupported format in item expression. Please use struct format {...} to express item values for insert statement.",
        ));
    }
    // Each attribute's value is a root of its own in DynamoDB's messages (`{'m': {'x': 1e126}}`
    // is refused `under root.x`; conformance partiqlGrammar.test.ts, run against AWS).
    if let Expr::Map(entries) = item {
        let mut map = Item::new();
        for (key, v) in entries {
            if map.insert(key.clone(), value(v, params, "root")?).is_some() {
                return Err(Error::validation(format!(
                    "Duplicate keys in tuple. Key: {key} under root"
                )));
            }
        }
        return Ok(map);
    }
    match value(item, params, "root")? {
        AttributeValue::M(map) => Ok(map),
        _ => Err(Error::validation(
            "Unsupported format in item expression. Please use struct format {...} to express item values for insert statement.",
        )),
    }
}

/// The ReturnValues a RETURNING clause asks for.
pub(super) fn return_values(returning: Option<Returning>) -> ReturnValues {
    match returning {
        None => ReturnValues::None,
        Some(Returning::AllOld) => ReturnValues::AllOld,
        Some(Returning::ModifiedOld) => ReturnValues::UpdatedOld,
        Some(Returning::AllNew) => ReturnValues::AllNew,
        Some(Returning::ModifiedNew) => ReturnValues::UpdatedNew,
    }
}

/// DynamoDB's message for an INSERT whose key exists.
pub(super) const DUPLICATE_ITEM: &str = "Duplicate primary key exists in table";

/// The error of an INSERT whose key exists.
pub(super) fn duplicate_item() -> Error {
    Error::DuplicateItem(DUPLICATE_ITEM.into())
}

/// A write statement as the item action it stands for, with its condition: an INSERT is a
/// put under "the key is new", an UPDATE an update under "the item exists" and the rest of
/// the WHERE, a DELETE a delete under the rest of the WHERE, and `EXISTS(SELECT ...)` a
/// condition check under "the item exists" and the rest of its WHERE.
pub(super) struct WriteAction {
    pub(super) table_name: String,
    pub(super) action: TransactAction,
    pub(super) condition: Option<Cond>,
}

/// The [`WriteAction`] of an INSERT, UPDATE, DELETE or EXISTS.
pub(super) fn write_action(
    store: &Store,
    statement: &Statement,
    params: &[AttributeValue],
) -> Result<WriteAction> {
    let (table, action, condition) = match statement {
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
            ..
        } => {
            let shape = key_shape(store, table, None)?;
            let (key, mut rest) = split_key(filter, &shape, params, INCOMPLETE_KEY)?;
            rest.insert(0, item_exists(&shape));
            let update = Some(update_actions(assignments, params)?);
            (table, TransactAction::Update { key, update }, all_of(rest))
        }
        Statement::Delete { table, filter, .. } => {
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
            // A bare read of the item checks nothing (conformance partiqlFunctions.test.ts).
            if rest.is_empty() {
                return Err(Error::validation(message));
            }
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
    Ok(WriteAction {
        table_name: table.clone(),
        action,
        condition,
    })
}

/// Runs an INSERT, UPDATE or DELETE as the item write it stands for.
pub(super) fn run_write(
    store: &Store,
    statement: &Statement,
    params: &[AttributeValue],
    return_old_on_condition_failure: bool,
) -> Result<StatementOutcome> {
    let returning = match statement {
        Statement::Update { returning, .. } | Statement::Delete { returning, .. } => *returning,
        Statement::Exists(_) => {
            return Err(Error::validation(
                "EXISTS can only be used in ExecuteTransaction write requests.",
            ));
        }
        _ => None,
    };
    let WriteAction {
        table_name,
        action,
        condition,
    } = write_action(store, statement, params)?;
    let condition = condition.map(Condition::from_tree);
    let outcome = match action {
        TransactAction::Put { item } => {
            let outcome = store.put_item(PutItemRequest {
                table_name: table_name.clone(),
                item,
                condition,
                return_values: ReturnValues::None,
                return_old_on_condition_failure: false,
            });
            match outcome {
                Err(Error::ConditionalCheckFailed { .. }) => return Err(duplicate_item()),
                other => other?,
            }
        }
        TransactAction::Update { key, update } => store.update_item(UpdateItemRequest {
            table_name: table_name.clone(),
            key,
            update,
            condition,
            return_values: return_values(returning),
            return_old_on_condition_failure,
        })?,
        TransactAction::Delete { key } => store.delete_item(DeleteItemRequest {
            table_name: table_name.clone(),
            key,
            condition,
            return_values: return_values(returning),
            return_old_on_condition_failure,
        })?,
        TransactAction::ConditionCheck { .. } => {
            return Err(Error::Internal("a condition check run as a write".into()));
        }
    };
    Ok(StatementOutcome {
        table_name,
        items: outcome.attributes.into_iter().collect(),
        consumed_capacity_units: outcome.consumed_capacity_units,
        index_units: outcome.index_units,
        write: true,
        ..Default::default()
    })
}

/// Refuses indexes in statements that must name one item of a table.
pub(super) fn refuse_index(select: &Select, message: &str) -> Result<()> {
    match select.index {
        Some(_) => Err(Error::validation(message)),
        None => Ok(()),
    }
}

/// ExecuteStatement: parses the statement, checks its parameters and runs it.
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
