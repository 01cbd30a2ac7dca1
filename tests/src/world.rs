//! A two-account world on the emulator: both accounts' SDK configurations, buckets and KMS
//! keys, and the replicator, handler, syncer and CLI arguments configured for them.

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use event_copier::Handler;
use replicator_core::{Clients, Config, Replicator};
use serde_json::Value;

use crate::{
    emulator, workspace, DESTINATION_ACCOUNT, DESTINATION_ROLE, DOCTOR_PRINCIPAL, EXTERNAL_ID,
    FIXTURE_BUCKET, FUNCTION_ROLE, REGION,
};

fn static_credentials(id: &str, secret: &str, token: Option<String>) -> Credentials {
    Credentials::new(id, secret, token, None, "replicator-tests")
}

/// SDK configuration acting as the source account (moto's default account).
pub async fn source_sdk(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(static_credentials(
            "AKIAIOSFODNN7EXAMPLE",
            "source-secret",
            None,
        ))
        .load()
        .await
}

/// SDK configuration acting as the destination account: credentials from AssumeRole.
pub async fn destination_sdk(source: &SdkConfig) -> SdkConfig {
    acting_as(source, DESTINATION_ROLE).await
}

/// SDK configuration acting as `role` (its account): credentials from AssumeRole.
pub async fn acting_as(source: &SdkConfig, role: &str) -> SdkConfig {
    let sts = aws_sdk_sts::Client::new(source);
    let assumed = sts
        .assume_role()
        .role_arn(role)
        .role_session_name("test-admin")
        .external_id(EXTERNAL_ID)
        .send()
        .await
        .expect("assume destination role");
    let c = assumed.credentials().expect("credentials");
    source
        .to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(static_credentials(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_owned()),
            )),
        )
        .build()
}

pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// Two accounts, their keys and buckets, and plain SDK clients to check results with.
pub struct World {
    pub endpoint: String,
    pub source_sdk: SdkConfig,
    pub destination_sdk: SdkConfig,
    /// Source account's S3 client.
    pub src: aws_sdk_s3::Client,
    /// Destination account's S3 client.
    pub dst: aws_sdk_s3::Client,
    pub source_bucket: String,
    pub destination_bucket: String,
    pub source_key_arn: String,
    pub destination_key_arn: String,
    pub destination_key_id: String,
    /// Extra settings for the replicator, on top of [`World::vars`].
    pub overrides: HashMap<&'static str, String>,
}

pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

impl World {
    /// Creates both accounts' buckets and keys on the shared emulator.
    pub async fn new() -> World {
        Self::on(&emulator().endpoint()).await
    }

    pub async fn on(endpoint: &str) -> World {
        let source_sdk = source_sdk(endpoint).await;
        let destination_sdk = destination_sdk(&source_sdk).await;
        create_destination_role(&destination_sdk).await;
        let src = s3_client(&source_sdk);
        let dst = s3_client(&destination_sdk);

        let source_key_arn = create_key(&source_sdk, "source bucket key").await.1;
        let (destination_key_id, destination_key_arn) =
            create_key(&destination_sdk, "replica key").await;

        let source_bucket = unique("src");
        let destination_bucket = unique("dst");
        create_bucket(&src, &source_bucket, &source_key_arn).await;
        let dest_default_key = create_key(&destination_sdk, "destination bucket default key")
            .await
            .1;
        // The destination bucket's default key differs from DESTINATION_KMS_KEY_ID, so a test
        // catches a replica that relied on the default instead of the configured key.
        create_bucket(&dst, &destination_bucket, &dest_default_key).await;

        World {
            endpoint: endpoint.to_owned(),
            source_sdk,
            destination_sdk,
            src,
            dst,
            source_bucket,
            destination_bucket,
            source_key_arn,
            destination_key_arn,
            destination_key_id,
            overrides: HashMap::new(),
        }
    }

    /// The runtime contract's variables for this world.
    pub fn vars(&self) -> HashMap<&'static str, String> {
        let mut vars = HashMap::from([
            ("SOURCE_BUCKET", self.source_bucket.clone()),
            ("DESTINATION_BUCKET", self.destination_bucket.clone()),
            ("DESTINATION_ROLE_ARN", DESTINATION_ROLE.to_owned()),
            ("DESTINATION_EXTERNAL_ID", EXTERNAL_ID.to_owned()),
            ("DESTINATION_KMS_KEY_ID", self.destination_key_arn.clone()),
            ("DESTINATION_ACCOUNT_ID", DESTINATION_ACCOUNT.to_owned()),
            ("S3_FORCE_PATH_STYLE", "true".to_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", "event-copier-test".to_owned()),
            // Streaming by default; the server-side path has its own tests.
            ("SERVER_SIDE_COPY", "off".to_owned()),
        ]);
        vars.extend(self.overrides.clone());
        vars
    }

    pub fn config(&self) -> Config {
        self.register();
        let vars = self.vars();
        Config::from_lookup(|k| vars.get(k).cloned()).expect("valid test configuration")
    }

    pub async fn replicator(&self) -> Replicator {
        let config = self.config();
        let clients = Clients::new(&self.source_sdk, &config).await;
        Replicator::new(config, clients)
    }

    /// A scheduled-sync engine for this world (SYNC_* settings from `overrides`), with an
    /// SQS client when SYNC_QUEUE_URL is set.
    pub async fn syncer(&self) -> replicator_core::sync::Syncer {
        let vars = self.vars();
        let sync = replicator_core::sync::SyncConfig::from_lookup(|k| vars.get(k).cloned())
            .expect("valid sync settings");
        let sqs = sync
            .queue_url
            .as_ref()
            .map(|_| aws_sdk_sqs::Client::new(&self.source_sdk));
        replicator_core::sync::Syncer::new(
            self.replicator().await,
            sqs,
            sync,
            Some(REGION.to_owned()),
        )
    }

    /// `replicator SUBCOMMAND…` with this world's configuration as flags.
    pub fn cli_args(&self, args: &[&str]) -> Vec<String> {
        self.register();
        let mut argv = vec!["replicator".to_owned()];
        argv.extend(args.iter().map(|a| a.to_string()));
        for (k, v) in self.vars() {
            if k != "AWS_LAMBDA_FUNCTION_NAME" {
                argv.push(format!("--{}", k.to_ascii_lowercase().replace('_', "-")));
                argv.push(v);
            }
        }
        argv
    }

    pub async fn handler(&self) -> Handler {
        Handler::new(
            self.replicator().await,
            Some(REGION.to_owned()),
            "event-copier-test",
        )
    }

    /// Records this world's configuration in the emulator's request log, when there is one
    /// (`REPLICATOR_REQUEST_LOG`): the policy proof evaluates each request against the
    /// policies of the world that sent it.
    pub fn register(&self) {
        if std::env::var_os("REPLICATOR_REQUEST_LOG").is_none() {
            return;
        }
        let mut world: serde_json::Map<String, Value> = self
            .vars()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect();
        world.insert("source_key_arn".into(), self.source_key_arn.clone().into());
        world.insert(
            "destination_key_arn".into(),
            self.destination_key_arn.clone().into(),
        );
        crate::emulator::record_world(&self.endpoint, &Value::Object(world));
    }

    /// Sets one of the replicator's variables for this world.
    pub fn set(&mut self, variable: &'static str, value: impl Into<String>) {
        self.overrides.insert(variable, value.into());
    }

    /// This world, with a new source bucket `name` in the source account (versioning never
    /// enabled, no default encryption).
    pub async fn with_source_bucket(self, name: String) -> World {
        self.src
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
        World {
            source_bucket: name,
            ..self
        }
    }

    /// This world with new, empty buckets where Object Lock is enabled as asked (versioned,
    /// encrypted by default as every world's are).
    pub async fn with_object_lock(self, source: bool, destination: bool) -> World {
        let source_bucket = unique("src-lock");
        create_bucket_with(&self.src, &source_bucket, &self.source_key_arn, source).await;
        let destination_bucket = unique("dst-lock");
        let dest_default_key = create_key(&self.destination_sdk, "destination bucket default key")
            .await
            .1;
        create_bucket_with(
            &self.dst,
            &destination_bucket,
            &dest_default_key,
            destination,
        )
        .await;
        World {
            source_bucket,
            destination_bucket,
            ..self
        }
    }

    /// Writes a destination object this replicator did not write (no provenance).
    pub async fn put_foreign(&self, key: &str, body: &[u8]) {
        self.dst
            .put_object()
            .bucket(&self.destination_bucket)
            .key(key)
            // Under the replica key: the replicator's role may read what another writer left
            // (under a key of its own it would be denied before it could judge the object).
            .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.destination_key_arn)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put destination {key}: {e:?}"));
    }

    /// Puts many source objects concurrently.
    pub async fn put_all(&self, objects: &BTreeMap<String, Vec<u8>>) {
        futures::stream::iter(objects.iter())
            .for_each_concurrent(16, |(k, v)| async move {
                self.put(k, v.clone()).await;
            })
            .await;
    }

    /// Puts `count` source objects, object `i` at `key(i)` with `size(i)` bytes of data
    /// seeded by `i`; returns them by key.
    pub async fn put_numbered(
        &self,
        count: u64,
        key: impl Fn(u64) -> String,
        size: impl Fn(u64) -> usize,
    ) -> BTreeMap<String, Vec<u8>> {
        let objects = (0..count)
            .map(|i| (key(i), crate::bytes(size(i), i)))
            .collect();
        self.put_all(&objects).await;
        objects
    }

    /// Deletes a source key: in a versioned source a delete marker, whose version id this
    /// returns.
    pub async fn delete_source(&self, key: &str) -> Option<String> {
        let out = self
            .src
            .delete_object()
            .bucket(&self.source_bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("delete source {key}: {e:?}"));
        out.delete_marker()
            .unwrap_or(false)
            .then(|| out.version_id().map(str::to_owned))
            .flatten()
    }

    /// Acts as native S3 replication for one source version (see `tests/moto_runner.py`):
    /// `status` PENDING, COMPLETED (the replica is written, REPLICA, with the source's
    /// version id) or FAILED (the answer holds the failure event S3 would send, with
    /// `failure_reason`).
    pub fn native_replication(
        &self,
        key: &str,
        version_id: &str,
        status: &str,
        failure_reason: &str,
    ) -> Value {
        let request = serde_json::json!({
            "source_bucket": self.source_bucket, "key": key, "version_id": version_id,
            "destination_bucket": self.destination_bucket, "status": status,
            "failure_reason": failure_reason,
        });
        let answer = crate::emulator::control(
            &self.endpoint,
            "POST",
            "/_native/replicate",
            &request.to_string(),
        );
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
    }

    /// A request for the current version of a source key.
    pub fn request(&self, key: &str) -> replicator_core::ObjectRequest {
        replicator_core::ObjectRequest::created(self.source_bucket.clone(), key)
    }

    /// Uploads a source object; returns its version id.
    pub async fn put(&self, key: &str, body: impl Into<Vec<u8>>) -> String {
        self.put_with(key, body, |p| p).await
    }

    pub async fn put_with(
        &self,
        key: &str,
        body: impl Into<Vec<u8>>,
        f: impl FnOnce(
            aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder,
        ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder,
    ) -> String {
        let put = self
            .src
            .put_object()
            .bucket(&self.source_bucket)
            .key(key)
            .body(ByteStream::from(body.into()));
        f(put)
            .send()
            .await
            .unwrap_or_else(|e| panic!("put source {key}: {e:?}"))
            .version_id()
            .expect("versioned source")
            .to_owned()
    }

    /// A fixture from `events/`, with its placeholder bucket replaced by this world's
    /// source bucket.
    pub fn fixture(&self, name: &str) -> Value {
        let text = std::fs::read_to_string(workspace().join("events").join(name))
            .unwrap_or_else(|e| panic!("events/{name}: {e}"));
        let text = text.replace(FIXTURE_BUCKET, &self.source_bucket);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("events/{name}: {e}"))
    }
}

/// The destination role's trust policy as deploy/destination-account.yaml writes it: the
/// functions' role and, until `doctor_until`, the doctor's principal, both with the
/// ExternalId.
pub fn trust_policy(doctor_until: Option<&str>) -> Value {
    let one = |arn: &str| {
        serde_json::json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID},
            "ArnEquals": {"aws:PrincipalArn": arn}}})
    };
    let mut doctor = one(DOCTOR_PRINCIPAL);
    if let Some(until) = doctor_until {
        doctor["Condition"]["DateLessThan"] = serde_json::json!({"aws:CurrentTime": until});
    }
    serde_json::json!({"Version": "2012-10-17", "Statement": [one(FUNCTION_ROLE), doctor]})
}

/// The destination role in the destination account's IAM (the emulator's STS does not need
/// it; the doctor reads its trust policy), once per emulator.
pub(crate) async fn create_destination_role(destination: &SdkConfig) {
    let name = DESTINATION_ROLE.rsplit('/').next().unwrap();
    let created = aws_sdk_iam::Client::new(destination)
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust_policy(Some("2099-01-01T00:00:00Z")).to_string())
        .send()
        .await;
    if let Err(e) = created {
        let text = format!("{e:?}");
        assert!(
            text.contains("EntityAlreadyExists"),
            "create {name}: {text}"
        );
    }
}

pub(crate) async fn create_key(sdk: &SdkConfig, description: &str) -> (String, String) {
    let kms = aws_sdk_kms::Client::new(sdk);
    let key = kms
        .create_key()
        .description(description)
        .send()
        .await
        .expect("create KMS key");
    let meta = key.key_metadata().expect("key metadata");
    (
        meta.key_id().to_owned(),
        meta.arn().expect("key arn").to_owned(),
    )
}

pub(crate) async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str, default_key: &str) {
    create_bucket_with(s3, bucket, default_key, false).await
}

async fn create_bucket_with(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    default_key: &str,
    object_lock: bool,
) {
    s3.create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(object_lock)
        .send()
        .await
        .expect("create bucket");
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("enable versioning");
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(
            ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::AwsKms)
                .kms_master_key_id(default_key)
                .build()
                .expect("sse default"),
        )
        .bucket_key_enabled(true)
        .build();
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(rule)
                .build()
                .expect("sse config"),
        )
        .send()
        .await
        .expect("default encryption");
}
