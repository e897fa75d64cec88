//! TransactWriteItems: up to 100 puts, updates, deletes and condition checks on distinct
//! items, all conditions checked and all writes applied in ONE atomic commit (one change
//! record per changed item), or none of them.
//!
//! Serializable with every other write: the transaction holds the key locks of all its items
//! (taken in one global order, so transactions never deadlock) from its reads to its commit.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::update_item::{check_key_not_updated, updated_item};
use super::{check_attribute_names, check_item_size, index_write_units, write_units};
use crate::changes::Cause;
use crate::error::CancellationReason;
use crate::expr::{Condition, UpdateExpression};
use crate::model::{Item, item_size};
use crate::storage::index::check_index_keys;
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

/// Recently completed transactions by ClientRequestToken.
#[derive(Debug, Default)]
pub(crate) struct TransactionTokens {
    done: Mutex<HashMap<String, (Instant, TransactWriteRequest, TransactWriteOutcome)>>,
}

fn cancelled(reasons: Vec<CancellationReason>) -> Error {
    Error::TransactionCanceled { reasons }
}

fn no_reason() -> CancellationReason {
    CancellationReason {
        code: "None".into(),
        message: None,
        item: None,
    }
}

impl Store {
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
        if let Some(token) = &request.client_request_token {
            let mut done = self.transaction_tokens.done.lock();
            done.retain(|_, (at, _, _)| at.elapsed() < TOKEN_LIFETIME);
            if let Some((_, earlier, outcome)) = done.get(token) {
                if *earlier == request {
                    return Ok(outcome.clone());
                }
                return Err(Error::IdempotentParameterMismatch(
                    "The request uses the same client token as a previous, but non-identical request.".into(),
                ));
            }
        }

        // Resolve every action's table and key before touching anything.
        let mut resolved = Vec::with_capacity(request.items.len());
        let mut seen = HashSet::new();
        let mut total_bytes = 0;
        for (index, action) in request.items.iter().enumerate() {
            let table = self.table(&action.table_name)?;
            let checked = match &action.action {
                TransactAction::Put { item } => {
                    total_bytes += item_size(item);
                    check_attribute_names(item)
                        .and_then(|()| check_item_size(item))
                        .and_then(|()| table.shape.key_of_item(item))
                }
                TransactAction::Update { key, update } => table
                    .shape
                    .check_key(key)
                    .and_then(|()| check_key_not_updated(&table.shape, update.as_ref()))
                    .map(|()| key.clone()),
                TransactAction::Delete { key } | TransactAction::ConditionCheck { key } => {
                    table.shape.check_key(key).map(|()| key.clone())
                }
            };
            // Like DynamoDB, an action whose item or key does not fit the schema cancels the
            // transaction with a ValidationError for it (and no verdict on the others).
            let key = match checked {
                Ok(key) => key,
                Err(Error::Validation(message)) => {
                    let mut reasons = vec![no_reason(); request.items.len()];
                    if let Some(reason) = reasons.get_mut(index) {
                        *reason = CancellationReason {
                            code: "ValidationError".into(),
                            message: Some(message),
                            item: None,
                        };
                    }
                    return Err(cancelled(reasons));
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

        let item_keys: Vec<Vec<u8>> = resolved.iter().map(|t| t.key_bytes.clone()).collect();
        let written = self.write(resolved, |targets, cells| {
            let mut reasons = Vec::with_capacity(cells.len());
            let mut decisions = Vec::with_capacity(cells.len());
            let mut units: HashMap<String, f64> = HashMap::new();
            for ((action, target), cell) in request.items.iter().zip(targets).zip(cells) {
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
                let new = match &decision {
                    Decision::Write(new) => new.as_ref(),
                    Decision::Keep => None,
                };
                // Index entries cost as in a single write; an action that keeps its item
                // changes no entry.
                let after = match &decision {
                    Decision::Write(new) => new.as_ref(),
                    Decision::Keep => old,
                };
                let index_units: f64 = index_write_units(&target.table, old, after)
                    .iter()
                    .map(|u| u.units)
                    .sum();
                *units.entry(action.table_name.clone()).or_default() +=
                    2.0 * (write_units(old, new) + index_units);
                decisions.push(decision);
            }
            if reasons.iter().any(|r| r.code != "None") {
                return Err(cancelled(reasons));
            }
            Ok((decisions, units))
        });
        // The commit refuses a write that takes an item collection past its limit; like
        // DynamoDB, the transaction is cancelled with that reason on the action's item.
        let written = match written {
            Err(Error::ItemCollectionSizeLimitExceeded { item_key }) => {
                let mut reasons = vec![no_reason(); request.items.len()];
                if let Some(reason) = item_keys
                    .iter()
                    .position(|k| *k == item_key)
                    .and_then(|i| reasons.get_mut(i))
                {
                    *reason = CancellationReason {
                        code: "ItemCollectionSizeLimitExceeded".into(),
                        message: Some(crate::storage::collections::LIMIT_MESSAGE.into()),
                        item: None,
                    };
                }
                return Err(cancelled(reasons));
            }
            other => other?,
        };
        let outcome = TransactWriteOutcome {
            consumed_capacity_units: written.value.into_iter().collect(),
        };
        if let Some(token) = &request.client_request_token {
            let entry = (Instant::now(), request.clone(), outcome.clone());
            self.transaction_tokens
                .done
                .lock()
                .insert(token.clone(), entry);
        }
        Ok(outcome)
    }
}
