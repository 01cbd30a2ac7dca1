//! The two S3 clients: the source read with the function's own credentials, the destination
//! written with credentials from STS AssumeRole on the destination role.

use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};

use crate::config::Config;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Header S3 checks against the bucket's owner; a mismatch is a 403 and nothing is written.
pub const EXPECTED_BUCKET_OWNER: &str = "x-amz-expected-bucket-owner";

/// Puts `x-amz-expected-bucket-owner` on every request of a client, so no request (a part
/// upload, a HEAD, a completion) can reach a bucket owned by another account.
#[derive(Debug, Clone)]
pub struct ExpectedBucketOwner(pub String);

impl Intercept for ExpectedBucketOwner {
    fn name(&self) -> &'static str {
        "ExpectedBucketOwner"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.request_mut().headers_mut();
        if !headers.contains_key(EXPECTED_BUCKET_OWNER) {
            headers.insert(EXPECTED_BUCKET_OWNER, self.0.clone());
        }
        Ok(())
    }
}

/// Both S3 clients, built once per cold start and shared by every invocation.
#[derive(Debug, Clone)]
pub struct Clients {
    pub source: aws_sdk_s3::Client,
    pub destination: aws_sdk_s3::Client,
    /// The SDK configuration acting as the destination role (for other services' clients,
    /// such as KMS in `replicator doctor`).
    pub destination_sdk: SdkConfig,
}

impl Clients {
    /// Builds both clients from the shared SDK configuration (region, endpoint, retries,
    /// the function's credentials). The destination credentials come from an
    /// [`AssumeRoleProvider`]; the client's identity cache refreshes them before expiry.
    pub async fn new(sdk: &SdkConfig, config: &Config) -> Self {
        let dest = &config.destination;
        let destination_region = dest
            .region
            .clone()
            .map(Region::new)
            .or_else(|| sdk.region().cloned());

        let mut role = AssumeRoleProvider::builder(dest.role_arn.clone())
            .session_name(config.runtime.role_session_name.clone())
            .configure(sdk);
        if let Some(id) = &dest.external_id {
            role = role.external_id(id.clone());
        }
        if let Some(length) = dest.session_length {
            role = role.session_length(length);
        }
        if let Some(region) = sdk.region() {
            // STS is called in the function's own region (regional endpoint).
            role = role.region(region.clone());
        }
        let role = role.build().await;

        let mut source = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(config.runtime.force_path_style);
        if let Some(owner) = &config.source.account_id {
            source = source.interceptor(ExpectedBucketOwner(owner.clone()));
        }

        let mut destination_sdk = sdk.to_builder().credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(role),
        );
        if let Some(region) = destination_region {
            destination_sdk = destination_sdk.region(region);
        }
        let destination_sdk = destination_sdk.build();
        let destination = aws_sdk_s3::config::Builder::from(&destination_sdk)
            .force_path_style(config.runtime.force_path_style)
            .interceptor(ExpectedBucketOwner(dest.account_id.clone()));

        Self {
            source: aws_sdk_s3::Client::from_conf(source.build()),
            destination: aws_sdk_s3::Client::from_conf(destination.build()),
            destination_sdk,
        }
    }
}
