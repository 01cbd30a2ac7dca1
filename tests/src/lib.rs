//! The local two-account AWS emulator harness shared by the end-to-end tests and the demo.
//!
//! [`emulator()`] starts moto's server once per process on a free loopback port (from the
//! project's `.venv`, made by `scripts/setup`). [`World::new`] then creates, with unique
//! names, what a real deployment has: a source account (the default credentials) with a
//! versioned source bucket encrypted by default with its own KMS key, and a destination
//! account (credentials from STS AssumeRole on a role ARN in account 222222222222) with a
//! versioned destination bucket and a KMS key.

pub mod cargo_lambda;
pub mod faults;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

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
use sha2::{Digest, Sha256};

pub const REGION: &str = "us-east-1";
pub const SOURCE_ACCOUNT: &str = "123456789012";
pub const DESTINATION_ACCOUNT: &str = "222222222222";
pub const DESTINATION_ROLE: &str = "arn:aws:iam::222222222222:role/replicator-destination";
pub const EXTERNAL_ID: &str = "replicator-test-external-id";

/// The workspace root (this crate lives in `tests/`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// A running moto server.
pub struct Emulator {
    pub port: u16,
    _child: Mutex<Child>,
}

impl Emulator {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Starts a moto server for this process, once. It stops when the process exits (its stdin
/// pipe closes).
pub fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(start_emulator)
}

/// Starts a separate moto server owned by the caller (for tests that want a fresh one).
pub fn start_emulator() -> Emulator {
    let python = std::env::var_os("REPLICATOR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "{} not found: run ./scripts/setup (or ./scripts/test) first, which creates the venv with the pinned moto",
        python.display()
    );
    let mut child = Command::new(&python)
        .arg(workspace().join("tests/moto_runner.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto");
    let stdout = child.stdout.take().expect("moto stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read moto port");
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("moto printed {line:?}, not a port"));
    Emulator {
        port,
        _child: Mutex::new(child),
    }
}

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
    let sts = aws_sdk_sts::Client::new(source);
    let assumed = sts
        .assume_role()
        .role_arn(DESTINATION_ROLE)
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

fn unique(prefix: &str) -> String {
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
        self.dst
            .list_multipart_uploads()
            .bucket(&self.destination_bucket)
            .send()
            .await
            .expect("list multipart uploads")
            .uploads()
            .len()
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

    /// A fixture from `events/`, with its placeholder bucket replaced by this world's
    /// source bucket.
    pub fn fixture(&self, name: &str) -> Value {
        let text = std::fs::read_to_string(workspace().join("events").join(name))
            .unwrap_or_else(|e| panic!("events/{name}: {e}"));
        let text = text.replace(FIXTURE_BUCKET, &self.source_bucket);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("events/{name}: {e}"))
    }
}

/// What the emulator saw of every request so far (see `tests/moto_runner.py`): method, path,
/// query, signing access key, expected-owner headers, and AssumeRole's RoleArn/ExternalId.
pub fn captured_requests(endpoint: &str) -> Vec<Value> {
    use std::io::{Read, Write};
    let address = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the emulator");
    write!(stream, "GET /_capture HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the capture");
    let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    body.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The bucket name the fixtures in `events/` use; tests substitute their own.
pub const FIXTURE_BUCKET: &str = "example-source-bucket";

async fn create_key(sdk: &SdkConfig, description: &str) -> (String, String) {
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

async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str, default_key: &str) {
    s3.create_bucket()
        .bucket(bucket)
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

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Deterministic pseudo-random bytes (a test's data, reproducible from its seed).
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

pub use replicator_core::key::encode_event_key as form_encode;
