//! Independent checks of what the replicator did, with plain SDK calls on the World's own
//! clients (never through the code under test).

use aws_sdk_s3::types::ServerSideEncryption;

use crate::{sha256, World};

impl World {
    /// Every (key, version id) in the destination bucket, delete markers included, sorted.
    pub async fn all_destination_versions(&self) -> Vec<(String, String)> {
        let mut all = Vec::new();
        let (mut km, mut vm) = (None::<String>, None::<String>);
        loop {
            let out = self
                .dst
                .list_object_versions()
                .bucket(&self.destination_bucket)
                .set_key_marker(km.take())
                .set_version_id_marker(vm.take())
                .send()
                .await
                .expect("list destination versions");
            for v in out.versions() {
                all.push((
                    v.key().unwrap_or_default().to_owned(),
                    v.version_id().unwrap_or_default().to_owned(),
                ));
            }
            for d in out.delete_markers() {
                all.push((
                    d.key().unwrap_or_default().to_owned(),
                    format!("marker:{}", d.version_id().unwrap_or_default()),
                ));
            }
            if !out.is_truncated().unwrap_or(false) {
                break;
            }
            km = out.next_key_marker().map(str::to_owned);
            vm = out.next_version_id_marker().map(str::to_owned);
        }
        all.sort();
        all
    }

    /// Multipart uploads open in the destination bucket.
    pub async fn open_uploads(&self) -> usize {
        self.open_upload_list().await.len()
    }

    /// The Last-Modified second of a source version.
    pub async fn source_second(&self, key: &str, version_id: &str) -> i64 {
        self.src
            .head_object()
            .bucket(&self.source_bucket)
            .key(key)
            .version_id(version_id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("head source {key}: {e:?}"))
            .last_modified()
            .expect("a Last-Modified")
            .secs()
    }

    /// How many upload records the replicator keeps under its reserved prefix.
    pub async fn upload_records(&self) -> usize {
        self.dst
            .list_objects_v2()
            .bucket(&self.destination_bucket)
            .prefix(".s3-fallback-replicator/uploads/")
            .send()
            .await
            .expect("list upload records")
            .contents()
            .len()
    }

    /// Each multipart upload open in the destination bucket: its key and upload id.
    pub async fn open_upload_list(&self) -> Vec<(String, String)> {
        self.dst
            .list_multipart_uploads()
            .bucket(&self.destination_bucket)
            .send()
            .await
            .expect("list multipart uploads")
            .uploads()
            .iter()
            .map(|u| {
                (
                    u.key().unwrap_or_default().to_owned(),
                    u.upload_id().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Every version (not delete markers) of a destination key.
    pub async fn replica_versions(&self, key: &str) -> Vec<String> {
        let out = self
            .dst
            .list_object_versions()
            .bucket(&self.destination_bucket)
            .prefix(key)
            .send()
            .await
            .expect("list destination versions");
        out.versions()
            .iter()
            .filter(|v| v.key() == Some(key))
            .filter_map(|v| v.version_id().map(str::to_owned))
            .collect()
    }

    /// The replica's bytes, or `None` when there is none.
    pub async fn replica_bytes(&self, key: &str) -> Option<Vec<u8>> {
        match self
            .dst
            .get_object()
            .bucket(&self.destination_bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Some(out.body.collect().await.expect("read replica").to_vec()),
            Err(_) => None,
        }
    }

    pub async fn replica_head(
        &self,
        key: &str,
    ) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
        self.dst
            .head_object()
            .bucket(&self.destination_bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("head replica {key}: {e:?}"))
    }

    /// The replica's tags, sorted.
    pub async fn replica_tags(&self, key: &str) -> Vec<(String, String)> {
        let out = self
            .dst
            .get_object_tagging()
            .bucket(&self.destination_bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("tags of replica {key}: {e:?}"));
        let mut tags: Vec<(String, String)> = out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        tags.sort();
        tags
    }

    /// Asserts the replica of `key` has exactly `body` and is encrypted with the
    /// destination key.
    pub async fn assert_replica(&self, key: &str, body: &[u8]) {
        let got = self
            .replica_bytes(key)
            .await
            .unwrap_or_else(|| panic!("no replica for {key:?}"));
        assert_eq!(got.len(), body.len(), "replica size of {key:?}");
        assert_eq!(sha256(&got), sha256(body), "replica bytes of {key:?}");
        let head = self.replica_head(key).await;
        assert_eq!(
            head.server_side_encryption(),
            Some(&ServerSideEncryption::AwsKms),
            "SSE of {key:?}"
        );
        assert_eq!(
            head.ssekms_key_id(),
            Some(self.destination_key_arn.as_str()),
            "KMS key of the replica of {key:?}"
        );
    }
}
