//! The Kinesis streaming destination calls (Enable-, Disable-, Describe- and
//! UpdateKinesisStreamingDestination), carried out as Kafka publishing in the `kds` format to
//! the topic the stream ARN names (`tidemark_streams::publish::kinesis`). They run as async
//! tasks because turning publishing on or off starts or stops a publisher.

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use tidemark_streams::publish::kinesis::{self, Destination, Precision};

use super::common::Violations;
use crate::server::AppState;
use crate::server::error::ApiError;

/// Shortest and longest Kinesis stream ARN DynamoDB takes.
const STREAM_ARN_LENGTH: (usize, usize) = (37, 1024);
/// Shortest and longest table name (or table ARN) these calls take.
const TABLE_NAME_LENGTH: (usize, usize) = (1, 1024);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DestinationInput {
    table_name: Option<String>,
    stream_arn: Option<String>,
    enable_kinesis_streaming_configuration: Option<StreamingConfiguration>,
    update_kinesis_streaming_configuration: Option<StreamingConfiguration>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamingConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    approximate_creation_date_time_precision: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DestinationOutput {
    table_name: String,
    stream_arn: String,
    destination_status: kinesis::DestinationStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    enable_kinesis_streaming_configuration: Option<StreamingConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    update_kinesis_streaming_configuration: Option<StreamingConfiguration>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeOutput {
    table_name: String,
    kinesis_data_stream_destinations: Vec<WireDestination>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireDestination {
    stream_arn: String,
    destination_status: kinesis::DestinationStatus,
    destination_status_description: String,
    approximate_creation_date_time_precision: &'static str,
}

/// A request's table and stream, checked as DynamoDB checks them, every violation reported.
struct Checked {
    table_name: String,
    stream_arn: String,
    precision: Option<Precision>,
}

/// Which configuration member a request carries.
#[derive(Debug, Clone, Copy)]
enum Configuration {
    Enable,
    Update,
}

impl Configuration {
    fn member(self) -> &'static str {
        match self {
            Configuration::Enable => "enableKinesisStreamingConfiguration",
            Configuration::Update => "updateKinesisStreamingConfiguration",
        }
    }
}

fn check_table_name(violations: &mut Violations, table_name: Option<&String>) {
    match table_name {
        None => violations.null("tableName"),
        Some(name) => {
            let (min, max) = TABLE_NAME_LENGTH;
            violations.length(name, "tableName", min, max);
        }
    }
}

/// Checks the members of a destination request.
fn check(input: DestinationInput, configuration: Configuration) -> Result<Checked, ApiError> {
    let mut violations = Violations::default();
    check_table_name(&mut violations, input.table_name.as_ref());
    match &input.stream_arn {
        None => violations.null("streamArn"),
        Some(arn) => {
            let (min, max) = STREAM_ARN_LENGTH;
            violations.length(arn, "streamArn", min, max);
        }
    }
    let sent = match configuration {
        Configuration::Enable => input.enable_kinesis_streaming_configuration,
        Configuration::Update => input.update_kinesis_streaming_configuration,
    };
    let precision = match sent.and_then(|c| c.approximate_creation_date_time_precision) {
        None => None,
        Some(name) => {
            let field = format!(
                "{}.approximateCreationDateTimePrecision",
                configuration.member()
            );
            violations.one_of(&name, &field, &["MICROSECOND", "MILLISECOND"]);
            Precision::parse(&name)
        }
    };
    violations.check()?;
    match (input.table_name, input.stream_arn) {
        (Some(table_name), Some(stream_arn)) => Ok(Checked {
            table_name,
            stream_arn,
            precision,
        }),
        // `check` above refuses a missing member.
        _ => Err(ApiError::internal("a checked request lost a member")),
    }
}

fn parse(body: &[u8]) -> Result<DestinationInput, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::from_json(&e))
}

fn encode<T: Serialize>(output: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(output).map_err(|e| ApiError::internal(e.to_string()))
}

/// Runs `change` on the blocking pool, then starts or stops publishers to match.
async fn change_publishing<T: Send + 'static>(
    state: &AppState,
    change: impl FnOnce(&tidemark_core::Store) -> tidemark_streams::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.engine.store.clone();
    let outcome = tokio::task::spawn_blocking(move || change(&store))
        .await
        .map_err(|e| ApiError::internal(format!("operation failed: {e}")))??;
    state.publishers.reconcile()?;
    Ok(outcome)
}

fn answer(
    table_name: String,
    destination: Destination,
    configuration: Configuration,
) -> Result<Vec<u8>, ApiError> {
    let sent = Some(StreamingConfiguration {
        approximate_creation_date_time_precision: Some(destination.precision.name().to_string()),
    });
    let (enable, update) = match configuration {
        Configuration::Enable => (sent, None),
        Configuration::Update => (None, sent),
    };
    encode(&DestinationOutput {
        table_name,
        stream_arn: destination.stream_arn,
        destination_status: destination.status,
        enable_kinesis_streaming_configuration: enable,
        update_kinesis_streaming_configuration: update,
    })
}

pub(crate) async fn enable(state: &AppState, body: &Bytes) -> Result<Vec<u8>, ApiError> {
    let request = check(parse(body)?, Configuration::Enable)?;
    let Some(kafka) = state.publishers.kafka() else {
        return Err(ApiError::validation(
            "Kinesis streaming destinations publish to Kafka, and no Kafka cluster is configured: start the node with --kafka-brokers (or KAFKA_BROKERS)",
        ));
    };
    let topics = kafka.topics;
    let precision = request.precision.unwrap_or_default();
    let (table, arn) = (request.table_name.clone(), request.stream_arn);
    let destination = change_publishing(state, move |store| {
        kinesis::enable(store, &table, &arn, precision, topics)
    })
    .await?;
    answer(request.table_name, destination, Configuration::Enable)
}

pub(crate) async fn disable(state: &AppState, body: &Bytes) -> Result<Vec<u8>, ApiError> {
    let request = check(parse(body)?, Configuration::Enable)?;
    let (table, arn) = (request.table_name.clone(), request.stream_arn);
    let destination =
        change_publishing(state, move |store| kinesis::disable(store, &table, &arn)).await?;
    answer(request.table_name, destination, Configuration::Enable)
}

pub(crate) async fn update(state: &AppState, body: &Bytes) -> Result<Vec<u8>, ApiError> {
    let request = check(parse(body)?, Configuration::Update)?;
    // Nothing else can be updated: a request without a precision changes nothing.
    let precision = request.precision.ok_or_else(|| {
        ApiError::validation(
            "UpdateKinesisStreamingConfiguration.ApproximateCreationDateTimePrecision must be given: it is the only setting to update",
        )
    })?;
    let (table, arn) = (request.table_name.clone(), request.stream_arn);
    let destination = change_publishing(state, move |store| {
        kinesis::update(store, &table, &arn, precision)
    })
    .await?;
    answer(request.table_name, destination, Configuration::Update)
}

pub(crate) async fn describe(state: &AppState, body: &Bytes) -> Result<Vec<u8>, ApiError> {
    let input = parse(body)?;
    let mut violations = Violations::default();
    check_table_name(&mut violations, input.table_name.as_ref());
    violations.check()?;
    let table_name = input.table_name.unwrap_or_default();
    let store = state.engine.store.clone();
    let table = table_name.clone();
    let destinations = tokio::task::spawn_blocking(move || kinesis::destinations(&store, &table))
        .await
        .map_err(|e| ApiError::internal(format!("operation failed: {e}")))??;
    encode(&DescribeOutput {
        table_name,
        kinesis_data_stream_destinations: destinations
            .into_iter()
            .map(|d| WireDestination {
                destination_status_description: match d.status {
                    kinesis::DestinationStatus::Active => format!(
                        "Publishing to Kafka topic {}",
                        kinesis::topic_of(&d.stream_arn).unwrap_or_default()
                    ),
                    _ => "Publishing is off".to_string(),
                },
                stream_arn: d.stream_arn,
                destination_status: d.status,
                approximate_creation_date_time_precision: d.precision.name(),
            })
            .collect(),
    })
}
