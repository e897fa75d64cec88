//! tidemark-core: the item store.
//!
//! Owns tables, items, the expression language and the change log, all on one fjall database.
//!
//! - [`model`]: attribute values, numbers, items (serde in DynamoDB JSON shape).
//! - [`expr`]: the expression language: parse, substitute placeholders, evaluate, apply updates.
#![deny(missing_docs)]

mod error;
pub mod expr;
pub mod model;

pub use error::{Error, Result};
