//! The forms of the values settings take: bucket names, account ids, ARNs, regions, key
//! prefixes, ExternalIds. Each check names the variable and the expected form.

use super::env::invalid;
use super::ConfigError;

/// Bucket naming rules of general purpose buckets (lowercase, 3–63, no leading/trailing dot
/// or dash).
pub fn bucket_name(variable: &'static str, name: &str) -> Result<(), ConfigError> {
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

pub fn account_id(variable: &'static str, id: &str) -> Result<(), ConfigError> {
    if id.len() == 12 && id.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(invalid(variable, id, "a 12-digit AWS account id"))
    }
}

/// Returns the account id of `arn:<partition>:iam::<account>:role/<path/name>`.
pub fn role_arn(variable: &'static str, arn: &str) -> Result<String, ConfigError> {
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
pub fn kms_key(variable: &'static str, key: &str) -> Result<(), ConfigError> {
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

pub fn region(variable: &'static str, region: &str) -> Result<(), ConfigError> {
    let ok = region.split('-').all(|p| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    }) && region.contains('-');
    if ok {
        Ok(())
    } else {
        Err(invalid(variable, region, "a region name such as eu-west-1"))
    }
}

/// ExternalIds allow 2 to 1224 of `[\w+=,.@:/-]`. The value is a shared secret: an error
/// never repeats it.
pub fn external_id(variable: &'static str, id: &str) -> Result<(), ConfigError> {
    let ok = (2..=1224).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            variable,
            "<redacted>",
            "2 to 1224 characters of letters, digits and +=,.@:/-_",
        ))
    }
}

/// A key prefix is empty or a "folder": it ends in `/`, so that `prod/` cannot also match
/// `production/` (in the engine and in the IAM policies made from it, where `prod*` would),
/// and it holds no `*` or `?`, which IAM resources read as wildcards.
pub fn key_prefix(variable: &'static str, prefix: &str) -> Result<(), ConfigError> {
    let expected = "empty, or a key prefix of at most 512 bytes ending in '/', without '*' or '?' (for example logs/2024/)";
    let ok = prefix.is_empty()
        || (prefix.len() <= 512 && prefix.ends_with('/') && !prefix.contains(['*', '?']));
    if ok {
        Ok(())
    } else {
        Err(invalid(variable, prefix, expected))
    }
}

/// Role session names allow `[\w+=,.@-]{2,64}`.
pub fn session_name(function: &str) -> String {
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
