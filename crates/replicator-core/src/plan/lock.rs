//! What a replica's Object Lock needs after its source version's changed. Pure.
//!
//! S3 lets a retention be extended by anyone allowed `s3:PutObjectRetention`, but shortened,
//! lifted or turned from COMPLIANCE to GOVERNANCE only in governance mode and with
//! `s3:BypassGovernanceRetention` ("Object Lock", S3 User Guide). This replicator never
//! bypasses governance: a replica whose retention is stronger than its source's keeps it.

use crate::facts::LockSettings;

/// The writes that bring a replica's lock to its source's, and what cannot be brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockChanges {
    /// PutObjectRetention with the source's mode and date.
    pub retention: bool,
    /// PutObjectLegalHold to this status.
    pub legal_hold: Option<bool>,
    /// Why the replica keeps a stronger retention than its source's.
    pub kept: Option<&'static str>,
}

impl LockChanges {
    pub fn is_empty(&self) -> bool {
        !self.retention && self.legal_hold.is_none()
    }
}

fn strength(mode: Option<&str>) -> u8 {
    match mode {
        Some("COMPLIANCE") => 2,
        Some(_) => 1,
        None => 0,
    }
}

/// What to change on `replica` so that it has `source`'s lock.
pub fn lock_changes(source: &LockSettings, replica: &LockSettings) -> LockChanges {
    let mut changes = LockChanges {
        legal_hold: (source.legal_hold != replica.legal_hold).then_some(source.legal_hold),
        ..LockChanges::default()
    };
    let same = source.mode == replica.mode && source.retain_until_ms == replica.retain_until_ms;
    if same {
        return changes;
    }
    match (source.retain_until_ms, replica.retain_until_ms) {
        (Some(_), None) => changes.retention = source.mode.is_some(),
        (Some(wanted), Some(has)) => {
            let weaker_mode = strength(source.mode.as_deref()) < strength(replica.mode.as_deref());
            if wanted < has || weaker_mode {
                changes.kept = Some(
                    "the source's retention is shorter or weaker than the replica's; \
                     S3 allows that only by bypassing governance mode, which this replicator never does",
                );
            } else {
                changes.retention = source.mode.is_some();
            }
        }
        (None, Some(_)) => {
            changes.kept = Some(
                "the source's retention was lifted; the replica keeps its own until it \
                 expires (lifting it needs a governance-mode bypass)",
            );
        }
        (None, None) => {}
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lock(mode: Option<&str>, until: Option<i64>, hold: bool) -> LockSettings {
        LockSettings {
            mode: mode.map(str::to_owned),
            retain_until_ms: until,
            legal_hold: hold,
        }
    }

    #[test]
    fn equal_locks_need_nothing() {
        let l = lock(Some("GOVERNANCE"), Some(5), true);
        assert!(lock_changes(&l, &l).is_empty());
        assert!(lock_changes(&LockSettings::default(), &LockSettings::default()).is_empty());
    }

    #[test]
    fn an_extension_or_a_first_retention_is_applied() {
        let first = lock_changes(
            &lock(Some("GOVERNANCE"), Some(9), false),
            &lock(None, None, false),
        );
        assert!(first.retention && first.kept.is_none());
        let longer = lock_changes(
            &lock(Some("COMPLIANCE"), Some(9), false),
            &lock(Some("GOVERNANCE"), Some(5), false),
        );
        assert!(longer.retention && longer.kept.is_none());
    }

    #[test]
    fn a_shorter_weaker_or_lifted_retention_is_kept_and_said() {
        for (source, replica) in [
            (
                lock(Some("GOVERNANCE"), Some(5), false),
                lock(Some("GOVERNANCE"), Some(9), false),
            ),
            (
                lock(Some("GOVERNANCE"), Some(9), false),
                lock(Some("COMPLIANCE"), Some(9), false),
            ),
            (
                lock(None, None, false),
                lock(Some("GOVERNANCE"), Some(9), false),
            ),
        ] {
            let c = lock_changes(&source, &replica);
            assert!(!c.retention && c.kept.is_some(), "{source:?} {replica:?}");
        }
    }

    #[test]
    fn the_legal_hold_follows_either_way() {
        let on = lock_changes(&lock(None, None, true), &lock(None, None, false));
        assert_eq!(on.legal_hold, Some(true));
        let off = lock_changes(&lock(None, None, false), &lock(None, None, true));
        assert_eq!(off.legal_hold, Some(false));
    }

    proptest! {
        /// Never a write that would weaken the replica's retention, and after the changes
        /// are applied the replica is at least as strong as the source, never weaker.
        #[test]
        fn never_weakens(
            sm in prop::option::of(prop::sample::select(vec!["GOVERNANCE", "COMPLIANCE"])),
            su in prop::option::of(0i64..10),
            rm in prop::option::of(prop::sample::select(vec!["GOVERNANCE", "COMPLIANCE"])),
            ru in prop::option::of(0i64..10),
            sh: bool, rh: bool,
        ) {
            let (sm, su) = if sm.is_some() && su.is_some() { (sm, su) } else { (None, None) };
            let (rm, ru) = if rm.is_some() && ru.is_some() { (rm, ru) } else { (None, None) };
            let source = lock(sm, su, sh);
            let replica = lock(rm, ru, rh);
            let c = lock_changes(&source, &replica);
            if c.retention {
                prop_assert!(su >= ru);
                prop_assert!(strength(sm) >= strength(rm));
            }
            prop_assert_eq!(c.legal_hold.unwrap_or(rh), sh);
            if source.mode == replica.mode && su == ru && sh == rh {
                prop_assert!(c.is_empty() && c.kept.is_none());
            }
        }
    }
}
