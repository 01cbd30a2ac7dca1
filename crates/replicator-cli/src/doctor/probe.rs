//! The real test: a tiny SSE-KMS object written under the reserved prefix with the
//! destination key, its key read back and compared, and that exact version deleted, so
//! nothing is left behind.

use aws_sdk_s3::types::ServerSideEncryption;
use replicator_core::permissions;

use super::report::{failed, message, on_error, statement, statement_via_s3, Verdict};
use super::Context;

pub async fn write_read_delete(cx: &mut Context<'_>) -> Verdict {
    let dest = &cx.config.destination;
    let s3 = &cx.clients.destination;
    let key_arn = cx.key_arn.clone().unwrap_or_default();
    let probes = permissions::probe_prefix(&dest.prefix);
    let key = format!("{probes}probe-{}", replicator_core::clock::now_ms());
    let put = s3
        .put_object()
        .bucket(&dest.bucket)
        .key(&key)
        .body(b"s3-fallback-replicator doctor probe".to_vec().into())
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&dest.kms_key_id)
        .bucket_key_enabled(dest.bucket_key_enabled)
        .send()
        .await
        .map_err(on_error(
            format!(
                "the destination role cannot write s3://{}/{key} with SSE-KMS",
                dest.bucket
            ),
            format!(
                "allow the destination role: {} and {}",
                statement(
                    permissions::DESTINATION_OBJECT_ACTIONS,
                    &format!("{}/{}*", cx.dst_arn, dest.prefix)
                ),
                statement_via_s3(
                    permissions::DESTINATION_KEY_ACTIONS,
                    &key_arn,
                    &cx.destination_region
                )
            ),
        ))?;
    let written_with = s3
        .head_object()
        .bucket(&dest.bucket)
        .key(&key)
        .send()
        .await
        .ok()
        .and_then(|h| h.ssekms_key_id().map(str::to_owned));
    let deleted = s3
        .delete_object()
        .bucket(&dest.bucket)
        .key(&key)
        .set_version_id(put.version_id().map(str::to_owned))
        .send()
        .await;
    let matches = written_with
        .as_deref()
        .is_some_and(|k| k == key_arn || k == dest.kms_key_id);
    match (matches, deleted) {
        (true, Ok(_)) => Ok(format!(
            "wrote, read back SSE-KMS key {key_arn}, deleted s3://{}/{key}",
            dest.bucket
        )),
        (false, _) => Err(failed(
            format!("the probe was encrypted with {written_with:?}, not {key_arn}"),
            "S3 did not use the configured key (a bucket policy or default encryption may override it)",
            "check the destination bucket policy for conditions on s3:x-amz-server-side-encryption-aws-kms-key-id",
        )),
        (true, Err(e)) => Err(failed(
            message(&e),
            format!(
                "the probe s3://{}/{key} could not be deleted and is left behind",
                dest.bucket
            ),
            format!(
                "allow the destination role: {}",
                statement(
                    permissions::DESTINATION_PROBE_ACTIONS,
                    &format!("{}/{probes}*", cx.dst_arn)
                )
            ),
        )),
    }
}
