//! The destination side, through the destination role: assuming it, and the destination
//! bucket's owner (ExpectedBucketOwner), versioning and default encryption.

use replicator_core::permissions;

use super::report::{
    answer, failed, message, not_a_permission, on_error_or_missing, statement, versioning_enabled,
    Answer, Verdict,
};
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
        Err(e) if answer(&e) == Answer::Other => Err(not_a_permission(&e)),
        Err(e) => {
            let me = cx
                .caller
                .as_deref()
                .map(principal_arn)
                .unwrap_or_else(|| "<the caller's ARN>".into());
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
            // A session's ARN drops its role's path, which aws:PrincipalArn keeps.
            let path = if me.contains(":role/") {
                " — with the role's path if it has one (an IAM Identity Center role's is aws-reserved/sso.amazonaws.com/; `aws iam get-role --role-name NAME --query Role.Arn` prints it)"
            } else {
                ""
            };
            // Never "add me to the trust policy": a trust added by hand outlives the check.
            Err(failed(
                message(&e),
                cause,
                format!(
                    "run the doctor as the functions' role, or trust it for a day only: in the destination account, deploy deploy/destination-account.yaml with DoctorPrincipalArn={me}{path} DoctorTrustExpires=<UTC time, e.g. tomorrow> (the same ExternalId as the functions); the trust ends by itself, and the doctor reports any other"
                ),
            ))
        }
    }
}

/// The IAM principal behind a caller ARN: an assumed-role session becomes its role (as
/// `aws:PrincipalArn` gives it), an STS-style user ARN its IAM user.
pub fn principal_arn(caller: &str) -> String {
    let parts: Vec<&str> = caller.splitn(6, ':').collect();
    if parts.len() < 6 || parts[2] != "sts" {
        return caller.to_owned();
    }
    let (partition, account, resource) = (parts[1], parts[4], parts[5]);
    match resource.split('/').collect::<Vec<_>>().as_slice() {
        ["assumed-role", role, ..] => format!("arn:{partition}:iam::{account}:role/{role}"),
        _ => format!("arn:{partition}:iam::{account}:{resource}"),
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
            let (cause, fix) = match answer(&e) {
                Answer::Other => return Err(not_a_permission(&e)),
                Answer::Missing => (
                    format!("bucket {} does not exist", dest.bucket),
                    format!(
                        "create it in account {} (deploy/destination-account.yaml with CreateBucket=true) or fix DESTINATION_BUCKET",
                        dest.account_id
                    ),
                ),
                Answer::Denied => (
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
        .map_err(on_error_or_missing(
            "the destination role cannot read the bucket's default encryption",
            allow_bucket(cx),
            format!(
                "s3://{} has no default encryption configuration: replicas are still written with DESTINATION_KMS_KEY_ID, but anything else written there is not",
                cx.config.destination.bucket
            ),
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
