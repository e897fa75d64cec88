//! Exports and imports in the layout of DynamoDB's export to S3 ([`aws`]), on local folders
//! standing for buckets under the node's export root (`--export-root`): a request's
//! `S3Bucket` names a folder directly under the root, its prefix a folder below that.
//!
//! ExportTableToPointInTime reads the table as of the instant from a snapshot taken during
//! the call (core's [`Backups::table_as_of`](tidemark_core::Backups::table_as_of)) and writes the files on a thread of its own; the
//! record (IN_PROGRESS, then COMPLETED or FAILED) is kept in the store. An export a restart
//! interrupts is FAILED (its partial folder removed); run it again.
//!
//! [`kafka`] rebuilds a table as of an instant from a Kafka topic Tidemark published (for
//! `tidemark restore --from-kafka`).
//!
//! ImportTable creates its table CREATING ([`Backups::create_importing_table`](tidemark_core::Backups::create_importing_table)) and fills it on
//! a thread of its own; a restart starts an unfinished import over from its files; an import
//! whose files cannot be read fails, and its table is dropped: a half-imported table is never
//! ACTIVE.

pub mod aws;
pub mod ion;
pub mod kafka;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tidemark_core::Backups;
use tidemark_core::Store;
use tidemark_core::ops::CreateTableRequest;
use tidemark_core::restore::RestorePoint;

/// Why an export or import request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed, or asks for what this node does not do.
    #[error("{0}")]
    Validation(String),
    /// No export has this ARN.
    #[error("{0}")]
    ExportNotFound(String),
    /// No import has this ARN.
    #[error("{0}")]
    ImportNotFound(String),
    /// The export time is outside the table's restorable window.
    #[error("{0}")]
    InvalidExportTime(String),
    /// Reading or writing the files failed.
    #[error("{0}")]
    Io(String),
    /// The files are not DynamoDB JSON items.
    #[error("{0}")]
    Invalid(String),
    /// Reading a Kafka topic failed.
    #[error("Kafka: {0}")]
    Kafka(#[from] tidemark_kafka::Error),
    /// The store failed or refused.
    #[error(transparent)]
    Core(#[from] tidemark_core::Error),
}

/// Result of an export or import.
pub type Result<T> = std::result::Result<T, Error>;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Running.
    InProgress,
    /// Done.
    Completed,
    /// Given up; see the failure message.
    Failed,
}

/// An export, as DescribeExport shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExportRecord {
    /// `<table ARN>/export/<id>`.
    pub export_arn: String,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub export_status: JobStatus,
    /// The table's ARN.
    pub table_arn: String,
    /// The table's id.
    pub table_id: String,
    /// The instant exported, milliseconds.
    pub export_time_millis: u64,
    /// When the export started.
    pub start_millis: u64,
    /// When it ended.
    pub end_millis: Option<u64>,
    /// The bucket folder.
    pub s3_bucket: String,
    /// The prefix in it.
    pub s3_prefix: Option<String>,
    /// `DYNAMODB_JSON` or `ION`.
    #[serde(default = "dynamodb_json")]
    pub export_format: String,
    /// Items exported.
    pub item_count: u64,
    /// Their size.
    pub billed_size_bytes: u64,
    /// Key of `manifest-summary.json`, once written.
    pub export_manifest: Option<String>,
    /// Why it failed.
    pub failure_message: Option<String>,
    /// The caller's idempotency token.
    pub client_token: Option<String>,
}

/// An import, as DescribeImport shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportRecord {
    /// `<table ARN>/import/<id>`.
    pub import_arn: String,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub import_status: JobStatus,
    /// The table created.
    pub table_arn: String,
    /// Its name.
    pub table_name: String,
    /// The bucket folder read.
    pub s3_bucket: String,
    /// The prefix in it.
    pub s3_key_prefix: Option<String>,
    /// `DYNAMODB_JSON` or `ION`.
    pub input_format: String,
    /// `GZIP` or `NONE` (each file is read by its extension either way).
    pub input_compression_type: String,
    /// When it started.
    pub start_millis: u64,
    /// When it ended.
    pub end_millis: Option<u64>,
    /// Items read.
    pub processed_item_count: u64,
    /// Items written.
    pub imported_item_count: u64,
    /// Why it failed.
    pub failure_message: Option<String>,
    /// The caller's idempotency token.
    pub client_token: Option<String>,
}

/// An ExportTableToPointInTime request.
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    /// The table's ARN (or name).
    pub table_arn: String,
    /// The instant, milliseconds; now when absent.
    pub export_time_millis: Option<u64>,
    /// The bucket folder.
    pub s3_bucket: String,
    /// The prefix in it.
    pub s3_prefix: Option<String>,
    /// `DYNAMODB_JSON` (default) or `ION`.
    pub export_format: Option<String>,
    /// `FULL_EXPORT` (default); `INCREMENTAL_EXPORT` is refused.
    pub export_type: Option<String>,
    /// Idempotency token.
    pub client_token: Option<String>,
}

/// An ImportTable request.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// The bucket folder to read.
    pub s3_bucket: String,
    /// The prefix in it.
    pub s3_key_prefix: Option<String>,
    /// `DYNAMODB_JSON` or `ION`; `CSV` is refused.
    pub input_format: String,
    /// `GZIP` or `NONE` (default); `ZSTD` is refused.
    pub input_compression_type: Option<String>,
    /// The table to create.
    pub table: CreateTableRequest,
    /// Idempotency token.
    pub client_token: Option<String>,
}

/// The format of exports recorded before they had a choice.
fn dynamodb_json() -> String {
    aws::Format::DynamodbJson.name().into()
}

/// The format named `name` (`DYNAMODB_JSON` or `ION`), for `member`.
fn format(name: &str, member: &str) -> Result<aws::Format> {
    aws::Format::parse(name).ok_or_else(|| {
        Error::Validation(format!(
            "{member} {name} is not supported here; use DYNAMODB_JSON or ION"
        ))
    })
}

const EXPORTS: &str = "export";
const IMPORTS: &str = "import";

/// The node's exports and imports.
#[derive(Debug)]
pub struct Transfers {
    store: Arc<Store>,
    /// Exports read tables as of an instant, and imports build tables, through the restores.
    backups: Arc<Backups>,
    root: Option<PathBuf>,
}

/// An export or import id as AWS makes them: the start time in milliseconds on 14 digits, a
/// dash, 8 random hex digits.
fn job_id(millis: u64) -> String {
    format!(
        "{millis:014}-{:08x}",
        uuid::Uuid::new_v4().as_u64_pair().0 as u32
    )
}

/// A folder name given as a bucket or prefix: no absolute paths, no `..`.
fn check_path(value: &str, what: &str) -> Result<()> {
    let fine = !value.is_empty()
        && !value.starts_with('/')
        && value
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
    match fine {
        true => Ok(()),
        false => Err(Error::Validation(format!(
            "{what} '{value}' must be a relative folder name of letters, digits, '.', '_', '-' and '/'"
        ))),
    }
}

impl Transfers {
    /// Exports and imports of `store` (and its `backups`), in folders under `root` (none:
    /// every request is refused, saying why).
    pub fn new(store: Arc<Store>, backups: Arc<Backups>, root: Option<PathBuf>) -> Arc<Self> {
        Arc::new(Transfers {
            store,
            backups,
            root,
        })
    }

    /// The folder of bucket `bucket` (and `prefix`).
    fn folder(&self, bucket: &str, prefix: Option<&str>) -> Result<PathBuf> {
        let root = self.root.as_ref().ok_or_else(|| {
            Error::Validation(
                "Exports and imports write and read folders under the node's export root; start the node with --export-root DIR".into(),
            )
        })?;
        check_path(bucket, "S3Bucket")?;
        if bucket.contains('/') {
            return Err(Error::Validation(format!(
                "S3Bucket '{bucket}' must be one folder name"
            )));
        }
        let mut folder = root.join(bucket);
        if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
            check_path(prefix.trim_end_matches('/'), "S3Prefix")?;
            folder = folder.join(prefix.trim_end_matches('/'));
        }
        Ok(folder)
    }

    fn now(&self) -> u64 {
        self.store.clock().now_millis()
    }

    /// Saves the record of the job `arn` (its id is the ARN's last element).
    fn save(&self, kind: &str, arn: &str, record: &impl Serialize) -> Result<()> {
        let id = arn.rsplit('/').next().unwrap_or_default();
        Ok(self.store.save_document(kind, id, record)?)
    }

    fn save_export(&self, record: &ExportRecord) -> Result<()> {
        self.save(EXPORTS, &record.export_arn, record)
    }

    fn save_import(&self, record: &ImportRecord) -> Result<()> {
        self.save(IMPORTS, &record.import_arn, record)
    }

    /// Every export, oldest first.
    ///
    /// # Errors
    /// Storage failures.
    pub fn exports(&self) -> Result<Vec<ExportRecord>> {
        Ok(self.store.documents(EXPORTS)?)
    }

    /// Every import, oldest first.
    ///
    /// # Errors
    /// Storage failures.
    pub fn imports(&self) -> Result<Vec<ImportRecord>> {
        Ok(self.store.documents(IMPORTS)?)
    }

    /// ExportTableToPointInTime: starts writing the table as of the instant; answers with
    /// the export IN_PROGRESS. A repeated client token answers the export it started.
    ///
    /// # Errors
    /// Validation, TableNotFound, PointInTimeRecoveryUnavailable, InvalidExportTime.
    pub fn export(self: &Arc<Self>, request: ExportRequest) -> Result<ExportRecord> {
        if let Some(token) = &request.client_token
            && let Some(earlier) = self
                .exports()?
                .into_iter()
                .find(|e| e.client_token.as_ref() == Some(token))
        {
            return Ok(earlier);
        }
        let export_format = format(
            request.export_format.as_deref().unwrap_or("DYNAMODB_JSON"),
            "ExportFormat",
        )?;
        match request.export_type.as_deref() {
            None | Some("FULL_EXPORT") => {}
            Some(other) => {
                return Err(Error::Validation(format!(
                    "ExportType {other} is not supported here; use FULL_EXPORT"
                )));
            }
        }
        let folder = self.folder(&request.s3_bucket, None)?;
        if let Some(prefix) = &request.s3_prefix {
            self.folder(&request.s3_bucket, Some(prefix))?;
        }
        let point = match request.export_time_millis {
            Some(millis) => RestorePoint::At(millis),
            None => RestorePoint::Latest,
        };
        let table = self
            .backups
            .table_as_of(&request.table_arn, point)
            .map_err(|e| match e {
                tidemark_core::Error::InvalidRestoreTime(message) => {
                    Error::InvalidExportTime(message)
                }
                other => Error::Core(other),
            })?;
        let start_millis = self.now();
        let record = ExportRecord {
            export_arn: format!(
                "{}/export/{}",
                table.definition.table_arn,
                job_id(start_millis)
            ),
            export_status: JobStatus::InProgress,
            table_arn: table.definition.table_arn.clone(),
            table_id: table.definition.table_uuid.clone(),
            export_time_millis: table.millis,
            start_millis,
            end_millis: None,
            s3_bucket: request.s3_bucket.clone(),
            s3_prefix: request.s3_prefix.clone(),
            export_format: export_format.name().into(),
            item_count: 0,
            billed_size_bytes: 0,
            export_manifest: None,
            failure_message: None,
            client_token: request.client_token.clone(),
        };
        self.save_export(&record)?;
        let header = aws::ExportHeader {
            export_arn: record.export_arn.clone(),
            start_millis,
            table_arn: record.table_arn.clone(),
            table_id: record.table_id.clone(),
            export_millis: table.millis,
            bucket: request.s3_bucket.clone(),
            prefix: request.s3_prefix.clone(),
            format: export_format,
        };
        let (me, mut done) = (self.clone(), record.clone());
        std::thread::Builder::new()
            .name("tidemark-export".into())
            .spawn(move || {
                let outcome = aws::write_export(&folder, &header, table.items);
                done.end_millis = Some(me.now());
                match outcome {
                    Ok(written) => {
                        done.export_status = JobStatus::Completed;
                        done.item_count = written.item_count;
                        done.billed_size_bytes = written.bytes;
                        done.export_manifest = Some(written.manifest_key);
                    }
                    Err(e) => {
                        tracing::warn!(export = %done.export_arn, error = %e, "export failed");
                        let _ = me.store.halt_if_fatal(Err::<(), _>(core_of(&e)));
                        done.export_status = JobStatus::Failed;
                        done.failure_message = Some(e.to_string());
                    }
                }
                if let Err(e) = me.save_export(&done) {
                    tracing::error!(export = %done.export_arn, error = %e, "cannot record the export's end");
                }
            })
            .map_err(|e| Error::Io(format!("cannot start the export: {e}")))?;
        Ok(record)
    }

    /// DescribeExport.
    ///
    /// # Errors
    /// ExportNotFound.
    pub fn describe_export(&self, arn: &str) -> Result<ExportRecord> {
        self.exports()?
            .into_iter()
            .find(|e| e.export_arn == arn)
            .ok_or_else(|| Error::ExportNotFound(format!("Export not found: {arn}")))
    }

    /// ImportTable: creates the table (CREATING) and starts filling it from the folder;
    /// answers with the import IN_PROGRESS.
    ///
    /// # Errors
    /// Validation (formats, folders, the table's definition), ResourceInUse for a table
    /// that exists.
    pub fn import(self: &Arc<Self>, request: ImportRequest) -> Result<ImportRecord> {
        if let Some(token) = &request.client_token
            && let Some(earlier) = self
                .imports()?
                .into_iter()
                .find(|i| i.client_token.as_ref() == Some(token))
        {
            return Ok(earlier);
        }
        format(&request.input_format, "InputFormat")?;
        let compression = request
            .input_compression_type
            .clone()
            .unwrap_or_else(|| "NONE".into());
        if compression != "GZIP" && compression != "NONE" {
            return Err(Error::Validation(format!(
                "InputCompressionType {compression} is not supported here; use GZIP or NONE"
            )));
        }
        let folder = self.folder(&request.s3_bucket, request.s3_key_prefix.as_deref())?;
        if !folder.is_dir() {
            return Err(Error::Validation(format!(
                "Nothing to import: no folder {}",
                folder.display()
            )));
        }
        let start_millis = self.now();
        let table_name = request.table.table_name.clone();
        let table_arn = format!(
            "arn:aws:dynamodb:{}:{}:table/{}",
            self.store.config().region,
            self.store.config().account_id,
            table_name
        );
        let record = ImportRecord {
            import_arn: format!("{table_arn}/import/{}", job_id(start_millis)),
            import_status: JobStatus::InProgress,
            table_arn,
            table_name,
            s3_bucket: request.s3_bucket.clone(),
            s3_key_prefix: request.s3_key_prefix.clone(),
            input_format: request.input_format.clone(),
            input_compression_type: compression,
            start_millis,
            end_millis: None,
            processed_item_count: 0,
            imported_item_count: 0,
            failure_message: None,
            client_token: request.client_token.clone(),
        };
        // The table first: a restart that finds it CREATING without the import's record
        // drops it (see `resume`).
        self.backups
            .create_importing_table(request.table, &record.import_arn)?;
        self.save_import(&record)?;
        self.run_import(record.clone())?;
        Ok(record)
    }

    /// Fills the table of `record` from its folder on a thread of its own, then records the
    /// outcome.
    fn run_import(self: &Arc<Self>, mut record: ImportRecord) -> Result<()> {
        let folder = self.folder(&record.s3_bucket, record.s3_key_prefix.as_deref())?;
        let input_format = format(&record.input_format, "InputFormat")?;
        let me = self.clone();
        std::thread::Builder::new()
            .name("tidemark-import".into())
            .spawn(move || {
                let outcome = aws::data_files(&folder, input_format).and_then(|files| {
                    let items = files.into_iter().flat_map(|file| {
                        aws::read_data_file(&file, input_format)
                            .unwrap_or_else(|e| Box::new(std::iter::once(Err(e))))
                    });
                    let mut failure = None;
                    let items = items.map_while(|item| match item {
                        Ok(item) => Some(Ok(item)),
                        Err(e) => {
                            failure = Some(e);
                            None
                        }
                    });
                    let loaded = me.backups.load_import(&record.table_name, items);
                    match (failure, loaded) {
                        (Some(e), _) => Err(e),
                        (None, loaded) => Ok(loaded?),
                    }
                });
                record.end_millis = Some(me.now());
                let finished = outcome.and_then(|count| {
                    me.backups.finish_import(&record.table_name)?;
                    Ok(count)
                });
                match finished {
                    Ok(count) => {
                        record.import_status = JobStatus::Completed;
                        record.processed_item_count = count;
                        record.imported_item_count = count;
                    }
                    Err(e) => {
                        tracing::warn!(import = %record.import_arn, error = %e, "import failed; dropping its table");
                        let _ = me.store.halt_if_fatal(Err::<(), _>(core_of(&e)));
                        if let Err(drop) = me.backups.abandon_import(&record.table_name) {
                            tracing::error!(import = %record.import_arn, error = %drop, "cannot drop the failed import's table");
                        }
                        record.import_status = JobStatus::Failed;
                        record.failure_message = Some(e.to_string());
                    }
                }
                if let Err(e) = me.save_import(&record) {
                    tracing::error!(import = %record.import_arn, error = %e, "cannot record the import's end");
                }
            })
            .map_err(|e| Error::Io(format!("cannot start the import: {e}")))?;
        Ok(())
    }

    /// DescribeImport.
    ///
    /// # Errors
    /// ImportNotFound.
    pub fn describe_import(&self, arn: &str) -> Result<ImportRecord> {
        self.imports()?
            .into_iter()
            .find(|i| i.import_arn == arn)
            .ok_or_else(|| Error::ImportNotFound(format!("Import not found: {arn}")))
    }

    /// After a restart: exports that were running are FAILED (their partial folders
    /// removed); imports that were running start over; a table an import was building
    /// without a record of it is dropped.
    ///
    /// # Errors
    /// Storage failures.
    pub fn resume(self: &Arc<Self>) -> Result<()> {
        for mut export in self.exports()? {
            if export.export_status != JobStatus::InProgress {
                continue;
            }
            if let Ok(folder) = self.folder(&export.s3_bucket, export.s3_prefix.as_deref()) {
                let id = export.export_arn.rsplit('/').next().unwrap_or_default();
                let partial = folder.join("AWSDynamoDB").join(id);
                if partial.is_dir() {
                    let _ = std::fs::remove_dir_all(&partial);
                }
            }
            export.export_status = JobStatus::Failed;
            export.end_millis = Some(self.now());
            export.failure_message = Some("the node restarted during the export".into());
            self.save_export(&export)?;
        }
        let imports = self.imports()?;
        // Read once, before any import is resumed: a resumed one may finish (and stop
        // building its table) while the records are still being looked at.
        let building = self.backups.importing_tables();
        for (table, import_arn) in &building {
            match imports.iter().find(|i| i.import_arn == *import_arn) {
                Some(record) if record.import_status == JobStatus::InProgress => {
                    tracing::info!(import = %import_arn, "resuming an import a restart interrupted");
                    self.run_import(record.clone())?;
                }
                _ => self.backups.abandon_import(table)?,
            }
        }
        for mut record in imports {
            let resumed = building.iter().any(|(_, arn)| *arn == record.import_arn);
            if record.import_status == JobStatus::InProgress && !resumed {
                record.import_status = JobStatus::Failed;
                record.end_millis = Some(self.now());
                record.failure_message =
                    Some("the node restarted before the table was created".into());
                self.save_import(&record)?;
            }
        }
        Ok(())
    }
}

/// The store error inside `e`, for the halt (only fatal ones raise it).
fn core_of(e: &Error) -> tidemark_core::Error {
    match e {
        Error::Core(core) if core.is_fatal() => tidemark_core::Error::Halted(core.to_string()),
        other => tidemark_core::Error::Internal(other.to_string()),
    }
}

/// Lists `records` of table `table_arn` (all when `None`), a page of `limit` after `after`.
pub fn page<T: Clone>(
    records: &[T],
    arn_of: impl Fn(&T) -> &str,
    table_of: impl Fn(&T) -> &str,
    table_arn: Option<&str>,
    limit: usize,
    after: Option<&str>,
) -> (Vec<T>, Option<String>) {
    let matching: Vec<&T> = records
        .iter()
        .filter(|r| table_arn.is_none_or(|t| table_of(r) == t))
        .collect();
    let start = after
        .and_then(|a| matching.iter().position(|r| arn_of(r) == a))
        .map_or(0, |at| at + 1);
    let page: Vec<T> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|r| (*r).clone())
        .collect();
    let next = (matching.len() > start + page.len())
        .then(|| page.last().map(|r| arn_of(r).to_string()))
        .flatten();
    (page, next)
}
