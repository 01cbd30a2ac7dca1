//! The classes a verification puts every object in, with their names (as the JSON lines,
//! the report and the metrics spell them), which of them are problems and which a repair
//! can fix.

use serde::{Deserialize, Serialize};

/// What verification found for one object; one class per object, the most serious finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// The replica is made from the current source version, of the same size, with equal
    /// checksums (or equal bytes), under the destination key.
    Ok,
    /// No replica.
    Missing,
    /// A replica of another source version (or an object this replicator did not write).
    Stale,
    /// A replica of the current version by its provenance, with other bytes.
    Corrupt,
    /// Not SSE-KMS with DESTINATION_KMS_KEY_ID.
    WrongKey,
    /// Object Lock settings differ, where the source has them.
    LockDrift,
    /// Content headers or user metadata differ.
    MetadataDrift,
    /// Tags differ (checked only with `--tags` or `--deep`).
    TagDrift,
    /// Nothing proves the bytes equal: no checksum of the same algorithm and type on both
    /// sides, and no `--deep`.
    Unverifiable,
    /// A replica this replicator wrote whose source is gone (a SYNC_DELETE pass's business).
    Extra,
    /// A destination object this replicator did not write, with no source: listed apart,
    /// never a problem.
    Foreign,
}

impl Class {
    /// Every class, in the order reports list them (most serious problems first).
    pub const ALL: [Class; 11] = [
        Class::Missing,
        Class::Stale,
        Class::Corrupt,
        Class::WrongKey,
        Class::LockDrift,
        Class::MetadataDrift,
        Class::TagDrift,
        Class::Unverifiable,
        Class::Ok,
        Class::Extra,
        Class::Foreign,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Ok => "ok",
            Class::Missing => "missing",
            Class::Stale => "stale",
            Class::Corrupt => "corrupt",
            Class::WrongKey => "wrong-key",
            Class::LockDrift => "lock-drift",
            Class::MetadataDrift => "metadata-drift",
            Class::TagDrift => "tag-drift",
            Class::Unverifiable => "unverifiable",
            Class::Extra => "extra",
            Class::Foreign => "foreign",
        }
    }

    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }

    /// A source object whose replica is not proven good: fails `replicator verify` (exit 1)
    /// and raises the audit's alarm. Extras and foreign objects are reported, not problems.
    pub fn is_problem(self) -> bool {
        !matches!(self, Class::Ok | Class::Extra | Class::Foreign)
    }

    /// What `--repair` copies again with the engine.
    pub fn is_repairable(self) -> bool {
        matches!(
            self,
            Class::Missing | Class::Stale | Class::Corrupt | Class::WrongKey | Class::LockDrift
        )
    }

    /// The EMF metric counting this class.
    pub fn metric(self) -> crate::metrics::Metric {
        use crate::metrics::*;
        match self {
            Class::Ok => VERIFY_OK,
            Class::Missing => VERIFY_MISSING,
            Class::Stale => VERIFY_STALE,
            Class::Corrupt => VERIFY_CORRUPT,
            Class::WrongKey => VERIFY_WRONG_KEY,
            Class::LockDrift => VERIFY_LOCK_DRIFT,
            Class::MetadataDrift => VERIFY_METADATA_DRIFT,
            Class::TagDrift => VERIFY_TAG_DRIFT,
            Class::Unverifiable => VERIFY_UNVERIFIABLE,
            Class::Extra => VERIFY_EXTRA,
            Class::Foreign => VERIFY_FOREIGN,
        }
    }

    /// Precedence when one object has several findings: lower is more serious.
    pub fn rank(self) -> usize {
        Class::ALL
            .iter()
            .position(|c| *c == self)
            .expect("every class is listed")
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for c in Class::ALL {
            assert_eq!(Class::from_name(c.name()), Some(c));
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::json!(c.name())
            );
            assert!(c.metric().name.starts_with("Verify"));
            assert!(!c.is_repairable() || c.is_problem());
        }
        assert_eq!(Class::from_name("nope"), None);
        assert!(!Class::Extra.is_problem() && !Class::Foreign.is_problem());
        assert!(Class::Unverifiable.is_problem() && !Class::Unverifiable.is_repairable());
    }
}
