//! Behaviour no emulator produces — throttling, KMS refusals, access denied with S3's own
//! wording — through SDK-level mocks (aws-smithy-mocks), checking what the engine makes of
//! each: retryable or not, and an error that names the resource, principal and action.

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use replicator_core::{Clients, Config, ObjectRequest, Outcome, ReplicationError, Replicator};

const KEY_ARN: &str = "arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn config() -> Config {
    Config::from_lookup(|k| {
        Some(
            match k {
                "SOURCE_BUCKET" => "src-bucket",
                "DESTINATION_BUCKET" => "dst-bucket",
                "DESTINATION_ROLE_ARN" => "arn:aws:iam::222222222222:role/replicator-destination",
                "DESTINATION_KMS_KEY_ID" => KEY_ARN,
                // These tests script the streaming path (GET, then PUT).
                "SERVER_SIDE_COPY" => "off",
                _ => return None,
            }
            .to_owned(),
        )
    })
    .unwrap()
}

fn response(status: u16, body: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(body.to_owned()),
    )
}

fn s3_error(code: &str, message: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>")
}

/// The source's answer to GetObject: one small object, version v1.
fn source_object() -> Rule {
    mock!(Client::get_object).then_output(|| {
        GetObjectOutput::builder()
            .body(ByteStream::from_static(b"abc"))
            .content_length(3)
            .e_tag("\"etag\"")
            .version_id("v1")
            .last_modified(DateTime::from_secs(1_700_000_000))
            .build()
    })
}

/// A source with one small object, a destination without a replica, and `put` as the
/// destination's answer to PutObject.
fn replicator(put: Rule) -> Replicator {
    let get = source_object();
    let head = mock!(Client::head_object).then_http_response(|| response(404, ""));
    let source = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[&get]);
    let destination = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[&head, &put]);
    Replicator::new(
        config(),
        Clients {
            source,
            destination,
            destination_sdk: aws_config::SdkConfig::builder().build(),
        },
    )
}

fn request() -> ObjectRequest {
    ObjectRequest::created("src-bucket", "reports/q1.csv").with_version(Some("v1".into()))
}

#[tokio::test]
async fn persistent_throttling_is_retryable() {
    let put = mock!(Client::put_object).then_http_response(|| {
        response(
            503,
            &s3_error("SlowDown", "Please reduce your request rate."),
        )
    });
    let err = replicator(put).replicate(&request()).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("SlowDown") && text.contains("s3://dst-bucket/reports/q1.csv"),
        "{text}"
    );
}

#[tokio::test]
async fn throttling_that_clears_is_retried_away() {
    let put = mock!(Client::put_object)
        .sequence()
        .http_status(
            503,
            Some(s3_error("SlowDown", "Please reduce your request rate.")),
        )
        .output(|| {
            aws_sdk_s3::operation::put_object::PutObjectOutput::builder()
                .version_id("r1")
                .build()
        })
        .build();
    // The SDK's standard retry strategy, as deployed, retries 503 SlowDown.
    let outcome = replicator(put).replicate(&request()).await.unwrap();
    assert!(
        matches!(outcome, Outcome::Copied { bytes: 3, .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn kms_access_denied_names_the_action_the_key_and_the_role() {
    let put = mock!(Client::put_object).then_http_response(|| {
        response(
            403,
            &s3_error(
                "AccessDenied",
                &format!(
                    "User: arn:aws:sts::222222222222:assumed-role/replicator-destination/fn is not authorized to \
                     perform: kms:GenerateDataKey on resource: {KEY_ARN} because no identity-based policy allows it"
                ),
            ),
        )
    });
    let err = replicator(put).replicate(&request()).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        matches!(err, ReplicationError::AccessDenied { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    for needle in [
        "kms:GenerateDataKey",
        KEY_ARN,
        "destination role arn:aws:iam::222222222222:role/replicator-destination",
        "s3://dst-bucket/reports/q1.csv",
    ] {
        assert!(text.contains(needle), "{needle} missing from: {text}");
    }
}

#[tokio::test]
async fn a_disabled_key_is_a_permanent_kms_error() {
    let put = mock!(Client::put_object).then_http_response(|| {
        response(
            400,
            &s3_error("KMS.DisabledException", &format!("{KEY_ARN} is disabled.")),
        )
    });
    let err = replicator(put).replicate(&request()).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        matches!(err, ReplicationError::KmsKeyUnusable { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(KEY_ARN), "{err}");
}

#[tokio::test]
async fn a_lost_race_is_decided_again() {
    // The first conditional PUT loses (412); the second HEAD sees a replica from the same
    // source version, so nothing more is written.
    let head = mock!(Client::head_object)
        .sequence()
        .http_status(404, None)
        .output(|| {
            aws_sdk_s3::operation::head_object::HeadObjectOutput::builder()
                .e_tag("\"replica\"")
                .metadata("replicator-source", "src-bucket/reports/q1.csv")
                .metadata("replicator-source-version-id", "v1")
                .metadata("replicator-source-etag", "etag")
                .metadata("replicator-source-last-modified", "1700000000")
                .build()
        })
        .build();
    let put = mock!(Client::put_object).then_http_response(|| {
        response(
            412,
            &s3_error(
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            ),
        )
    });
    // An up-to-date replica: the destination's Object Lock is asked once (it has none).
    let lock = mock!(Client::get_object_lock_configuration).then_http_response(|| {
        response(
            404,
            &s3_error(
                "ObjectLockConfigurationNotFoundError",
                "Object Lock configuration does not exist for this bucket",
            ),
        )
    });
    let get = source_object();
    let source = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[&get]);
    let destination = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[&head, &put, &lock]);
    let replicator = Replicator::new(
        config(),
        Clients {
            source,
            destination,
            destination_sdk: aws_config::SdkConfig::builder().build(),
        },
    );
    let outcome = replicator.replicate(&request()).await.unwrap();
    assert!(matches!(outcome, Outcome::Skipped { .. }), "{outcome:?}");
    assert_eq!(put.num_calls(), 1);
    assert_eq!(lock.num_calls(), 1);
}
