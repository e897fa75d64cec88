//! A Query's key condition as storage turns it into a key range: the partition key's values
//! and at most one condition on the sort key. The expression language (`tidemark_core::expr`)
//! parses and checks it; storage only reads it.

use crate::model::AttributeValue;

/// A Query's key condition, checked against the key schema of the table or index queried.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyCondition {
    /// The partition key's value (its name is the schema's hash key).
    pub partition_value: AttributeValue,
    /// The values of a multi-attribute partition key's further attributes, in schema order.
    pub partition_rest: Vec<AttributeValue>,
    /// The values a multi-attribute sort key's leading attributes equal, in schema order;
    /// `sort` then applies to the attribute after them.
    pub sort_prefix: Vec<AttributeValue>,
    /// The condition on the sort key (on its next attribute after `sort_prefix`), if any.
    pub sort: Option<SortKeyCondition>,
}

/// A condition on the sort key.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKeyCondition {
    /// `sk = v`
    Eq(AttributeValue),
    /// `sk < v`
    Lt(AttributeValue),
    /// `sk <= v`
    Le(AttributeValue),
    /// `sk > v`
    Gt(AttributeValue),
    /// `sk >= v`
    Ge(AttributeValue),
    /// `sk BETWEEN low AND high` (bounds included).
    Between(AttributeValue, AttributeValue),
    /// `begins_with(sk, prefix)`
    BeginsWith(AttributeValue),
}
