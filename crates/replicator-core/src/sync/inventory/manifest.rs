//! An S3 Inventory manifest (`manifest.json`): the source bucket it lists, the format and
//! schema of its data files, and their keys. S3 publishes each inventory at
//! `PREFIX/SOURCE-BUCKET/CONFIG-ID/YYYY-MM-DDTHH-MMZ/manifest.json`, and beside it
//! `manifest.checksum`, the MD5 of the manifest ("Locating your inventory list", S3 User
//! Guide): a manifest is read only when it matches its checksum, and the newest inventory
//! under a location is the newest folder that has one.

use md5::{Digest, Md5};
use serde::Deserialize;
use tracing::warn;

use crate::error::ReplicationError;
use crate::s3::Bucket;
use crate::state::MAX_STATE_BYTES;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub source_bucket: String,
    /// `arn:aws:s3:::BUCKET`: where the data files are.
    pub destination_bucket: String,
    pub file_format: String,
    /// The columns of each row, comma-separated (`Bucket, Key, VersionId, …`).
    pub file_schema: String,
    pub files: Vec<DataFile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DataFile {
    pub key: String,
}

/// `s3://bucket/key` → (bucket, key).
pub fn parse_url(url: &str) -> Result<(String, String), ReplicationError> {
    url.strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
        .map(|(bucket, key)| (bucket.to_owned(), key.to_owned()))
        .ok_or_else(|| {
            ReplicationError::InvalidEvent(format!(
                "inventory manifest {url:?} is not an s3://BUCKET/KEY URL"
            ))
        })
}

/// `YYYY-MM-DDTHH-MMZ`, the name S3 gives an inventory's folder.
fn is_timestamp(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 17
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 | 13 => *c == b'-',
            10 => *c == b'T',
            16 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// The key of the manifest at `key`: `key` itself, or, when it ends in `/` (an inventory's
/// location, `…/CONFIG-ID/`), the newest complete manifest under it.
pub async fn locate(bucket: &Bucket, key: &str) -> Result<String, ReplicationError> {
    if !key.ends_with('/') {
        return Ok(key.to_owned());
    }
    let mut folders: Vec<String> = bucket
        .folders(key)
        .await?
        .into_iter()
        .filter(|f| is_timestamp(f[key.len()..].trim_end_matches('/')))
        .collect();
    // The timestamps sort as text; the newest first.
    folders.sort_unstable_by(|a, b| b.cmp(a));
    for folder in folders {
        if bucket
            .head(&format!("{folder}manifest.checksum"), None)
            .await?
            .is_some()
        {
            return Ok(format!("{folder}manifest.json"));
        }
        warn!(folder = %bucket.resource(&folder), "an inventory without manifest.checksum (still being written?) is passed over");
    }
    Err(ReplicationError::InvalidEvent(format!(
        "no complete inventory (a YYYY-MM-DDTHH-MMZ/ folder with manifest.json and manifest.checksum) under {}",
        bucket.resource(key)
    )))
}

/// A small object, whole; `None` when it does not exist.
async fn small(
    bucket: &Bucket,
    key: &str,
    what: &str,
) -> Result<Option<bytes::Bytes>, ReplicationError> {
    let resource = bucket.resource(key);
    let Some(out) = bucket.get(key, None, None, None).await? else {
        return Ok(None);
    };
    let len = out.content_length().unwrap_or(0).max(0) as u64;
    // A manifest lists files, not objects: a few KiB even for billions of objects.
    if len > MAX_STATE_BYTES {
        return Err(ReplicationError::Rejected {
            resource,
            message: format!("an inventory {what} of {len} bytes is not one S3 writes"),
        });
    }
    crate::s3::body::read_whole(out.body, len, &resource)
        .await
        .map(Some)
}

impl Manifest {
    /// Reads the manifest at `key` of `bucket`, for an inventory of `source_bucket`, and
    /// checks it against its `manifest.checksum` when there is one; `None` when there is no
    /// manifest.
    pub async fn read(
        bucket: &Bucket,
        key: &str,
        source_bucket: &str,
    ) -> Result<Option<Self>, ReplicationError> {
        let resource = bucket.resource(key);
        let Some(bytes) = small(bucket, key, "manifest").await? else {
            return Ok(None);
        };
        let checksum_key = match key.rsplit_once('/') {
            Some((folder, _)) => format!("{folder}/manifest.checksum"),
            None => "manifest.checksum".to_owned(),
        };
        if let Some(checksum) = small(bucket, &checksum_key, "checksum").await? {
            let want = String::from_utf8_lossy(&checksum)
                .trim()
                .to_ascii_lowercase();
            let got = hex::encode(Md5::digest(&bytes));
            if want != got {
                return Err(ReplicationError::InvalidEvent(format!(
                    "inventory manifest {resource} has MD5 {got}, its manifest.checksum says {want}: it is not the manifest S3 published"
                )));
            }
        }
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            ReplicationError::InvalidEvent(format!(
                "inventory manifest {resource} does not parse: {e}"
            ))
        })?;
        manifest.validate(&resource, source_bucket)?;
        Ok(Some(manifest))
    }

    fn validate(&self, resource: &str, source_bucket: &str) -> Result<(), ReplicationError> {
        let invalid = |message: String| {
            ReplicationError::InvalidEvent(format!("inventory manifest {resource}: {message}"))
        };
        if self.source_bucket != source_bucket {
            return Err(invalid(format!(
                "it lists bucket {}, not SOURCE_BUCKET {source_bucket}",
                self.source_bucket
            )));
        }
        if !self.file_format.eq_ignore_ascii_case("CSV") {
            return Err(invalid(format!(
                "its data files are {}; this replicator reads CSV inventories (configure the inventory's output format as CSV)",
                self.file_format
            )));
        }
        Ok(())
    }

    /// The bucket holding the data files.
    pub fn data_bucket(&self) -> &str {
        self.destination_bucket
            .rsplit(":::")
            .next()
            .unwrap_or(&self.destination_bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_and_a_key() {
        assert_eq!(
            parse_url("s3://inv/a/b/manifest.json").unwrap(),
            ("inv".into(), "a/b/manifest.json".into())
        );
        for bad in ["inv/a", "s3://inv", "s3:///k", "s3://inv/"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn inventory_folders_are_timestamps() {
        assert!(is_timestamp("2016-11-06T21-32Z"));
        for bad in [
            "hive",
            "2016-11-06T21-32",
            "2016-11-06T21:32Z",
            "2016-11-0xT21-32Z",
        ] {
            assert!(!is_timestamp(bad), "{bad}");
        }
    }

    #[test]
    fn only_csv_inventories_of_the_source_bucket_are_read() {
        let manifest = |format: &str, bucket: &str| Manifest {
            source_bucket: bucket.into(),
            destination_bucket: "arn:aws:s3:::inv".into(),
            file_format: format.into(),
            file_schema: "Bucket, Key".into(),
            files: vec![],
        };
        assert!(manifest("CSV", "src").validate("r", "src").is_ok());
        assert!(manifest("Parquet", "src").validate("r", "src").is_err());
        assert!(manifest("CSV", "other").validate("r", "src").is_err());
        assert_eq!(manifest("CSV", "src").data_bucket(), "inv");
    }
}
