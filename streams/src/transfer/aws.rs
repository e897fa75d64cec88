//! The layout of DynamoDB's export to S3 (full export, DynamoDB JSON or Amazon Ion), on a
//! local folder standing for the bucket, written and read back; reading also takes any folder
//! of data files in either format (gzip or not), as ImportTable does.
//!
//! ```text
//! <bucket>/<prefix>/AWSDynamoDB/<export id>/_started
//! <bucket>/<prefix>/AWSDynamoDB/<export id>/manifest-summary.json   (+ .md5)
//! <bucket>/<prefix>/AWSDynamoDB/<export id>/manifest-files.json     (+ .md5)
//! <bucket>/<prefix>/AWSDynamoDB/<export id>/data/<26 base32 chars>.json.gz   (or .ion.gz)
//! ```
//!
//! As observed on real AWS exports (docs/compatibility.md has the sources): the export id is
//! the start time in milliseconds on 14 digits, a dash and 8 hex digits; a data file holds
//! one `{"Item":{...}}` per line (in Ion, [`super::ion`]), gzip-compressed (an empty table
//! still gets one, empty,
//! file); `manifest-files.json` has one JSON object per data file (item count, the base64
//! MD5 of the compressed file, its S3 ETag as a one-part multipart upload, its key from the
//! bucket's root); the `.md5` files hold the base64 MD5 of their JSON file; the summary
//! names the table, the instant and the totals, and is written last.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use tidemark_core::model::Item;

use super::{Error, Result};

/// Bytes of items per data file (DynamoDB writes one or more files per partition).
const FILE_BYTES: usize = 32 * 1024 * 1024;

/// The format of an export's data files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// DynamoDB JSON: `{"Item":{...}}` per line.
    DynamodbJson,
    /// Amazon Ion text: `$ion_1_0 {Item:{...}}` per line.
    Ion,
}

impl Format {
    /// The format named as the API names it (`DYNAMODB_JSON`, `ION`).
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "DYNAMODB_JSON" => Some(Format::DynamodbJson),
            "ION" => Some(Format::Ion),
            _ => None,
        }
    }

    /// Its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Format::DynamodbJson => "DYNAMODB_JSON",
            Format::Ion => "ION",
        }
    }

    /// The extension of its data files, before `.gz`.
    fn extension(self) -> &'static str {
        match self {
            Format::DynamodbJson => "json",
            Format::Ion => "ion",
        }
    }
}

/// What an export says about itself (`manifest-summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSummary {
    /// `2020-06-30`.
    pub version: String,
    /// The export's ARN.
    pub export_arn: String,
    /// When the export started (ISO 8601, milliseconds, `Z`).
    pub start_time: String,
    /// When it ended.
    pub end_time: String,
    /// The table's ARN.
    pub table_arn: String,
    /// The table's id.
    pub table_id: String,
    /// The instant exported.
    pub export_time: String,
    /// The bucket (here: the folder under the export root).
    pub s3_bucket: String,
    /// The prefix within it.
    pub s3_prefix: Option<String>,
    /// `AES256` on AWS; none here (nothing is encrypted).
    pub s3_sse_algorithm: Option<String>,
    /// Unused here.
    pub s3_sse_kms_key_id: Option<String>,
    /// Key of `manifest-files.json`.
    pub manifest_files_s3_key: String,
    /// Bytes of the items exported.
    pub billed_size_bytes: u64,
    /// Items exported.
    pub item_count: u64,
    /// `DYNAMODB_JSON` or `ION`.
    pub output_format: String,
}

/// One line of `manifest-files.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    /// Items in the file.
    pub item_count: u64,
    /// MD5 of the (compressed) file, base64.
    pub md5_checksum: String,
    /// The S3 ETag of the file uploaded in one part of a multipart upload: the hex MD5 of
    /// its MD5, then `-1`.
    pub etag: String,
    /// The file's key in the bucket.
    pub data_file_s3_key: String,
}

/// One line of a data file, as read.
#[derive(Debug, Deserialize)]
struct Line {
    #[serde(rename = "Item")]
    item: Item,
}

/// One line of a data file, as written.
#[derive(Debug, Serialize)]
struct LineRef<'a> {
    #[serde(rename = "Item")]
    item: &'a Item,
}

/// What an export wrote.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// Items written.
    pub item_count: u64,
    /// Their size in DynamoDB's measure.
    pub bytes: u64,
    /// Key of `manifest-summary.json` in the bucket.
    pub manifest_key: String,
}

/// What the summary needs besides counts.
#[derive(Debug, Clone)]
pub struct ExportHeader {
    /// The export's ARN (its last path element is the export id).
    pub export_arn: String,
    /// When it started, milliseconds.
    pub start_millis: u64,
    /// The table's ARN.
    pub table_arn: String,
    /// The table's id.
    pub table_id: String,
    /// The instant exported, milliseconds.
    pub export_millis: u64,
    /// The bucket's name.
    pub bucket: String,
    /// The prefix in it.
    pub prefix: Option<String>,
    /// The data files' format.
    pub format: Format,
}

fn iso(millis: u64) -> String {
    chrono::DateTime::from_timestamp_millis(millis as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io(format!("{}: {e}", path.display()))
}

/// The key of `name` under the export's folder, as S3 would name it.
fn key(prefix: Option<&str>, export_id: &str, name: &str) -> String {
    match prefix {
        Some(p) if !p.is_empty() => {
            format!("{}/AWSDynamoDB/{export_id}/{name}", p.trim_end_matches('/'))
        }
        _ => format!("AWSDynamoDB/{export_id}/{name}"),
    }
}

fn md5(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A data file's name: 16 random bytes in lowercase base32, as AWS names them.
fn data_file_name(format: Format) -> String {
    let name = data_encoding::BASE32_NOPAD.encode(uuid::Uuid::new_v4().as_bytes());
    format!("{}.{}.gz", name.to_lowercase(), format.extension())
}

/// Writes `bytes` to `path` and makes it durable.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// Writes `items` as an export into `bucket_dir` (the bucket's folder). The summary is
/// written last: an export without one is incomplete.
///
/// # Errors
/// Io; errors of `items`.
pub fn write_export(
    bucket_dir: &Path,
    header: &ExportHeader,
    items: impl Iterator<Item = tidemark_core::Result<Item>>,
) -> Result<Written> {
    write_export_in_files_of(bucket_dir, header, items, FILE_BYTES)
}

/// [`write_export`], starting a new data file after `file_bytes` of items.
fn write_export_in_files_of(
    bucket_dir: &Path,
    header: &ExportHeader,
    items: impl Iterator<Item = tidemark_core::Result<Item>>,
    file_bytes: usize,
) -> Result<Written> {
    let export_id = header
        .export_arn
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let prefix = header.prefix.as_deref();
    let at = |name: &str| bucket_dir.join(key(prefix, &export_id, name));
    let data_dir = at("data");
    std::fs::create_dir_all(&data_dir).map_err(io(&data_dir))?;
    write_file(&at("_started"), b"")?;

    // Batches of items become data files on worker threads (rendering JSON and gzip are
    // the export's cost), in the order they were read.
    let (batches, ready) = std::sync::mpsc::sync_channel::<(usize, Vec<Item>)>(1);
    let ready = std::sync::Mutex::new(ready);
    let done: std::sync::Mutex<Vec<(usize, ManifestFile)>> = std::sync::Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let mut written = Written::default();
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    let mut failure = None;
                    loop {
                        let next = ready
                            .lock()
                            .map_err(|_| Error::Io("a worker died".into()))?
                            .recv();
                        let Ok((index, items)) = next else {
                            return failure.map_or(Ok(()), Err);
                        };
                        // After a failure, keep draining so the reader never waits forever.
                        if failure.is_some() {
                            continue;
                        }
                        match write_data_file(&data_dir, header, &export_id, &items) {
                            Ok(file) => done
                                .lock()
                                .map_err(|_| Error::Io("a worker died".into()))?
                                .push((index, file)),
                            Err(e) => failure = Some(e),
                        }
                    }
                })
            })
            .collect();
        let read = || -> Result<()> {
            let (mut batch, mut bytes, mut index) = (Vec::new(), 0, 0);
            for item in items {
                let item = item?;
                let size = tidemark_core::model::item_size(&item);
                written.bytes += size as u64;
                written.item_count += 1;
                bytes += size;
                batch.push(item);
                if bytes >= file_bytes {
                    let full = std::mem::take(&mut batch);
                    batches
                        .send((index, full))
                        .map_err(|_| Error::Io("the export's writers stopped".into()))?;
                    (bytes, index) = (0, index + 1);
                }
            }
            // Even an empty table gets one (empty) data file, as on AWS.
            if !batch.is_empty() || index == 0 {
                batches
                    .send((index, batch))
                    .map_err(|_| Error::Io("the export's writers stopped".into()))?;
            }
            Ok(())
        };
        let read = read();
        drop(batches);
        for handle in handles {
            handle
                .join()
                .map_err(|_| Error::Io("an export writer panicked".into()))??;
        }
        read
    })?;
    let mut files = done
        .into_inner()
        .map_err(|_| Error::Io("a worker died".into()))?;
    files.sort_by_key(|(index, _)| *index);
    let files: Vec<ManifestFile> = files.into_iter().map(|(_, file)| file).collect();
    let mut manifest_files = Vec::new();
    for file in &files {
        serde_json::to_writer(&mut manifest_files, file).map_err(|e| Error::Io(e.to_string()))?;
        manifest_files.push(b'\n');
    }
    write_file(&at("manifest-files.json"), &manifest_files)?;
    write_file(
        &at("manifest-files.md5"),
        base64(&md5(&manifest_files)).as_bytes(),
    )?;
    let summary = ManifestSummary {
        version: "2020-06-30".into(),
        export_arn: header.export_arn.clone(),
        start_time: iso(header.start_millis),
        end_time: iso(chrono::Utc::now().timestamp_millis() as u64),
        table_arn: header.table_arn.clone(),
        table_id: header.table_id.clone(),
        export_time: iso(header.export_millis),
        s3_bucket: header.bucket.clone(),
        s3_prefix: header.prefix.clone(),
        s3_sse_algorithm: None,
        s3_sse_kms_key_id: None,
        manifest_files_s3_key: key(prefix, &export_id, "manifest-files.json"),
        billed_size_bytes: written.bytes,
        item_count: written.item_count,
        output_format: header.format.name().into(),
    };
    let summary_json = serde_json::to_vec(&summary).map_err(|e| Error::Io(e.to_string()))?;
    write_file(
        &at("manifest-summary.md5"),
        base64(&md5(&summary_json)).as_bytes(),
    )?;
    write_file(&at("manifest-summary.json"), &summary_json)?;
    written.manifest_key = key(prefix, &export_id, "manifest-summary.json");
    Ok(written)
}

/// Writes `items` as one gzip data file of the export `export_id` and describes it.
fn write_data_file(
    data_dir: &Path,
    header: &ExportHeader,
    export_id: &str,
    items: &[Item],
) -> Result<ManifestFile> {
    let name = data_file_name(header.format);
    let path = data_dir.join(&name);
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    for item in items {
        match header.format {
            Format::DynamodbJson => {
                serde_json::to_writer(&mut encoder, &LineRef { item })
                    .map_err(|e| Error::Io(format!("encoding an item: {e}")))?;
                encoder.write_all(b"\n").map_err(io(&path))?;
            }
            Format::Ion => super::ion::write_line(&mut encoder, item)?,
        }
    }
    let bytes = encoder.finish().map_err(io(&path))?;
    write_file(&path, &bytes)?;
    let digest = md5(&bytes);
    Ok(ManifestFile {
        item_count: items.len() as u64,
        md5_checksum: base64(&digest),
        etag: format!("{}-1", hex(&md5(&digest))),
        data_file_s3_key: key(header.prefix.as_deref(), export_id, &format!("data/{name}")),
    })
}

/// The data files under `dir`: the files `manifest-files.json` lists when `dir` holds one
/// export, else every file below it named for `format` (`.json`, `.json.gz`; `.ion`,
/// `.ion.gz`), as ImportTable reads every object under its prefix, in name order.
///
/// # Errors
/// Io; Invalid for a manifest that does not parse.
pub fn data_files(dir: &Path, format: Format) -> Result<Vec<PathBuf>> {
    let plain = format!(".{}", format.extension());
    let gzip = format!("{plain}.gz");
    let mut manifests = Vec::new();
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).map_err(io(&folder))? {
            let path = entry.map_err(io(&folder))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path.is_dir() {
                pending.push(path.clone());
            } else if name == "manifest-files.json" {
                manifests.push(path.clone());
            } else if name.starts_with("manifest-") || name == "_started" || name.ends_with(".md5")
            {
                continue;
            } else if name.ends_with(&gzip) || name.ends_with(&plain) {
                files.push(path.clone());
            }
        }
    }
    if let [manifest] = manifests.as_slice() {
        // The export's own list: its folder is the manifest's, the keys are the bucket's.
        let export_dir = manifest.parent().unwrap_or(dir);
        let text = std::fs::read_to_string(manifest).map_err(io(manifest))?;
        let mut listed = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let file: ManifestFile = serde_json::from_str(line).map_err(|e| {
                Error::Invalid(format!(
                    "{}: not an export manifest: {e}",
                    manifest.display()
                ))
            })?;
            let name = file.data_file_s3_key.rsplit('/').next().unwrap_or_default();
            listed.push(export_dir.join("data").join(name));
        }
        return Ok(listed);
    }
    files.sort();
    Ok(files)
}

/// The items of one data file in `format`, gzip or plain (by its extension).
///
/// # Errors
/// Io; Invalid for a line that is not an item.
pub fn read_data_file(
    path: &Path,
    format: Format,
) -> Result<Box<dyn Iterator<Item = Result<Item>>>> {
    let file = File::open(path).map_err(io(path))?;
    let reader: Box<dyn Read + Send> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let name = path.display().to_string();
    match format {
        Format::DynamodbJson => Ok(Box::new(json_items(reader, name))),
        Format::Ion => Ok(Box::new(super::ion::read_items(reader, name)?)),
    }
}

/// The items of DynamoDB JSON lines.
fn json_items(reader: impl Read, name: String) -> impl Iterator<Item = Result<Item>> {
    BufReader::new(reader)
        .lines()
        .enumerate()
        .filter(|(_, line)| line.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(move |(number, line)| {
            let line = line.map_err(|e| Error::Io(format!("{name}: {e}")))?;
            let parsed: Line = serde_json::from_str(&line).map_err(|e| {
                Error::Invalid(format!(
                    "{name}, line {}: not a DynamoDB JSON item: {e}",
                    number + 1
                ))
            })?;
            Ok(parsed.item)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_core::model::AttributeValue;

    #[test]
    fn an_export_in_many_files_reads_back_in_order_with_its_checksums() {
        for format in [Format::DynamodbJson, Format::Ion] {
            export_reads_back(format);
        }
    }

    fn export_reads_back(format: Format) {
        let dir = tempfile::tempdir().unwrap();
        let items: Vec<Item> = (0..1_000)
            .map(|i| {
                [
                    ("p".to_string(), AttributeValue::S(format!("k{i:04}"))),
                    ("b".to_string(), AttributeValue::B(vec![1, 2, 3])),
                ]
                .into()
            })
            .collect();
        let header = ExportHeader {
            export_arn:
                "arn:aws:dynamodb:us-east-1:000000000000:table/t/export/01700000000000-0a1b2c3d"
                    .into(),
            start_millis: 1_700_000_000_000,
            table_arn: "arn:aws:dynamodb:us-east-1:000000000000:table/t".into(),
            table_id: "id".into(),
            export_millis: 1_700_000_000_000,
            bucket: "b".into(),
            prefix: Some("p/q".into()),
            format,
        };
        let source = items.clone().into_iter().map(Ok);
        let written = write_export_in_files_of(dir.path(), &header, source, 2_000).unwrap();
        assert_eq!(written.item_count, 1_000);
        let export_dir = dir.path().join("p/q/AWSDynamoDB/01700000000000-0a1b2c3d");
        let files = data_files(&export_dir, format).unwrap();
        assert!(files.len() > 3, "{} files", files.len());
        let summary = std::fs::read_to_string(export_dir.join("manifest-summary.json")).unwrap();
        assert!(summary.contains(&format!("\"outputFormat\":\"{}\"", format.name())));
        let manifest = std::fs::read_to_string(export_dir.join("manifest-files.json")).unwrap();
        for (line, path) in manifest.lines().zip(&files) {
            let listed: ManifestFile = serde_json::from_str(line).unwrap();
            assert_eq!(
                listed.md5_checksum,
                base64(&md5(&std::fs::read(path).unwrap()))
            );
        }
        let read: Vec<Item> = files
            .iter()
            .flat_map(|f| read_data_file(f, format).unwrap())
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            read, items,
            "the files hold the items in the order they were read ({format:?})"
        );
    }
}
