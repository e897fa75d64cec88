//! Exports and imports: ExportTableToPointInTime, DescribeExport, ListExports, ImportTable,
//! DescribeImport, ListImports. `S3Bucket` names a folder under the node's export root.

use axum::body::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tidemark_streams::transfer::{
    ExportRecord, ExportRequest, ImportRecord, ImportRequest, JobStatus, Transfers, page,
};

use super::common::{required, seconds};
use super::create_table::CreateTableInput;
use crate::server::AppState;
use crate::server::error::ApiError;

type TransferOperation<I, O> = fn(&std::sync::Arc<Transfers>, I) -> Result<O, ApiError>;

/// Decodes `I`, runs `f` on the blocking pool (it reads the catalog and may start a job),
/// encodes its output.
pub(crate) async fn on_pool<I, O>(
    state: &AppState,
    body: &Bytes,
    f: TransferOperation<I, O>,
) -> Result<Vec<u8>, ApiError>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
{
    let input: I = serde_json::from_slice(body).map_err(|e| ApiError::from_json(&e))?;
    let transfers = state.transfers.clone();
    let output = tokio::task::spawn_blocking(move || f(&transfers, input))
        .await
        .map_err(|e| ApiError::internal(format!("operation failed: {e}")))??;
    serde_json::to_vec(&output).map_err(|e| ApiError::internal(e.to_string()))
}

fn status(status: JobStatus) -> &'static str {
    match status {
        JobStatus::InProgress => "IN_PROGRESS",
        JobStatus::Completed => "COMPLETED",
        JobStatus::Failed => "FAILED",
    }
}

/// A page size between 1 and 25 (default 25).
fn page_size(value: Option<i64>, field: &str) -> Result<usize, ApiError> {
    match value {
        None => Ok(25),
        Some(n) if (1..=25).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{n}' at '{field}' failed to satisfy constraint: Member must have value between 1 and 25"
        ))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ExportInput {
    table_arn: Option<String>,
    export_time: Option<f64>,
    client_token: Option<String>,
    s3_bucket: Option<String>,
    s3_prefix: Option<String>,
    export_format: Option<String>,
    export_type: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ExportOutput {
    export_description: ExportDescription,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ExportDescription {
    export_arn: String,
    export_status: &'static str,
    start_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    export_manifest: Option<String>,
    table_arn: String,
    table_id: String,
    export_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token: Option<String>,
    s3_bucket: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    s3_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_message: Option<String>,
    export_format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    billed_size_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_count: Option<u64>,
}

impl From<ExportRecord> for ExportDescription {
    fn from(e: ExportRecord) -> Self {
        let done = e.export_status == JobStatus::Completed;
        ExportDescription {
            export_arn: e.export_arn,
            export_status: status(e.export_status),
            start_time: seconds(e.start_millis),
            end_time: e.end_millis.map(seconds),
            export_manifest: e.export_manifest,
            table_arn: e.table_arn,
            table_id: e.table_id,
            export_time: seconds(e.export_time_millis),
            client_token: e.client_token,
            s3_bucket: e.s3_bucket,
            s3_prefix: e.s3_prefix,
            failure_code: e.failure_message.as_ref().map(|_| "ExportFailed"),
            failure_message: e.failure_message,
            export_format: e.export_format,
            billed_size_bytes: done.then_some(e.billed_size_bytes),
            item_count: done.then_some(e.item_count),
        }
    }
}

pub(crate) fn export_table(
    transfers: &std::sync::Arc<Transfers>,
    input: ExportInput,
) -> Result<ExportOutput, ApiError> {
    let record = transfers.export(ExportRequest {
        table_arn: required(input.table_arn, "tableArn")?,
        export_time_millis: input.export_time.map(|s| (s * 1000.0).round() as u64),
        s3_bucket: required(input.s3_bucket, "s3Bucket")?,
        s3_prefix: input.s3_prefix,
        export_format: input.export_format,
        export_type: input.export_type,
        client_token: input.client_token,
    })?;
    Ok(ExportOutput {
        export_description: record.into(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ExportArnInput {
    export_arn: Option<String>,
}

pub(crate) fn describe_export(
    transfers: &std::sync::Arc<Transfers>,
    input: ExportArnInput,
) -> Result<ExportOutput, ApiError> {
    let arn = required(input.export_arn, "exportArn")?;
    Ok(ExportOutput {
        export_description: transfers.describe_export(&arn)?.into(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListExportsInput {
    table_arn: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListExportsOutput {
    export_summaries: Vec<ExportSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ExportSummary {
    export_arn: String,
    export_status: &'static str,
    export_type: &'static str,
}

pub(crate) fn list_exports(
    transfers: &std::sync::Arc<Transfers>,
    input: ListExportsInput,
) -> Result<ListExportsOutput, ApiError> {
    let limit = page_size(input.max_results, "maxResults")?;
    let mut exports = transfers.exports()?;
    exports.sort_by(|a, b| a.export_arn.cmp(&b.export_arn));
    let (page, next_token) = page(
        &exports,
        |e| e.export_arn.as_str(),
        |e| e.table_arn.as_str(),
        input.table_arn.as_deref(),
        limit,
        input.next_token.as_deref(),
    );
    Ok(ListExportsOutput {
        export_summaries: page
            .into_iter()
            .map(|e| ExportSummary {
                export_arn: e.export_arn,
                export_status: status(e.export_status),
                export_type: "FULL_EXPORT",
            })
            .collect(),
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ImportInput {
    client_token: Option<String>,
    s3_bucket_source: Option<BucketSource>,
    input_format: Option<String>,
    input_compression_type: Option<String>,
    /// The shape of CreateTable's input (ImportTable takes a subset of its members).
    table_creation_parameters: Option<CreateTableInput>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct BucketSource {
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    #[serde(rename = "S3KeyPrefix", skip_serializing_if = "Option::is_none")]
    s3_key_prefix: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ImportOutput {
    import_table_description: ImportDescription,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ImportDescription {
    import_arn: String,
    import_status: &'static str,
    table_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token: Option<String>,
    #[serde(rename = "S3BucketSource")]
    s3_bucket_source: BucketSource,
    error_count: u64,
    input_format: String,
    input_compression_type: String,
    start_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<f64>,
    processed_item_count: u64,
    imported_item_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_message: Option<String>,
}

impl From<ImportRecord> for ImportDescription {
    fn from(i: ImportRecord) -> Self {
        ImportDescription {
            import_arn: i.import_arn,
            import_status: status(i.import_status),
            table_arn: i.table_arn,
            client_token: i.client_token,
            s3_bucket_source: BucketSource {
                s3_bucket: Some(i.s3_bucket),
                s3_key_prefix: i.s3_key_prefix,
            },
            error_count: 0,
            input_format: i.input_format,
            input_compression_type: i.input_compression_type,
            start_time: seconds(i.start_millis),
            end_time: i.end_millis.map(seconds),
            processed_item_count: i.processed_item_count,
            imported_item_count: i.imported_item_count,
            failure_code: i.failure_message.as_ref().map(|_| "ImportFailed"),
            failure_message: i.failure_message,
        }
    }
}

pub(crate) fn import_table(
    transfers: &std::sync::Arc<Transfers>,
    input: ImportInput,
) -> Result<ImportOutput, ApiError> {
    let source = required(input.s3_bucket_source, "s3BucketSource")?;
    let table = required(input.table_creation_parameters, "tableCreationParameters")?;
    let record = transfers.import(ImportRequest {
        s3_bucket: required(source.s3_bucket, "s3BucketSource.s3Bucket")?,
        s3_key_prefix: source.s3_key_prefix,
        input_format: required(input.input_format, "inputFormat")?,
        input_compression_type: input.input_compression_type,
        table: table.into_request()?,
        client_token: input.client_token,
    })?;
    Ok(ImportOutput {
        import_table_description: record.into(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ImportArnInput {
    import_arn: Option<String>,
}

pub(crate) fn describe_import(
    transfers: &std::sync::Arc<Transfers>,
    input: ImportArnInput,
) -> Result<ImportOutput, ApiError> {
    let arn = required(input.import_arn, "importArn")?;
    Ok(ImportOutput {
        import_table_description: transfers.describe_import(&arn)?.into(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListImportsInput {
    table_arn: Option<String>,
    page_size: Option<i64>,
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListImportsOutput {
    import_summary_list: Vec<ImportSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ImportSummary {
    import_arn: String,
    import_status: &'static str,
    table_arn: String,
    #[serde(rename = "S3BucketSource")]
    s3_bucket_source: BucketSource,
    input_format: String,
    start_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<f64>,
}

pub(crate) fn list_imports(
    transfers: &std::sync::Arc<Transfers>,
    input: ListImportsInput,
) -> Result<ListImportsOutput, ApiError> {
    let limit = page_size(input.page_size, "pageSize")?;
    let mut imports = transfers.imports()?;
    imports.sort_by(|a, b| a.import_arn.cmp(&b.import_arn));
    let (page, next_token) = page(
        &imports,
        |i| i.import_arn.as_str(),
        |i| i.table_arn.as_str(),
        input.table_arn.as_deref(),
        limit,
        input.next_token.as_deref(),
    );
    Ok(ListImportsOutput {
        import_summary_list: page
            .into_iter()
            .map(|i| ImportSummary {
                import_status: status(i.import_status),
                table_arn: i.table_arn,
                s3_bucket_source: BucketSource {
                    s3_bucket: Some(i.s3_bucket),
                    s3_key_prefix: i.s3_key_prefix,
                },
                input_format: i.input_format,
                start_time: seconds(i.start_millis),
                end_time: i.end_millis.map(seconds),
                import_arn: i.import_arn,
            })
            .collect(),
        next_token,
    })
}
