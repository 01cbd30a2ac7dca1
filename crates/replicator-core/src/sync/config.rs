//! The sync's own settings (the engine's come from [`crate::Config`]), read with the same
//! environment reader.

use std::time::Duration;

use crate::config::env::{invalid, Env};
use crate::config::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    pub concurrency: usize,
    pub delete: bool,
    pub max_deletes: u64,
    pub queue_url: Option<String>,
    /// Stop starting work this long before the invocation's deadline.
    pub time_margin: Duration,
    /// Reconcile from S3 Inventory (INVENTORY_MANIFEST) unless a run's input says otherwise.
    pub inventory: Option<InventoryRequest>,
}

/// Which inventories an inventory-driven pass reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryRequest {
    /// The source bucket's inventory: `s3://BUCKET/…/manifest.json`, or its location
    /// `s3://BUCKET/…/SOURCE-BUCKET/CONFIG-ID/` for the newest complete one.
    pub manifest: String,
    /// The destination bucket's inventory (a manifest or a location, likewise), to check
    /// replicas without a HEAD each.
    pub destination_manifest: Option<String>,
}

impl InventoryRequest {
    /// What an inventory URL must look like, for error messages.
    pub const EXPECTED: &'static str = "an s3://BUCKET/…/manifest.json URL, or an inventory's location s3://BUCKET/…/SOURCE-BUCKET/CONFIG-ID/ (the newest complete inventory under it is read)";

    /// `s3://BUCKET/KEY` where KEY is a `manifest.json` or a location ending in `/`.
    pub fn valid_url(url: &str) -> bool {
        url.strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(bucket, key)| {
                !bucket.is_empty() && (key.ends_with('/') || key.ends_with("manifest.json"))
            })
    }
}

pub const SYNC_VARIABLES: &[&str] = &[
    "DESTINATION_INVENTORY_MANIFEST",
    "INVENTORY_MANIFEST",
    "SYNC_CONCURRENCY",
    "SYNC_DELETE",
    "SYNC_MAX_DELETES",
    "SYNC_QUEUE_URL",
    "SYNC_TIME_MARGIN_SECONDS",
];

impl SyncConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let delete = env.flag("SYNC_DELETE", false)?;
        let queue_url = env.get("SYNC_QUEUE_URL");
        if let Some(url) = &queue_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid(
                    "SYNC_QUEUE_URL",
                    url,
                    "an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)",
                ));
            }
        }
        let inventory_url = |name: &'static str| match env.get(name) {
            Some(url) if !InventoryRequest::valid_url(&url) => {
                Err(invalid(name, &url, InventoryRequest::EXPECTED))
            }
            url => Ok(url),
        };
        let destination_manifest = inventory_url("DESTINATION_INVENTORY_MANIFEST")?;
        let inventory = match (inventory_url("INVENTORY_MANIFEST")?, destination_manifest) {
            (Some(manifest), destination_manifest) => Some(InventoryRequest {
                manifest,
                destination_manifest,
            }),
            (None, Some(url)) => {
                return Err(invalid(
                    "DESTINATION_INVENTORY_MANIFEST",
                    &url,
                    "set only together with INVENTORY_MANIFEST",
                ))
            }
            (None, None) => None,
        };
        Ok(Self {
            inventory,
            concurrency: env.number("SYNC_CONCURRENCY", 32, 1..=1024)? as usize,
            delete,
            max_deletes: env.number("SYNC_MAX_DELETES", 100, 0..=1_000_000)?,
            queue_url,
            time_margin: Duration::from_secs(env.number(
                "SYNC_TIME_MARGIN_SECONDS",
                30,
                1..=600,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn sync_variables_lists_exactly_what_is_read() {
        let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let _ = SyncConfig::from_lookup(|k| {
            read.borrow_mut().insert(k.to_owned());
            None
        });
        let listed: std::collections::BTreeSet<String> =
            SYNC_VARIABLES.iter().map(|v| v.to_string()).collect();
        assert_eq!(read.into_inner(), listed);
    }

    #[test]
    fn sync_settings_are_validated_by_name() {
        let load = |pairs: &[(&str, &str)]| {
            let m: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            SyncConfig::from_lookup(|k| m.get(k).cloned())
        };
        let d = load(&[]).unwrap();
        assert_eq!((d.concurrency, d.delete, d.max_deletes), (32, false, 100));
        assert_eq!(d.inventory, None);
        let i = load(&[
            ("INVENTORY_MANIFEST", "s3://inv/src/daily/"),
            (
                "DESTINATION_INVENTORY_MANIFEST",
                "s3://inv/dst/daily/2026-11-30T01-00Z/manifest.json",
            ),
        ])
        .unwrap()
        .inventory
        .unwrap();
        assert_eq!(i.manifest, "s3://inv/src/daily/");
        assert!(i.destination_manifest.unwrap().ends_with("manifest.json"));
        for (k, v) in [
            ("SYNC_CONCURRENCY", "0"),
            ("SYNC_DELETE", "sure"),
            ("SYNC_MAX_DELETES", "-1"),
            ("SYNC_QUEUE_URL", "my-queue"),
            ("SYNC_TIME_MARGIN_SECONDS", "0"),
            ("INVENTORY_MANIFEST", "s3://inv/a/manifest.csv"),
            ("INVENTORY_MANIFEST", "inv/a/"),
            ("DESTINATION_INVENTORY_MANIFEST", "s3://inv/b/"),
        ] {
            let err = load(&[(k, v)]).unwrap_err();
            assert!(err.to_string().contains(k), "{err}");
        }
    }
}
