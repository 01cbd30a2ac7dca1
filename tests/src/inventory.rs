//! S3 Inventory as S3 publishes it, for tests: CSV data files (gzip, every field quoted, keys
//! URL-encoded with `+` for a space), a `manifest.json` naming them with its `fileSchema`, and
//! `manifest.checksum` (the manifest's MD5), at
//! `PREFIX/SOURCE-BUCKET/CONFIG-ID/YYYY-MM-DDTHH-MMZ/` ("Locating your inventory list", S3
//! User Guide).

use std::io::Write;

use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use serde_json::json;

/// The columns written, in this order (a subset S3 offers; the reader goes by the schema).
pub const SCHEMA: &str =
    "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, ReplicationStatus";

/// One row: one version of one object.
#[derive(Debug, Clone, Default)]
pub struct InventoryRow {
    pub key: String,
    pub version_id: String,
    pub latest: bool,
    pub delete_marker: bool,
    pub size: u64,
    /// `2026-11-30T01:00:00.000Z`
    pub last_modified: String,
    pub etag: String,
    /// PENDING, COMPLETED, FAILED, REPLICA or empty.
    pub replication_status: String,
}

impl InventoryRow {
    /// A current version, COMPLETED or whatever `status` says.
    pub fn current(key: impl Into<String>, version_id: impl Into<String>, status: &str) -> Self {
        Self {
            key: key.into(),
            version_id: version_id.into(),
            latest: true,
            size: 10,
            last_modified: "2026-11-30T01:00:00.000Z".into(),
            etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
            replication_status: status.into(),
            ..Default::default()
        }
    }
}

fn quoted(field: &str) -> String {
    format!("\"{}\"", field.replace('"', "\"\""))
}

/// One data file's bytes: the rows as CSV, gzip-compressed.
pub fn data_file(bucket: &str, rows: &[InventoryRow]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    for r in rows {
        let fields = [
            bucket.to_owned(),
            crate::form_encode(&r.key),
            r.version_id.clone(),
            r.latest.to_string(),
            r.delete_marker.to_string(),
            r.size.to_string(),
            r.last_modified.clone(),
            r.etag.clone(),
            r.replication_status.clone(),
        ];
        let line: Vec<String> = fields.iter().map(|f| quoted(f)).collect();
        writeln!(gz, "{}", line.join(",")).expect("in memory");
    }
    gz.finish().expect("in memory")
}

/// Publishes an inventory of `source_bucket` into `bucket` under
/// `{location}{timestamp}/`: `files` data files in order, the manifest and (with `complete`)
/// its checksum. Returns the manifest's `s3://` URL.
pub async fn publish(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    location: &str,
    timestamp: &str,
    source_bucket: &str,
    files: &[Vec<InventoryRow>],
    complete: bool,
) -> String {
    let folder = format!("{location}{timestamp}/");
    let mut listed = Vec::new();
    for (i, rows) in files.iter().enumerate() {
        let key = format!("{location}data/{timestamp}-{i:04}.csv.gz");
        let body = data_file(source_bucket, rows);
        listed.push(
            json!({"key": key, "size": body.len(), "MD5checksum": hex::encode(Md5::digest(&body))}),
        );
        put(s3, bucket, &key, body).await;
    }
    let manifest = json!({
        "sourceBucket": source_bucket,
        "destinationBucket": format!("arn:aws:s3:::{bucket}"),
        "version": "2016-11-30",
        "creationTimestamp": "1795914000000",
        "fileFormat": "CSV",
        "fileSchema": SCHEMA,
        "files": listed,
    })
    .to_string();
    let checksum = hex::encode(Md5::digest(manifest.as_bytes()));
    put(
        s3,
        bucket,
        &format!("{folder}manifest.json"),
        manifest.into_bytes(),
    )
    .await;
    if complete {
        put(
            s3,
            bucket,
            &format!("{folder}manifest.checksum"),
            checksum.into_bytes(),
        )
        .await;
    }
    format!("s3://{bucket}/{folder}manifest.json")
}

pub async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e:?}"));
}

/// Creates an (unversioned) bucket for inventories with `s3`'s credentials.
pub async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str) {
    s3.create_bucket()
        .bucket(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
}

/// `rows` sorted by key (then newest version first, as S3 lists versions) and cut into
/// `files` data files of near-equal size.
pub fn split(mut rows: Vec<InventoryRow>, files: usize) -> Vec<Vec<InventoryRow>> {
    rows.sort_by(|a, b| a.key.cmp(&b.key).then(b.latest.cmp(&a.latest)));
    let per = rows.len().div_ceil(files.max(1)).max(1);
    rows.chunks(per).map(<[InventoryRow]>::to_vec).collect()
}
