//! The destination side, through the destination role: assuming it, and the destination
//! bucket's owner (ExpectedBucketOwner), versioning and default encryption.

use replicator_core::permissions;
use serde_json::json;

use super::report::{failed, message, on_error, statement, status, versioning_enabled, Verdict};
use super::Context;

pub async fn assume_role(cx: &mut Context<'_>) -> Verdict {
    let dest = &cx.config.destination;
    let mut assume = cx
        .sts
        .assume_role()
        .role_arn(&dest.role_arn)
        .role_session_name("replicator-doctor");
    if let Some(id) = &dest.external_id {
        assume = assume.external_id(id);
    }
    match assume.send().await {
        Ok(out) => {
            let arn = out
                .assumed_role_user()
                .map(|u| u.arn().to_owned())
                .unwrap_or_default();
            let note = if dest.external_id.is_none() {
                " (no DESTINATION_EXTERNAL_ID: set one and require it in the trust policy)"
            } else {
                ""
            };
            Ok(format!("{arn}{note}"))
        }
        Err(e) => {
            let me = cx
                .caller
                .clone()
                .unwrap_or_else(|| "<the function role ARN>".into());
            let mut trust =
                json!({"Effect": "Allow", "Principal": {"AWS": me}, "Action": "sts:AssumeRole"});
            if let Some(id) = &dest.external_id {
                trust["Condition"] = json!({"StringEquals": {"sts:ExternalId": id}});
            }
            let cause = if dest.external_id.is_none() {
                format!(
                    "STS refused AssumeRole on {} and no ExternalId was sent: the role does not trust {me}, requires an ExternalId (set DESTINATION_EXTERNAL_ID), or does not exist",
                    dest.role_arn
                )
            } else {
                format!(
                    "STS refused AssumeRole on {} (it answers alike for all three): the role's trust policy does not name {me}, the ExternalId differs from the one it requires, or the role does not exist",
                    dest.role_arn
                )
            };
            Err(failed(
                message(&e),
                cause,
                format!(
                    "in the destination account, add to the trust policy of {}: {trust} (and allow sts:AssumeRole on it to the caller)",
                    dest.role_arn
                ),
            ))
        }
    }
}

/// The fix for a destination-bucket read the role may not make.
fn allow_bucket(cx: &Context<'_>) -> String {
    format!(
        "allow the destination role: {}",
        statement(permissions::DESTINATION_BUCKET_ACTIONS, &cx.dst_arn)
    )
}

pub async fn bucket(cx: &mut Context<'_>) -> Verdict {
    let dest = &cx.config.destination;
    match cx
        .clients
        .destination
        .head_bucket()
        .bucket(&dest.bucket)
        .send()
        .await
    {
        Ok(_) => Ok(format!("s3://{} owned by {}", dest.bucket, dest.account_id)),
        Err(e) => {
            let (cause, fix) = match status(&e) {
                Some(404) => (
                    format!("bucket {} does not exist", dest.bucket),
                    format!(
                        "create it in account {} (deploy/destination-account.yaml with CreateBucket=true) or fix DESTINATION_BUCKET",
                        dest.account_id
                    ),
                ),
                _ => (
                    format!(
                        "bucket {} is not owned by account {} (DESTINATION_ACCOUNT_ID), or the destination role may not list it",
                        dest.bucket, dest.account_id
                    ),
                    format!(
                        "set DESTINATION_ACCOUNT_ID to the bucket owner's account, or {}",
                        allow_bucket(cx)
                    ),
                ),
            };
            Err(failed(message(&e), cause, fix))
        }
    }
}

pub async fn versioning(cx: &mut Context<'_>) -> Verdict {
    versioning_enabled(
        &cx.clients.destination,
        &cx.config.destination.bucket,
        "a replaced replica is lost instead of kept as an older version",
        "the destination role cannot read the bucket's versioning state",
        allow_bucket(cx),
    )
    .await
}

pub async fn encryption(cx: &mut Context<'_>) -> Verdict {
    let out = cx
        .clients
        .destination
        .get_bucket_encryption()
        .bucket(&cx.config.destination.bucket)
        .send()
        .await
        .map_err(on_error(
            "the destination role cannot read the bucket's default encryption",
            allow_bucket(cx),
        ))?;
    let detail = out
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .map(|r| {
            format!(
                "{} {}",
                r.sse_algorithm().as_str(),
                r.kms_master_key_id().unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "none".into());
    Ok(format!(
        "{detail} (replicas are written with DESTINATION_KMS_KEY_ID regardless)"
    ))
}
