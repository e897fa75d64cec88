//! Wire types: what travels over HTTP, one file per operation, and their conversion to and
//! from core's typed requests and outcomes.

pub(crate) mod dynamodb;
pub(crate) mod streams;
