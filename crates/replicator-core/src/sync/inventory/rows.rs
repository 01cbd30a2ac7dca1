//! The rows of one inventory data file (CSV, gzip), streamed: the body is decompressed and
//! parsed as it arrives, so memory stays a few buffers whatever the file's size.

use async_compression::tokio::bufread::GzipDecoder;
use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;
use futures::{Stream, StreamExt};
use tokio::io::BufReader;

use crate::error::ReplicationError;
use crate::facts::{normalize_version, NativeStatus};
use crate::key::decode_event_key;
use crate::s3::Bucket;

/// One row: one version of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Decoded: CSV inventories URL-encode keys, a space as `+` as in event notifications
    /// ("Key", "Amazon S3 Inventory list" in the S3 User Guide; the `+` is reported in
    /// cloud-custodian/cloud-custodian#1997).
    pub key: String,
    pub version_id: Option<String>,
    pub latest: bool,
    pub delete_marker: bool,
    pub size: u64,
    /// Seconds since the epoch.
    pub last_modified: i64,
    pub etag: String,
    pub native: Option<NativeStatus>,
}

/// One record of a data file: a row, or a key this replicator refuses (a `..` segment, a
/// key that does not decode), reported with the key as the inventory has it.
#[derive(Debug)]
pub enum Entry {
    Row(Row),
    Refused {
        key: String,
        error: ReplicationError,
    },
}

/// Where each field is in a row, from the manifest's `fileSchema`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    key: usize,
    version_id: Option<usize>,
    latest: Option<usize>,
    delete_marker: Option<usize>,
    size: Option<usize>,
    last_modified: Option<usize>,
    etag: Option<usize>,
    replication: Option<usize>,
}

impl Columns {
    pub fn from_schema(schema: &str) -> Result<Self, ReplicationError> {
        let names: Vec<&str> = schema.split(',').map(str::trim).collect();
        let at = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name));
        Ok(Self {
            key: at("Key").ok_or_else(|| {
                ReplicationError::InvalidEvent(format!(
                    "inventory fileSchema {schema:?} has no Key column"
                ))
            })?,
            version_id: at("VersionId"),
            latest: at("IsLatest"),
            delete_marker: at("IsDeleteMarker"),
            size: at("Size"),
            last_modified: at("LastModifiedDate"),
            etag: at("ETag"),
            replication: at("ReplicationStatus"),
        })
    }

    /// One CSV record as a row.
    pub fn entry(&self, record: &csv_async::StringRecord) -> Entry {
        let raw = record.get(self.key).unwrap_or("");
        match decode_event_key(raw) {
            Ok(key) => Entry::Row(self.row(key, record)),
            Err(error) => Entry::Refused {
                key: raw.to_owned(),
                error: ReplicationError::InvalidKey(error),
            },
        }
    }

    fn row(&self, key: String, record: &csv_async::StringRecord) -> Row {
        let field = |at: Option<usize>| at.and_then(|i| record.get(i)).unwrap_or("");
        Row {
            key,
            version_id: normalize_version(Some(field(self.version_id))),
            // An inventory of current versions only has no IsLatest column: all are latest.
            latest: self.latest.is_none() || field(self.latest).eq_ignore_ascii_case("true"),
            delete_marker: field(self.delete_marker).eq_ignore_ascii_case("true"),
            size: field(self.size).parse().unwrap_or(0),
            last_modified: DateTime::from_str(field(self.last_modified), Format::DateTime)
                .map(|t| t.secs())
                .unwrap_or(0),
            etag: field(self.etag).to_owned(),
            native: NativeStatus::parse(field(self.replication)),
        }
    }
}

/// The records of the data file at `key`, in the file's order. An error (the file cannot be
/// read, decompressed or parsed) ends what can be trusted of the file: the pass stops there.
pub async fn stream(
    bucket: &Bucket,
    key: &str,
    columns: Columns,
) -> Result<impl Stream<Item = Result<Entry, ReplicationError>> + Send + 'static, ReplicationError>
{
    let resource = bucket.resource(key);
    let out = bucket.get(key, None, None, None).await?.ok_or_else(|| {
        ReplicationError::InvalidEvent(format!("inventory data file {resource} does not exist"))
    })?;
    let mut gzip = GzipDecoder::new(BufReader::new(out.body.into_async_read()));
    gzip.multiple_members(true);
    let records = csv_async::AsyncReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .create_reader(gzip)
        .into_records();
    Ok(records.map(move |record| {
        let record = record.map_err(|e| ReplicationError::Service {
            action: "s3:GetObject",
            resource: resource.clone(),
            code: "InventoryRead".into(),
            message: format!("reading the inventory data file failed: {e}"),
            retryable: true,
            source: Box::new(e),
        })?;
        Ok(columns.entry(&record))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_by_the_schema_and_keys_decoded() {
        let columns = Columns::from_schema(
            "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, ReplicationStatus",
        )
        .unwrap();
        let record = csv_async::StringRecord::from(vec![
            "src",
            "a+b%2Bc",
            "v1",
            "true",
            "false",
            "12",
            "2026-11-01T10:00:00.000Z",
            "etag",
            "FAILED",
        ]);
        let Entry::Row(row) = columns.entry(&record) else {
            panic!("a valid key")
        };
        assert_eq!(row.key, "a b+c");
        assert_eq!(row.version_id.as_deref(), Some("v1"));
        assert!(row.latest && !row.delete_marker);
        assert_eq!((row.size, row.native), (12, Some(NativeStatus::Failed)));
        assert_eq!(row.last_modified, 1_793_527_200);
        assert!(Columns::from_schema("Bucket, Size").is_err());
        let bad = csv_async::StringRecord::from(vec!["src", "a/../b"]);
        let refused = Columns::from_schema("Bucket, Key").unwrap().entry(&bad);
        assert!(matches!(refused, Entry::Refused { key, .. } if key == "a/../b"));
    }
}
