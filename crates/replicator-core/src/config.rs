//! The runtime contract: every setting comes from one environment variable, is parsed and
//! validated once at start-up, and a bad value is an error that names the variable.

use std::fmt;

use thiserror::Error;

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
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub source_bucket: String,
    /// Expected owner of the source bucket, sent as ExpectedBucketOwner on source requests.
    pub source_account_id: Option<String>,
    pub destination_bucket: String,
    pub destination_role_arn: String,
    pub destination_external_id: Option<String>,
    pub destination_kms_key_id: String,
    pub destination_region: Option<String>,
    /// Expected owner of the destination bucket (defaults to the role's account).
    pub destination_account_id: String,
    pub destination_prefix: String,
    pub destination_storage_class: Option<aws_sdk_s3::types::StorageClass>,
    pub key_prefix: String,
    pub replicate_deletes: bool,
    pub force_path_style: bool,
    pub bucket_key_enabled: bool,
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
    /// Session name used for AssumeRole; derived from the function name.
    pub role_session_name: String,
    /// Lifetime asked of AssumeRole; `None` is the SDK's default (one hour). Not a variable:
    /// the SDK refreshes sessions before they expire, and tests shorten this to prove it.
    pub destination_session_length: Option<std::time::Duration>,
}

impl fmt::Debug for Config {
    // The ExternalId is a shared secret between the two accounts: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("source_bucket", &self.source_bucket)
            .field("source_account_id", &self.source_account_id)
            .field("destination_bucket", &self.destination_bucket)
            .field("destination_role_arn", &self.destination_role_arn)
            .field(
                "destination_external_id",
                &self.destination_external_id.as_ref().map(|_| "<redacted>"),
            )
            .field("destination_kms_key_id", &self.destination_kms_key_id)
            .field("destination_region", &self.destination_region)
            .field("destination_account_id", &self.destination_account_id)
            .field("destination_prefix", &self.destination_prefix)
            .field("destination_storage_class", &self.destination_storage_class)
            .field("key_prefix", &self.key_prefix)
            .field("replicate_deletes", &self.replicate_deletes)
            .field("force_path_style", &self.force_path_style)
            .field("bucket_key_enabled", &self.bucket_key_enabled)
            .field("checksum_algorithm", &self.checksum_algorithm)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("part_size", &self.part_size)
            .field("max_in_flight_bytes", &self.max_in_flight_bytes)
            .field("copy_concurrency", &self.copy_concurrency)
            .field("server_side_copy", &self.server_side_copy)
            .field(
                "server_side_single_copy_max",
                &self.server_side_single_copy_max,
            )
            .field("role_session_name", &self.role_session_name)
            .field(
                "destination_session_length",
                &self.destination_session_length,
            )
            .finish()
    }
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
    "REPLICATE_DELETES",
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
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |variable: &'static str, expected: &'static str| {
            get(variable).ok_or(ConfigError::Missing { variable, expected })
        };

        let source_bucket = required("SOURCE_BUCKET", "an S3 bucket name")?;
        validate_bucket_name("SOURCE_BUCKET", &source_bucket)?;
        let destination_bucket = required("DESTINATION_BUCKET", "an S3 bucket name")?;
        validate_bucket_name("DESTINATION_BUCKET", &destination_bucket)?;

        let destination_role_arn = required(
            "DESTINATION_ROLE_ARN",
            "an IAM role ARN such as arn:aws:iam::111122223333:role/replicator-destination",
        )?;
        let role_account = parse_role_arn("DESTINATION_ROLE_ARN", &destination_role_arn)?;

        let destination_external_id = get("DESTINATION_EXTERNAL_ID");
        if let Some(id) = &destination_external_id {
            let ok = (2..=1224).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c));
            if !ok {
                return Err(invalid(
                    "DESTINATION_EXTERNAL_ID",
                    "<redacted>",
                    "2 to 1224 characters of letters, digits and +=,.@:/-_",
                ));
            }
        }

        let destination_kms_key_id = required(
            "DESTINATION_KMS_KEY_ID",
            "a KMS key ARN or alias ARN in the destination account",
        )?;
        validate_kms_key("DESTINATION_KMS_KEY_ID", &destination_kms_key_id)?;

        let destination_region = get("DESTINATION_REGION");
        if let Some(region) = &destination_region {
            let ok = region.split('-').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            }) && region.contains('-');
            if !ok {
                return Err(invalid(
                    "DESTINATION_REGION",
                    region,
                    "a region name such as eu-west-1",
                ));
            }
        }

        let source_account_id = get("SOURCE_ACCOUNT_ID");
        if let Some(id) = &source_account_id {
            validate_account_id("SOURCE_ACCOUNT_ID", id)?;
        }
        let destination_account_id = match get("DESTINATION_ACCOUNT_ID") {
            Some(id) => {
                validate_account_id("DESTINATION_ACCOUNT_ID", &id)?;
                id
            }
            None => role_account,
        };

        let destination_prefix = get("DESTINATION_PREFIX").unwrap_or_default();
        let key_prefix = get("KEY_PREFIX").unwrap_or_default();
        for (variable, prefix) in [
            ("DESTINATION_PREFIX", &destination_prefix),
            ("KEY_PREFIX", &key_prefix),
        ] {
            if prefix.len() > 512 {
                return Err(invalid(
                    variable,
                    prefix,
                    "a key prefix of at most 512 bytes",
                ));
            }
        }

        let destination_storage_class = match get("DESTINATION_STORAGE_CLASS") {
            None => None,
            Some(value) => {
                use aws_sdk_s3::types::StorageClass;
                if !StorageClass::values().contains(&value.as_str()) {
                    let known = StorageClass::values().join(", ");
                    return Err(invalid(
                        "DESTINATION_STORAGE_CLASS",
                        &value,
                        &format!("one of {known}"),
                    ));
                }
                Some(StorageClass::from(value.as_str()))
            }
        };

        let checksum_algorithm = match get("CHECKSUM_ALGORITHM")
            .as_deref()
            .map(str::to_ascii_uppercase)
        {
            None => ChecksumAlgorithm::Crc32C,
            Some(v) => match v.as_str() {
                "CRC32" => ChecksumAlgorithm::Crc32,
                "CRC32C" => ChecksumAlgorithm::Crc32C,
                "CRC64NVME" => ChecksumAlgorithm::Crc64Nvme,
                "SHA1" => ChecksumAlgorithm::Sha1,
                "SHA256" => ChecksumAlgorithm::Sha256,
                _ => {
                    return Err(invalid(
                        "CHECKSUM_ALGORITHM",
                        &v,
                        "one of CRC32, CRC32C, CRC64NVME, SHA1, SHA256",
                    ))
                }
            },
        };

        let multipart_threshold =
            size_var(&get, "MULTIPART_THRESHOLD", DEFAULT_MULTIPART_THRESHOLD)?;
        let part_size = size_var(&get, "PART_SIZE", DEFAULT_PART_SIZE)?;
        let max_in_flight_bytes =
            size_var(&get, "MAX_IN_FLIGHT_BYTES", DEFAULT_MAX_IN_FLIGHT_BYTES)?;
        if !(crate::plan::MIN_PART_SIZE..=crate::plan::MAX_PART_SIZE).contains(&part_size) {
            return Err(invalid(
                "PART_SIZE",
                &part_size.to_string(),
                "between 5 MiB and 5 GiB",
            ));
        }
        if !(1..=crate::plan::MAX_SINGLE_PUT).contains(&multipart_threshold) {
            return Err(invalid(
                "MULTIPART_THRESHOLD",
                &multipart_threshold.to_string(),
                "between 1 byte and 5 GiB",
            ));
        }
        if max_in_flight_bytes < part_size.max(multipart_threshold) {
            return Err(invalid(
                "MAX_IN_FLIGHT_BYTES",
                &max_in_flight_bytes.to_string(),
                &format!(
                    "at least max(PART_SIZE, MULTIPART_THRESHOLD) = {} bytes, so one part or one small object fits",
                    part_size.max(multipart_threshold)
                ),
            ));
        }

        let server_side_single_copy_max = size_var(
            &get,
            "SERVER_SIDE_SINGLE_COPY_MAX",
            crate::plan::MAX_SINGLE_PUT,
        )?;
        if server_side_single_copy_max > crate::plan::MAX_SINGLE_PUT {
            return Err(invalid(
                "SERVER_SIDE_SINGLE_COPY_MAX",
                &server_side_single_copy_max.to_string(),
                "at most 5 GiB (S3's CopyObject limit)",
            ));
        }

        let copy_concurrency = match get("COPY_CONCURRENCY") {
            None => DEFAULT_COPY_CONCURRENCY,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=1024).contains(&n) => n,
                _ => {
                    return Err(invalid(
                        "COPY_CONCURRENCY",
                        &v,
                        "a whole number from 1 to 1024",
                    ))
                }
            },
        };

        let function =
            get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "s3-fallback-replicator".into());
        let role_session_name = session_name(&function);

        Ok(Self {
            source_bucket,
            source_account_id,
            destination_bucket,
            destination_role_arn,
            destination_external_id,
            destination_kms_key_id,
            destination_region,
            destination_account_id,
            destination_prefix,
            destination_storage_class,
            key_prefix,
            replicate_deletes: bool_var(&get, "REPLICATE_DELETES", false)?,
            force_path_style: bool_var(&get, "S3_FORCE_PATH_STYLE", false)?,
            bucket_key_enabled: bool_var(&get, "BUCKET_KEY_ENABLED", true)?,
            checksum_algorithm,
            multipart_threshold,
            part_size,
            max_in_flight_bytes,
            copy_concurrency,
            server_side_copy: match get("SERVER_SIDE_COPY")
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("auto") => true,
                Some("off") => false,
                Some(other) => return Err(invalid("SERVER_SIDE_COPY", other, "auto or off")),
            },
            server_side_single_copy_max,
            role_session_name,
            destination_session_length: None,
        })
    }

    /// The replica's key for a source key.
    pub fn destination_key(&self, source_key: &str) -> String {
        format!("{}{}", self.destination_prefix, source_key)
    }
}

fn invalid(variable: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        variable,
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

fn bool_var(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(variable)
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(invalid(variable, other, "true or false")),
    }
}

/// Parses `16777216`, `16MiB`, `16 MiB`, `512KiB`, `1GiB` (binary units only, no ambiguity).
pub fn parse_size(value: &str) -> Option<u64> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let number: u64 = digits.parse().ok()?;
    let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => KIB,
        "mib" => MIB,
        "gib" => GIB,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

fn size_var(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(v) => parse_size(&v).ok_or_else(|| {
            invalid(
                variable,
                &v,
                "a size in bytes, or with a unit: 512KiB, 16MiB, 1GiB",
            )
        }),
    }
}

/// Bucket naming rules of general purpose buckets (lowercase, 3–63, no leading/trailing dot
/// or dash).
fn validate_bucket_name(variable: &'static str, name: &str) -> Result<(), ConfigError> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ends_ok = name
        .chars()
        .next()
        .zip(name.chars().last())
        .is_some_and(|(a, b)| a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric());
    if (3..=63).contains(&name.len()) && valid_chars && ends_ok && !name.contains("..") {
        Ok(())
    } else {
        Err(invalid(
            variable,
            name,
            "a bucket name (3-63 lowercase letters, digits, dots or hyphens; not an ARN or s3:// URL)",
        ))
    }
}

fn validate_account_id(variable: &'static str, id: &str) -> Result<(), ConfigError> {
    if id.len() == 12 && id.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(invalid(variable, id, "a 12-digit AWS account id"))
    }
}

/// Returns the account id of `arn:<partition>:iam::<account>:role/<path/name>`.
fn parse_role_arn(variable: &'static str, arn: &str) -> Result<String, ConfigError> {
    let expected = "an IAM role ARN such as arn:aws:iam::111122223333:role/replicator-destination";
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && resource
                    .strip_prefix("role/")
                    .is_some_and(|n| !n.is_empty()) =>
        {
            Ok((*account).to_owned())
        }
        _ => Err(invalid(variable, arn, expected)),
    }
}

/// A KMS key must be named unambiguously across accounts: a key ARN or an alias ARN.
/// (A bare key id or alias name would resolve in the *caller's* account.)
fn validate_kms_key(variable: &'static str, key: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = key.splitn(6, ':').collect();
    let ok = match parts.as_slice() {
        ["arn", partition, "kms", region, account, resource] => {
            partition.starts_with("aws")
                && !region.is_empty()
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && (resource.strip_prefix("key/").is_some_and(|k| !k.is_empty())
                    || resource
                        .strip_prefix("alias/")
                        .is_some_and(|a| !a.is_empty()))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            variable,
            key,
            "a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) or alias ARN (arn:aws:kms:REGION:ACCOUNT:alias/NAME); \
             a bare key id or alias would be looked up in the wrong account",
        ))
    }
}

/// Role session names allow `[\w+=,.@-]{2,64}`.
fn session_name(function: &str) -> String {
    let cleaned: String = function
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if cleaned.len() < 2 {
        "s3-fallback-replicator".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            ("SOURCE_BUCKET", "src-bucket".to_owned()),
            ("DESTINATION_BUCKET", "dst-bucket".to_owned()),
            (
                "DESTINATION_ROLE_ARN",
                "arn:aws:iam::222222222222:role/dest".to_owned(),
            ),
            (
                "DESTINATION_KMS_KEY_ID",
                "arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                    .to_owned(),
            ),
        ])
    }

    fn load(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn minimal_configuration_uses_documented_defaults() {
        let c = load(&base()).unwrap();
        assert_eq!(c.destination_account_id, "222222222222");
        assert!(!c.replicate_deletes);
        assert!(c.bucket_key_enabled);
        assert_eq!(c.checksum_algorithm, ChecksumAlgorithm::Crc32C);
        assert_eq!(c.multipart_threshold, DEFAULT_MULTIPART_THRESHOLD);
        assert_eq!(c.destination_key("a/b"), "a/b");
    }

    #[test]
    fn every_required_variable_is_named_when_missing() {
        for name in [
            "SOURCE_BUCKET",
            "DESTINATION_BUCKET",
            "DESTINATION_ROLE_ARN",
            "DESTINATION_KMS_KEY_ID",
        ] {
            let mut vars = base();
            vars.remove(name);
            let err = load(&vars).unwrap_err();
            assert!(
                matches!(err, ConfigError::Missing { variable, .. } if variable == name),
                "{err}"
            );
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn malformed_values_name_their_variable() {
        let cases = [
            ("SOURCE_BUCKET", "s3://src-bucket"),
            ("DESTINATION_BUCKET", "Upper"),
            ("DESTINATION_ROLE_ARN", "arn:aws:iam::2222:role/x"),
            ("DESTINATION_ROLE_ARN", "arn:aws:iam::222222222222:user/x"),
            (
                "DESTINATION_KMS_KEY_ID",
                "1234abcd-12ab-34cd-56ef-1234567890ab",
            ),
            ("DESTINATION_KMS_KEY_ID", "alias/replica"),
            ("DESTINATION_ACCOUNT_ID", "12345"),
            ("SOURCE_ACCOUNT_ID", "abc"),
            ("DESTINATION_REGION", "Europe"),
            ("DESTINATION_STORAGE_CLASS", "COLD"),
            ("SERVER_SIDE_SINGLE_COPY_MAX", "6GiB"),
            ("SERVER_SIDE_SINGLE_COPY_MAX", "lots"),
            ("REPLICATE_DELETES", "maybe"),
            ("S3_FORCE_PATH_STYLE", "2"),
            ("CHECKSUM_ALGORITHM", "MD5"),
            ("PART_SIZE", "1MiB"),
            ("MULTIPART_THRESHOLD", "lots"),
            ("MAX_IN_FLIGHT_BYTES", "1MiB"),
            ("COPY_CONCURRENCY", "0"),
            ("DESTINATION_EXTERNAL_ID", "has space"),
        ];
        for (name, value) in cases {
            let mut vars = base();
            vars.insert(name, value.to_owned());
            let err = load(&vars).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { variable, .. } if *variable == name),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn external_id_never_appears_in_errors_or_debug() {
        let mut vars = base();
        vars.insert("DESTINATION_EXTERNAL_ID", "secret value!".to_owned());
        let err = load(&vars).unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
        vars.insert("DESTINATION_EXTERNAL_ID", "s3cr3t-external".to_owned());
        let debug = format!("{:?}", load(&vars).unwrap());
        assert!(!debug.contains("s3cr3t"), "{debug}");
    }

    #[test]
    fn sizes_accept_binary_units() {
        assert_eq!(parse_size("16MiB"), Some(16 * MIB));
        assert_eq!(parse_size("16 MiB"), Some(16 * MIB));
        assert_eq!(parse_size("512KiB"), Some(512 * KIB));
        assert_eq!(parse_size("1GiB"), Some(GIB));
        assert_eq!(parse_size("42"), Some(42));
        assert_eq!(parse_size("16MB"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999999999999GiB"), None);
    }

    #[test]
    fn variables_lists_exactly_what_is_read() {
        let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let vars = base();
        let _ = Config::from_lookup(|k| {
            read.borrow_mut().insert(k.to_owned());
            vars.get(k).cloned()
        });
        let listed: std::collections::BTreeSet<String> =
            VARIABLES.iter().map(|v| v.to_string()).collect();
        assert_eq!(read.into_inner(), listed);
    }

    #[test]
    fn session_name_is_derived_from_the_function_name() {
        let mut vars = base();
        vars.insert("AWS_LAMBDA_FUNCTION_NAME", "my fn/copier".to_owned());
        assert_eq!(load(&vars).unwrap().role_session_name, "my-fn-copier");
    }
}
