//! Verification's own settings (the engine's come from [`crate::Config`], the time margin
//! from the sync's), read with the same environment reader.

use crate::config::env::Env;
use crate::config::{validate, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Keys checked at once (each costs up to two HEADs in flight).
    pub concurrency: usize,
    /// Where the scheduled audit writes its evidence, instead of the destination bucket.
    pub audit_bucket: Option<String>,
}

pub const VERIFY_VARIABLES: &[&str] = &["VERIFY_CONCURRENCY", "AUDIT_BUCKET"];

/// Default keys checked at once: HEADs are small, so many are in flight.
pub const DEFAULT_VERIFY_CONCURRENCY: u64 = 64;

impl VerifyConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let audit_bucket = env.get("AUDIT_BUCKET");
        if let Some(bucket) = &audit_bucket {
            validate::bucket_name("AUDIT_BUCKET", bucket)?;
        }
        Ok(Self {
            concurrency: env.number("VERIFY_CONCURRENCY", DEFAULT_VERIFY_CONCURRENCY, 1..=1024)?
                as usize,
            audit_bucket,
        })
    }
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_VERIFY_CONCURRENCY as usize,
            audit_bucket: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn verify_variables_lists_exactly_what_is_read_and_each_is_validated_by_name() {
        let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let _ = VerifyConfig::from_lookup(|k| {
            read.borrow_mut().insert(k.to_owned());
            None
        });
        let listed: std::collections::BTreeSet<String> =
            VERIFY_VARIABLES.iter().map(|v| v.to_string()).collect();
        assert_eq!(read.into_inner(), listed);
        let load = |k: &str, v: &str| {
            let m = HashMap::from([(k.to_owned(), v.to_owned())]);
            VerifyConfig::from_lookup(|k| m.get(k).cloned())
        };
        for (k, v) in [
            ("VERIFY_CONCURRENCY", "0"),
            ("AUDIT_BUCKET", "Not_A_Bucket"),
        ] {
            let err = load(k, v).unwrap_err();
            assert!(err.to_string().contains(k), "{err}");
        }
        let ok = load("AUDIT_BUCKET", "audit-evidence").unwrap();
        assert_eq!(ok.audit_bucket.as_deref(), Some("audit-evidence"));
        assert_eq!(ok.concurrency, 64);
    }
}
