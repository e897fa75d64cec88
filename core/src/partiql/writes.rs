//! INSERT, UPDATE and DELETE: a PutItem under "the key is new", an UpdateItem under "the item
//! exists" and the rest of the WHERE, a DeleteItem under the rest of the WHERE; and
//! ExecuteStatement, which runs one statement of any kind.

use super::bind::{
    all_of, is_value, item_exists, key_shape, operand, parse_with, path, split_key, value,
};
use super::parser::{Assignment, Expr, Returning, Select, Statement};
use super::select::run_select;
use super::{INCOMPLETE_KEY, StatementOutcome, StatementRequest};
use crate::expr::{
    Action, Cond, Condition, Path, SetValue, UpdateExpression, arithmetic, check_disjoint,
    convert_update_operand,
};
use crate::model::{AttributeValue, Item};
use crate::ops::{DeleteItemRequest, PutItemRequest, ReturnValues, UpdateItemRequest};
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

/// The error of an INSERT whose key exists.
pub(super) fn duplicate_item() -> Error {
    Error::DuplicateItem("Duplicate primary key exists in table".into())
}

/// Runs an INSERT, UPDATE or DELETE as the item write it stands for.
pub(super) fn run_write(
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
