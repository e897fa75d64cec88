//! [`Transactions`]: TransactWriteItems (and PartiQL's ExecuteTransaction, which becomes
//! one), with the table of ClientRequestTokens that makes a transaction idempotent.
//!
//! TransactWriteItems: up to 100 puts, updates, deletes and condition checks on distinct
//! items, all conditions checked and all writes applied in ONE atomic commit (one change
//! record per changed item), or none of them.
//!
//! Serializable with every other write: the transaction holds the key locks of all its items
//! (taken in one global order, so transactions never deadlock) from its reads to its commit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::changes::Cause;
use crate::error::CancellationReason;
use crate::expr::{Condition, UpdateExpression};
use crate::model::{Item, is_empty_key_value, item_size};
use crate::ops::update_item::{check_key_not_updated, updated_item};
use crate::ops::{check_attribute_names, check_item_size, index_write_units, write_units};
use crate::partiql::{TransactionOutcome, TransactionStatement};
use crate::storage::catalog::TableEntry;
use crate::storage::index::check_index_keys;
use crate::write::Cell;
use crate::write::{Decision, Target};
use crate::{Error, Result, Store};

/// Most actions in one transaction.
const MAX_ACTIONS: usize = 100;
/// Largest total size of the items a transaction writes.
const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// How long a ClientRequestToken makes a transaction idempotent.
const TOKEN_LIFETIME: Duration = Duration::from_secs(600);

/// What one action of a transaction does.
#[derive(Debug, Clone, PartialEq)]
pub enum TransactAction {
    /// Write a whole item.
    Put {
        /// The new item.
        item: Item,
    },
    /// Update (or create) an item.
    Update {
        /// The item's key.
        key: Item,
        /// The update.
        update: Option<UpdateExpression>,
    },
    /// Delete an item.
    Delete {
        /// The item's key.
        key: Item,
    },
    /// Only check the condition.
    ConditionCheck {
        /// The item's key.
        key: Item,
    },
}

/// One action of a transaction, on one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactWriteItem {
    /// Table name.
    pub table_name: String,
    /// What to do.
    pub action: TransactAction,
    /// Condition on the item as it is.
    pub condition: Option<Condition>,
    /// Report the old item in the cancellation reason when the condition fails.
    pub return_old_on_condition_failure: bool,
}

/// A TransactWriteItems request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransactWriteRequest {
    /// The actions, in request order.
    pub items: Vec<TransactWriteItem>,
    /// Makes the request idempotent for ten minutes.
    pub client_request_token: Option<String>,
}

/// The result of a transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransactWriteOutcome {
    /// Write capacity units per table (transactional writes cost twice).
    pub consumed_capacity_units: Vec<(String, f64)>,
}

/// Write transactions over the store.
#[derive(Debug)]
pub struct Transactions {
    store: Arc<Store>,
    /// Recently completed transactions by ClientRequestToken.
    done: Mutex<HashMap<String, (Instant, TransactWriteRequest, TransactWriteOutcome)>>,
}

fn cancelled(reasons: Vec<CancellationReason>) -> Error {
    Error::TransactionCanceled { reasons }
}

/// A transaction of `actions` actions cancelled before anything ran, because action `index`
/// does not fit its table (`message`): a ValidationError for it, no verdict on the others.
pub(crate) fn cancelled_by_validation(actions: usize, index: usize, message: String) -> Error {
    let mut reasons = vec![no_reason(); actions];
    if let Some(reason) = reasons.get_mut(index) {
        *reason = CancellationReason {
            code: "ValidationError".into(),
            message: Some(message),
            item: None,
        };
    }
    cancelled(reasons)
}

fn no_reason() -> CancellationReason {
    CancellationReason {
        code: "None".into(),
        message: None,
        item: None,
    }
}

impl Transactions {
    /// The transactions of `store`.
    pub fn new(store: Arc<Store>) -> Transactions {
        Transactions {
            store,
            done: Mutex::default(),
        }
    }

    /// Runs a transaction.
    ///
    /// # Errors
    /// Validation (size, duplicate items, bad keys), ResourceNotFound, TransactionCanceled
    /// (with a reason per action), IdempotentParameterMismatch, storage failures.
    pub fn transact_write_items(
        &self,
        request: TransactWriteRequest,
    ) -> Result<TransactWriteOutcome> {
        if request.items.is_empty() || request.items.len() > MAX_ACTIONS {
            return Err(Error::validation(format!(
                "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to {MAX_ACTIONS} and greater than or equal to 1"
            )));
        }
        if let Some(outcome) = self.earlier_outcome(&request)? {
            return Ok(outcome);
        }
        let targets = self.resolve(&request)?;
        let item_keys: Vec<Vec<u8>> = targets.iter().map(|t| t.key_bytes.clone()).collect();
        let written = self.store.write(targets, |targets, cells| {
            decide(&request.items, targets, cells)
        });
        let written = match written {
            Err(Error::ItemCollectionSizeLimitExceeded { item_key }) => {
                return Err(collection_limit_cancellation(&item_keys, &item_key));
            }
            other => other?,
        };
        let outcome = TransactWriteOutcome {
            consumed_capacity_units: written.value.into_iter().collect(),
        };
        if let Some(token) = &request.client_request_token {
            let entry = (Instant::now(), request.clone(), outcome.clone());
            self.done.lock().insert(token.clone(), entry);
        }
        Ok(outcome)
    }

    /// Runs up to 100 PartiQL statements as one transaction: all writes (INSERT, UPDATE,
    /// DELETE, `EXISTS(SELECT ...)`) or all key reads.
    ///
    /// # Errors
    /// Validation (syntax, mixed reads and writes, statements that are not single-item),
    /// ResourceNotFound, TransactionCanceled, IdempotentParameterMismatch, storage failures.
    pub fn execute_transaction(
        &self,
        statements: Vec<TransactionStatement>,
        client_request_token: Option<String>,
    ) -> Result<TransactionOutcome> {
        crate::partiql::transaction::execute_transaction(
            &self.store,
            self,
            statements,
            client_request_token,
        )
    }

    /// The outcome of the transaction `request`'s ClientRequestToken already ran, if it ran
    /// within the token's lifetime.
    ///
    /// # Errors
    /// IdempotentParameterMismatch when that transaction was another one.
    fn earlier_outcome(
        &self,
        request: &TransactWriteRequest,
    ) -> Result<Option<TransactWriteOutcome>> {
        let Some(token) = &request.client_request_token else {
            return Ok(None);
        };
        let mut done = self.done.lock();
        done.retain(|_, (at, _, _)| at.elapsed() < TOKEN_LIFETIME);
        match done.get(token) {
            Some((_, earlier, outcome)) if earlier == request => Ok(Some(outcome.clone())),
            Some(_) => Err(Error::IdempotentParameterMismatch(
                "The request uses the same client token as a previous, but non-identical request."
                    .into(),
            )),
            None => Ok(None),
        }
    }

    /// Resolves every action's table and key before anything is touched: the write's targets,
    /// in request order.
    ///
    /// # Errors
    /// ResourceNotFound; TransactionCanceled with a ValidationError for an action whose item
    /// or key does not fit its table; Validation for two actions on one item or too many
    /// bytes.
    fn resolve(&self, request: &TransactWriteRequest) -> Result<Vec<Target>> {
        let mut resolved = Vec::with_capacity(request.items.len());
        let mut seen = HashSet::new();
        let mut total_bytes = 0;
        for (index, action) in request.items.iter().enumerate() {
            let table = self.store.item_table(&action.table_name)?;
            if let TransactAction::Put { item } = &action.action {
                total_bytes += item_size(item);
            }
            // Like DynamoDB, an action whose item or key does not fit the schema cancels the
            // transaction with a ValidationError for it (and no verdict on the others).
            let key = match action_key(&table, &action.action) {
                Ok(key) => key,
                // An empty key value is refused outright, as DynamoDB checks values before
                // it looks at the schema.
                Err(e @ Error::Validation(_)) if is_empty_key_value(&e) => return Err(e),
                Err(Error::Validation(message)) => {
                    return Err(cancelled_by_validation(request.items.len(), index, message));
                }
                Err(other) => return Err(other),
            };
            let target = Target::new(table, key, Cause::Request);
            if !seen.insert(target.key_bytes.clone()) {
                return Err(Error::validation(
                    "Transaction request cannot include multiple operations on one item",
                ));
            }
            resolved.push(target);
        }
        if total_bytes > MAX_TRANSACTION_BYTES {
            return Err(Error::validation(
                "Transaction request size cannot exceed 4 MB (the aggregate size of the items written)",
            ));
        }
        Ok(resolved)
    }
}

/// The key of the item `action` touches, checked against `table`'s schema (and a Put's item
/// against the item rules).
fn action_key(table: &TableEntry, action: &TransactAction) -> Result<Item> {
    match action {
        TransactAction::Put { item } => check_attribute_names(item)
            .and_then(|()| check_item_size(item))
            .and_then(|()| table.shape.key_of_item(item)),
        TransactAction::Update { key, update } => table
            .shape
            .check_key(key)
            .and_then(|()| check_key_not_updated(&table.shape, update.as_ref()))
            .map(|()| key.clone()),
        TransactAction::Delete { key } | TransactAction::ConditionCheck { key } => {
            table.shape.check_key(key).map(|()| key.clone())
        }
    }
}

/// Decides every action from its item's cell, under the transaction's key locks: what each
/// item becomes and the write units per table, or the cancellation with a reason per action
/// when any condition fails or any update is invalid.
fn decide(
    actions: &[TransactWriteItem],
    targets: &[Target],
    cells: &[Cell],
) -> Result<(Vec<Decision>, HashMap<String, f64>)> {
    let mut reasons = Vec::with_capacity(cells.len());
    let mut decisions = Vec::with_capacity(cells.len());
    let mut units: HashMap<String, f64> = HashMap::new();
    for ((action, target), cell) in actions.iter().zip(targets).zip(cells) {
        let old = cell.item.as_ref();
        let passes = match &action.condition {
            Some(condition) => condition.evaluate(old)?,
            None => true,
        };
        if !passes {
            reasons.push(CancellationReason {
                code: "ConditionalCheckFailed".into(),
                message: Some("The conditional request failed".into()),
                item: if action.return_old_on_condition_failure {
                    old.cloned()
                } else {
                    None
                },
            });
            continue;
        }
        let decision = match &action.action {
            TransactAction::Put { item } => Decision::Write(Some(item.clone())),
            TransactAction::Delete { .. } => Decision::Write(None),
            TransactAction::ConditionCheck { .. } => Decision::Keep,
            TransactAction::Update { update, .. } => {
                let key = target.keys.as_ref().ok_or_else(|| {
                    Error::Internal("a transaction action without its key".into())
                })?;
                match updated_item(old, key, update.as_ref()) {
                    Ok((_, true)) => Decision::Keep,
                    Ok((new, false)) => Decision::Write(Some(new)),
                    Err(Error::Validation(message)) => {
                        reasons.push(CancellationReason {
                            code: "ValidationError".into(),
                            message: Some(message),
                            item: None,
                        });
                        continue;
                    }
                    Err(other) => return Err(other),
                }
            }
        };
        if let Decision::Write(Some(new)) = &decision {
            check_index_keys(&target.table.indexes(), new)?;
        }
        reasons.push(no_reason());
        *units.entry(action.table_name.clone()).or_default() +=
            action_units(&target.table, old, &decision);
        decisions.push(decision);
    }
    if reasons.iter().any(|r| r.code != "None") {
        return Err(cancelled(reasons));
    }
    Ok((decisions, units))
}

/// Write units of one action (transactional writes cost twice): the item's and its index
/// entries', as in a single write; an action that keeps its item changes no entry.
fn action_units(table: &TableEntry, old: Option<&Item>, decision: &Decision) -> f64 {
    let (new, after) = match decision {
        Decision::Write(new) => (new.as_ref(), new.as_ref()),
        Decision::Keep => (None, old),
    };
    let index_units: f64 = index_write_units(table, old, after)
        .iter()
        .map(|u| u.units)
        .sum();
    2.0 * (write_units(old, new) + index_units)
}

/// The commit refuses a write that takes an item collection past its limit; like DynamoDB,
/// the transaction is cancelled with that reason on the action of the item `item_key`.
fn collection_limit_cancellation(item_keys: &[Vec<u8>], item_key: &[u8]) -> Error {
    let mut reasons = vec![no_reason(); item_keys.len()];
    if let Some(reason) = item_keys
        .iter()
        .position(|k| k.as_slice() == item_key)
        .and_then(|i| reasons.get_mut(i))
    {
        *reason = CancellationReason {
            code: "ItemCollectionSizeLimitExceeded".into(),
            message: Some(crate::error::ITEM_COLLECTION_LIMIT_MESSAGE.into()),
            item: None,
        };
    }
    cancelled(reasons)
}
