//! The source side, with the caller's credentials: who is asking, the source bucket, its
//! versioning and default encryption, an object and its tags, and the source key.

use aws_sdk_kms::types::KeyState;
use aws_sdk_s3::types::ServerSideEncryption;
use replicator_core::permissions;

use super::report::{
    answer, failed, message, not_a_permission, on_error, on_error_or_missing, statement,
    versioning_enabled, Answer, Verdict,
};
use super::Context;

pub async fn caller_identity(cx: &mut Context<'_>) -> Verdict {
    match cx.sts.get_caller_identity().send().await {
        Ok(out) => {
            let arn = out.arn().unwrap_or_default().to_owned();
            let detail = format!("{arn} (account {})", out.account().unwrap_or("?"));
            cx.caller = Some(arn);
            Ok(detail)
        }
        Err(e) => Err(failed(
            message(&e),
            "no usable AWS credentials for the source account",
            "configure credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/…, or an instance/Lambda role) and the region",
        )),
    }
}

pub async fn bucket(cx: &mut Context<'_>) -> Verdict {
    let source = &cx.config.source;
    match cx
        .clients
        .source
        .head_bucket()
        .bucket(&source.bucket)
        .send()
        .await
    {
        Ok(_) => Ok(format!("s3://{}", source.bucket)),
        Err(e) => {
            let (cause, fix) = match answer(&e) {
                Answer::Missing => (
                    format!(
                        "bucket {} does not exist (or is in another partition)",
                        source.bucket
                    ),
                    "set SOURCE_BUCKET to the bucket's exact name".to_owned(),
                ),
                Answer::Other => return Err(not_a_permission(&e)),
                Answer::Denied => (
                    format!(
                        "access denied to {}{}",
                        source.bucket,
                        source
                            .account_id
                            .as_ref()
                            .map(|a| format!(", or it is not owned by {a} (SOURCE_ACCOUNT_ID)"))
                            .unwrap_or_default()
                    ),
                    format!(
                        "allow the caller/function role: {}",
                        statement(permissions::SOURCE_BUCKET_ACTIONS, &cx.src_arn)
                    ),
                ),
            };
            Err(failed(message(&e), cause, fix))
        }
    }
}

pub async fn versioning(cx: &mut Context<'_>) -> Verdict {
    versioning_enabled(
        &cx.clients.source,
        &cx.config.source.bucket,
        "events cannot name exact versions, and a rewrite replaces the only copy of the source",
        "cannot read the bucket's versioning state",
        format!(
            "allow s3:GetBucketVersioning on {} to the caller",
            cx.src_arn
        ),
    )
    .await
}

pub async fn encryption(cx: &mut Context<'_>) -> Verdict {
    let out = cx
        .clients
        .source
        .get_bucket_encryption()
        .bucket(&cx.config.source.bucket)
        .send()
        .await
        .map_err(on_error_or_missing(
            "cannot read the bucket's default encryption",
            format!(
                "allow s3:GetEncryptionConfiguration on {} to the caller",
                cx.src_arn
            ),
            format!(
                "s3://{} has no default encryption configuration: objects uploaded without encryption headers are stored as S3 decides (SSE-S3 today), and the doctor cannot learn a source KMS key to check",
                cx.config.source.bucket
            ),
        ))?;
    let rule = out
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default());
    Ok(match rule {
        Some(r)
            if r.sse_algorithm() == &ServerSideEncryption::AwsKms
                || r.sse_algorithm() == &ServerSideEncryption::AwsKmsDsse =>
        {
            cx.source_key = r.kms_master_key_id().map(str::to_owned);
            format!(
                "SSE-KMS with {}",
                cx.source_key
                    .as_deref()
                    .unwrap_or("the AWS managed key aws/s3")
            )
        }
        Some(r) => r.sse_algorithm().as_str().to_string(),
        None => "none".to_owned(),
    })
}

pub async fn object(cx: &mut Context<'_>) -> Verdict {
    let source = &cx.config.source;
    let s3 = &cx.clients.source;
    let allow = |resource: &str| {
        format!(
            "allow: {}",
            statement(permissions::SOURCE_OBJECT_ACTIONS, resource)
        )
    };
    let listed = s3
        .list_objects_v2()
        .bucket(&source.bucket)
        .prefix(&source.key_prefix)
        .max_keys(1)
        .send()
        .await
        .map_err(on_error(
            format!("cannot list s3://{}", source.bucket),
            format!(
                "allow: {}",
                statement(permissions::SOURCE_BUCKET_ACTIONS, &cx.src_arn)
            ),
        ))?;
    let Some(key) = listed.contents().first().and_then(|o| o.key()) else {
        return Ok(format!(
            "no object under {:?} yet; nothing to read",
            source.key_prefix
        ));
    };
    let objects = format!("{}/{}*", cx.src_arn, source.key_prefix);
    s3.head_object()
        .bucket(&source.bucket)
        .key(key)
        .send()
        .await
        .map_err(on_error(
            format!(
                "cannot read s3://{}/{key} (s3:GetObject, or kms:Decrypt on its key)",
                source.bucket
            ),
            allow(&objects),
        ))?;
    let tags = s3
        .get_object_tagging()
        .bucket(&source.bucket)
        .key(key)
        .send()
        .await
        .map_err(on_error(
            format!("cannot read the tags of s3://{}/{key}", source.bucket),
            allow(&objects),
        ))?;
    Ok(format!(
        "s3://{}/{key} and its {} tag(s)",
        source.bucket,
        tags.tag_set().len()
    ))
}

pub async fn key(cx: &mut Context<'_>) -> Verdict {
    let Some(key) = cx.source_key.clone() else {
        return Ok("no customer managed key on the source bucket".into());
    };
    let bucket = &cx.config.source.bucket;
    let kms = aws_sdk_kms::Client::new(cx.sdk);
    let out = kms.describe_key().key_id(&key).send().await.map_err(on_error(format!("cannot describe the source key {key}"),
            format!(
                "allow the function role: {{\"Effect\":\"Allow\",\"Action\":[\"kms:Decrypt\",\"kms:DescribeKey\"],\"Resource\":\"{key}\",\"Condition\":{{\"StringEquals\":{{\"kms:ViaService\":\"s3.<region>.amazonaws.com\"}}}}}}"
            )))?;
    let state = out.key_metadata().and_then(|m| m.key_state()).cloned();
    if state == Some(KeyState::Enabled) {
        return Ok(format!("{key}: Enabled"));
    }
    Err(failed(
        format!(
            "{key}: {}",
            state.map(|s| s.as_str().to_owned()).unwrap_or_default()
        ),
        format!("the source key {key} is not enabled: objects of s3://{bucket} cannot be read"),
        format!("aws kms enable-key --key-id {key} (source account)"),
    ))
}
