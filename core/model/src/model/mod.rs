//! The data model shared by every crate: attribute values, numbers, items and keys, with serde
//! in DynamoDB JSON shape (stream records, Kafka payloads and replication all carry images).

mod number;
mod reading;
mod schema;
mod table_id;
mod value;

pub use number::{MAX_DIGITS, Number, NumberError, ValueLayer};
pub use reading::{Nesting, RequestReading, deferred_nesting_fault, reading_deep};
pub use schema::{
    AttributeDefinition, GlobalSecondaryIndex, KeyAttribute, KeySchemaElement, KeyShape,
    LocalSecondaryIndex, MAX_HASH_KEY_BYTES, MAX_RANGE_KEY_BYTES, ON_DEMAND_WARM_THROUGHPUT,
    PitrSettings, Projection, ProvisionedThroughput, RestoreSource, RestoreSummary, ScalarType,
    StreamSpecification, TableDefinition, Tag, is_empty_key_value, undefined_key_attributes,
};
pub use table_id::TableId;
pub use value::{
    AttributeValue, Item, MAX_NESTING, NESTED_TOO_DEEP, VALIDATION_ERROR_MARKER, ValueType,
    item_size,
};
