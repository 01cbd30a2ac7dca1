//! The runtime contract: every setting comes from one environment variable, is parsed and
//! validated once at start-up, and a bad value is an error that names the variable.
//!
//! [`Config`] is composed of four parts — where replicas come from ([`SourceConfig`]), where
//! they go ([`DestinationConfig`]), how bytes move ([`TransferConfig`]) and how the process
//! runs ([`RuntimeConfig`]) — each read by its own function through one [`env::Env`] reader.
//!
//! Where replicas go is a [`RuleSet`] either way: `REPLICATION_RULES` (a document, see
//! [`crate::rules`]) or the single-destination variables, which are one rule. A `Config`
//! is one rule's: [`Config::per_rule`] gives one per enabled rule (the functions run an
//! engine for each, [`crate::fleet::Fleet`]); [`Config::from_lookup`] and [`Config::load`]
//! the one rule of a single-engine command ([`RuleSet::single_rule`]).

pub mod env;
mod sets;
pub mod validate;

use std::fmt;

use thiserror::Error;

use crate::budget::STREAMED_PART_BYTES;
use crate::plan::transfer::{Limits, MAX_PART_SIZE, MAX_SINGLE_PUT, MIN_PART_SIZE};

use crate::rules::{Rule, RuleSet, RulesError, ServerSideCopy};
use env::{invalid, Env};
use sets::{fetch_rules, read_rules};

/// One KiB, MiB and GiB in bytes.
pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

/// Defaults chosen so a 128 MiB function can copy an object of any size.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 * MIB;
pub const DEFAULT_PART_SIZE: u64 = 8 * MIB;
pub const DEFAULT_MAX_IN_FLIGHT_BYTES: u64 = 32 * MIB;
pub const DEFAULT_COPY_CONCURRENCY: usize = 16;

/// A setting that could not be read: always names the variable and the expected form.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{variable} is required but not set ({expected})")]
    Missing {
        variable: &'static str,
        expected: &'static str,
    },
    #[error("{variable}={value:?} is invalid: expected {expected}")]
    Invalid {
        variable: &'static str,
        value: String,
        expected: String,
    },
    #[error("REPLICATION_RULES: {0}")]
    Rules(#[from] RulesError),
    #[error("{variable} cannot be set together with REPLICATION_RULES: the rules name every destination and filter (unset {variable}, or REPLICATION_RULES)")]
    WithRules { variable: &'static str },
    #[error("REPLICATION_RULES={location} must be read before the configuration is built (Config::load)")]
    RulesNotRead { location: String },
}

/// How each additional checksum is computed; S3 verifies it on every PUT and part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32C,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub fn to_sdk(self) -> aws_sdk_s3::types::ChecksumAlgorithm {
        use aws_sdk_s3::types::ChecksumAlgorithm as A;
        match self {
            Self::Crc32 => A::Crc32,
            Self::Crc32C => A::Crc32C,
            Self::Crc64Nvme => A::Crc64Nvme,
            Self::Sha1 => A::Sha1,
            Self::Sha256 => A::Sha256,
        }
    }
}

/// Everything the engine needs, read once per cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub source: SourceConfig,
    pub destination: DestinationConfig,
    pub transfer: TransferConfig,
    pub runtime: RuntimeConfig,
    /// Where replicas go, as rules; `destination` and `source.key_prefix` are its one rule's.
    pub rules: RuleSet,
    /// The rule this engine carries out.
    pub rule_id: String,
}

/// The source bucket and what of it is replicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    pub bucket: String,
    /// Expected owner of the source bucket, sent as ExpectedBucketOwner on source requests.
    pub account_id: Option<String>,
    /// Only keys under this prefix are replicated.
    pub key_prefix: String,
    /// Beside native replication: copy everything (native replicas are recognised either
    /// way), or only what native replication failed or left pending too long.
    pub native: NativeMode,
    /// Archived sources (GLACIER, DEEP_ARCHIVE, Intelligent-Tiering archive tiers) get a
    /// restore started (RESTORE_ARCHIVED, RESTORE_DAYS); `None` reports them archived.
    pub restore: Option<Restore>,
}

/// How an archived source is restored before it is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restore {
    pub tier: RestoreTier,
    /// How long the restored copy stays readable.
    pub days: i32,
}

/// S3's retrieval tiers (RestoreObject's `GlacierJobParameters.Tier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreTier {
    Bulk,
    Standard,
    Expedited,
}

impl RestoreTier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bulk => "Bulk",
            Self::Standard => "Standard",
            Self::Expedited => "Expedited",
        }
    }
}

/// How the replicator works beside native S3 replication (NATIVE_REPLICATION).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeMode {
    /// Copy every version that needs it (native replicas of the version are up to date).
    Copy,
    /// Copy only what native replication FAILED, or left PENDING longer than
    /// `pending_grace_s`, and what no rule covers; leave COMPLETED versions.
    Heal { pending_grace_s: i64 },
}

/// Where replicas go and how they are written there.
#[derive(Clone, PartialEq, Eq)]
pub struct DestinationConfig {
    pub bucket: String,
    pub role_arn: String,
    pub external_id: Option<String>,
    pub kms_key_id: String,
    pub region: Option<String>,
    /// Expected owner of the destination bucket (defaults to the role's account).
    pub account_id: String,
    /// Prepended to every replica key.
    pub prefix: String,
    pub storage_class: crate::rules::ReplicaStorageClass,
    pub bucket_key_enabled: bool,
    pub replicate_deletes: bool,
    /// Lifecycle expirations of source keys delete their replicas (REPLICATE_LIFECYCLE_EXPIRATIONS).
    pub replicate_expirations: bool,
    /// Lifetime asked of AssumeRole; `None` is the SDK's default (one hour). Not a variable:
    /// the SDK refreshes sessions before they expire, and tests shorten this to prove it.
    pub session_length: Option<std::time::Duration>,
}

impl fmt::Debug for DestinationConfig {
    // The ExternalId is a shared secret between the two accounts: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DestinationConfig")
            .field("bucket", &self.bucket)
            .field("role_arn", &self.role_arn)
            .field(
                "external_id",
                &self.external_id.as_ref().map(|_| "<redacted>"),
            )
            .field("kms_key_id", &self.kms_key_id)
            .field("region", &self.region)
            .field("account_id", &self.account_id)
            .field("prefix", &self.prefix)
            .field("storage_class", &self.storage_class)
            .field("bucket_key_enabled", &self.bucket_key_enabled)
            .field("replicate_deletes", &self.replicate_deletes)
            .field("session_length", &self.session_length)
            .finish()
    }
}

/// How bytes move: checksums, part sizes, the memory budget, concurrency, server-side copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConfig {
    pub checksum_algorithm: ChecksumAlgorithm,
    pub multipart_threshold: u64,
    pub part_size: u64,
    pub max_in_flight_bytes: u64,
    pub copy_concurrency: usize,
    /// Copy inside S3 (CopyObject / UploadPartCopy) when the destination role can read the
    /// source; falls back to streaming on AccessDenied.
    pub server_side_copy: bool,
    /// Server-side copies of objects up to this size take one CopyObject (when the time left
    /// allows); larger ones go part by part with UploadPartCopy, resumable at a deadline.
    pub server_side_single_copy_max: u64,
    /// How long a copy holds its multipart upload's record, and the age past which an upload
    /// no record names is abandoned. Not a variable: Lambda's longest invocation and a
    /// margin ([`UPLOAD_LEASE_MS`](crate::clock::UPLOAD_LEASE_MS)); tests shorten it.
    pub upload_lease_ms: i64,
}

/// How the process talks to AWS and names itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub force_path_style: bool,
    /// Session name used for AssumeRole; derived from the function name.
    pub role_session_name: String,
}

/// Every variable the engine reads, in the order the README table lists them.
pub const VARIABLES: &[&str] = &[
    "SOURCE_BUCKET",
    "SOURCE_ACCOUNT_ID",
    "DESTINATION_BUCKET",
    "DESTINATION_ROLE_ARN",
    "DESTINATION_EXTERNAL_ID",
    "DESTINATION_KMS_KEY_ID",
    "DESTINATION_REGION",
    "DESTINATION_ACCOUNT_ID",
    "DESTINATION_PREFIX",
    "DESTINATION_STORAGE_CLASS",
    "KEY_PREFIX",
    "REPLICATION_RULES",
    "NATIVE_REPLICATION",
    "NATIVE_PENDING_GRACE_SECONDS",
    "RESTORE_ARCHIVED",
    "RESTORE_DAYS",
    "REPLICATE_DELETES",
    "REPLICATE_LIFECYCLE_EXPIRATIONS",
    "S3_FORCE_PATH_STYLE",
    "BUCKET_KEY_ENABLED",
    "CHECKSUM_ALGORITHM",
    "MULTIPART_THRESHOLD",
    "PART_SIZE",
    "MAX_IN_FLIGHT_BYTES",
    "COPY_CONCURRENCY",
    "SERVER_SIDE_COPY",
    "SERVER_SIDE_SINGLE_COPY_MAX",
    "AWS_LAMBDA_FUNCTION_NAME",
];

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests and the CLI can supply their own.
    /// Empty values count as unset.
    /// `REPLICATION_RULES` must be inline here: use [`Config::load`] for `ssm:` and `s3://`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let source = SourceConfig::read(&env)?;
        let rules = read_rules(&env, None)?;
        Self::build(&env, source, rules)
    }

    /// Reads the process environment, fetching `REPLICATION_RULES` from SSM or S3 when it
    /// names one (with `sdk`, the function's own credentials).
    pub async fn load_from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Self::load(|name| std::env::var(name).ok(), sdk).await
    }

    /// [`Config::from_lookup`], with `REPLICATION_RULES` read from where it says, once.
    pub async fn load(
        lookup: impl Fn(&str) -> Option<String>,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let source = SourceConfig::read(&env)?;
        let rules = fetch_rules(&env, Some(sdk)).await?;
        Self::build(&env, source, rules)
    }

    fn build<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        source: SourceConfig,
        rules: RuleSet,
    ) -> Result<Self, ConfigError> {
        rules.single_rule()?;
        Self::of_rule(env, source, rules)
    }

    /// The configuration of the one enabled rule of `rules`.
    fn of_rule<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        source: SourceConfig,
        rules: RuleSet,
    ) -> Result<Self, ConfigError> {
        let rule = rules
            .rules()
            .iter()
            .find(|r| r.enabled)
            .expect("a rule set with an enabled rule")
            .clone();
        Ok(Self {
            rule_id: rule.id.clone(),
            source: SourceConfig {
                // What the one rule takes (KEY_PREFIX, or its filter's prefix).
                key_prefix: rule.filter.prefix.clone(),
                ..source
            },
            destination: DestinationConfig::from_rule(env, &rule)?,
            transfer: TransferConfig::read(env, &rule)?,
            runtime: RuntimeConfig::read(env)?,
            rules,
        })
    }

    /// The replica's key for a source key.
    pub fn destination_key(&self, source_key: &str) -> String {
        format!("{}{}", self.destination.prefix, source_key)
    }

    /// What a copy plan depends on.
    pub fn limits(&self) -> Limits {
        Limits {
            multipart_threshold: self.transfer.multipart_threshold,
            part_size: self.transfer.part_size,
            single_copy_max: self.transfer.server_side_single_copy_max,
            max_in_flight_bytes: self.transfer.max_in_flight_bytes,
        }
    }
}

impl SourceConfig {
    /// Everything but `key_prefix`, which the rule set decides.
    fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let bucket = env.required("SOURCE_BUCKET", "an S3 bucket name")?;
        validate::bucket_name("SOURCE_BUCKET", &bucket)?;
        let account_id = env.get("SOURCE_ACCOUNT_ID");
        if let Some(id) = &account_id {
            validate::account_id("SOURCE_ACCOUNT_ID", id)?;
        }
        let key_prefix = String::new();
        // The RTC threshold: S3 Replication Time Control replicates 99.99% within 15 minutes.
        let pending_grace_s =
            env.number("NATIVE_PENDING_GRACE_SECONDS", 900, 0..=7 * 24 * 3600)? as i64;
        let heal = env.choice(
            "NATIVE_REPLICATION",
            false,
            &[("copy", false), ("heal", true)],
            "copy or heal",
        )?;
        let tier = env.choice(
            "RESTORE_ARCHIVED",
            None,
            &[
                ("off", None),
                ("Bulk", Some(RestoreTier::Bulk)),
                ("Standard", Some(RestoreTier::Standard)),
                ("Expedited", Some(RestoreTier::Expedited)),
            ],
            "off, Bulk, Standard or Expedited",
        )?;
        let days = env.number("RESTORE_DAYS", 1, 1..=30)? as i32;
        Ok(Self {
            restore: tier.map(|tier| Restore { tier, days }),
            bucket,
            account_id,
            key_prefix,
            native: if heal {
                NativeMode::Heal { pending_grace_s }
            } else {
                NativeMode::Copy
            },
        })
    }
}

impl DestinationConfig {
    /// The destination of the one rule the engine carries out.
    fn from_rule<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        rule: &Rule,
    ) -> Result<Self, ConfigError> {
        let d = &rule.destination;
        Ok(Self {
            bucket: d.bucket.clone(),
            role_arn: d.role_arn.clone(),
            external_id: d.external_id.clone(),
            kms_key_id: d.kms_key_id.clone(),
            region: d.region.clone(),
            account_id: d.account_id.clone(),
            prefix: d.key_prefix.clone(),
            storage_class: d.storage_class.clone(),
            bucket_key_enabled: env.flag("BUCKET_KEY_ENABLED", true)?,
            replicate_deletes: rule.delete_markers,
            replicate_expirations: env.flag("REPLICATE_LIFECYCLE_EXPIRATIONS", false)?,
            session_length: None,
        })
    }
}

impl TransferConfig {
    fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>, rule: &Rule) -> Result<Self, ConfigError> {
        use ChecksumAlgorithm::*;
        let checksum_algorithm = env.choice(
            "CHECKSUM_ALGORITHM",
            Crc32C,
            &[
                ("CRC32", Crc32),
                ("CRC32C", Crc32C),
                ("CRC64NVME", Crc64Nvme),
                ("SHA1", Sha1),
                ("SHA256", Sha256),
            ],
            "one of CRC32, CRC32C, CRC64NVME, SHA1, SHA256",
        )?;
        let multipart_threshold = env.size("MULTIPART_THRESHOLD", DEFAULT_MULTIPART_THRESHOLD)?;
        let part_size = env.size("PART_SIZE", DEFAULT_PART_SIZE)?;
        let max_in_flight_bytes = env.size("MAX_IN_FLIGHT_BYTES", DEFAULT_MAX_IN_FLIGHT_BYTES)?;
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size) {
            return Err(invalid(
                "PART_SIZE",
                &part_size.to_string(),
                "between 5 MiB and 5 GiB",
            ));
        }
        if !(1..=MAX_SINGLE_PUT).contains(&multipart_threshold) {
            return Err(invalid(
                "MULTIPART_THRESHOLD",
                &multipart_threshold.to_string(),
                "between 1 byte and 5 GiB",
            ));
        }
        // A small object's body is held whole; a part is streamed whatever its size.
        let least = multipart_threshold.max(STREAMED_PART_BYTES);
        if max_in_flight_bytes < least {
            return Err(invalid(
                "MAX_IN_FLIGHT_BYTES",
                &max_in_flight_bytes.to_string(),
                &format!(
                    "at least max(MULTIPART_THRESHOLD, 1 MiB) = {least} bytes, so one small object or one streamed part fits"
                ),
            ));
        }
        let server_side_single_copy_max =
            env.size("SERVER_SIDE_SINGLE_COPY_MAX", MAX_SINGLE_PUT)?;
        if server_side_single_copy_max > MAX_SINGLE_PUT {
            return Err(invalid(
                "SERVER_SIDE_SINGLE_COPY_MAX",
                &server_side_single_copy_max.to_string(),
                "at most 5 GiB (S3's CopyObject limit)",
            ));
        }
        Ok(Self {
            checksum_algorithm,
            multipart_threshold,
            part_size,
            max_in_flight_bytes,
            copy_concurrency: env.number(
                "COPY_CONCURRENCY",
                DEFAULT_COPY_CONCURRENCY as u64,
                1..=1024,
            )? as usize,
            server_side_copy: rule.destination.server_side_copy == ServerSideCopy::Auto,
            server_side_single_copy_max,
            upload_lease_ms: crate::clock::UPLOAD_LEASE_MS,
        })
    }
}

impl RuntimeConfig {
    fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let function = env
            .get("AWS_LAMBDA_FUNCTION_NAME")
            .unwrap_or_else(|| "s3-fallback-replicator".into());
        Ok(Self {
            force_path_style: env.flag("S3_FORCE_PATH_STYLE", false)?,
            role_session_name: validate::session_name(&function),
        })
    }
}

#[cfg(test)]
mod tests;
