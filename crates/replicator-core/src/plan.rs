//! Pure planning. [`decide`]: whether to write a replica at all — create, replace, or leave
//! it (up to date, or made from a newer source version). [`transfer::choose`]: how to write
//! it. Nothing here talks to AWS, so every rule is unit- and property-tested.
//!
//! The only fact `decide` cannot read off the two objects is the source's own version order,
//! needed when two versions share a Last-Modified second and no sequencers tell them apart.
//! [`order_question`] says when it is needed; the caller asks S3 and passes the answer in, so
//! `decide`'s answer is final.

pub mod checksum;
pub mod lock;
pub mod transfer;

use std::cmp::Ordering;

use crate::facts::{NativeStatus, ReplicaFacts, SourceFacts};
use crate::outcome::SkipReason;
use crate::request::ObjectRequest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No replica: write with If-None-Match: *.
    Create,
    /// The replica is older (or not ours): replace it with If-Match on its ETag.
    Replace { replica_etag: String },
    /// Already replicated from this very source version.
    UpToDate,
    /// The replica was made from a newer source version; writing would go back in time.
    ReplicaIsNewer,
    /// A native replica whose source version cannot be told (it reports no version id, or
    /// the source has none): never overwritten on a guess.
    NativeReplicaOfUnknownVersion,
}

/// What the two objects alone say.
enum Verdict {
    Final(Decision),
    /// Same second, different versions, no sequencers to tell: the source's version order
    /// between the source version and this one (the replica's) decides.
    Ask(String),
}

fn verdict(source: &SourceFacts, replica: Option<&ReplicaFacts>) -> Verdict {
    use Verdict::*;
    let Some(replica) = replica else {
        return Final(Decision::Create);
    };
    let replace = Decision::Replace {
        replica_etag: replica.etag.clone(),
    };
    if replica.is_native() {
        // Native replication keeps the source's version ids: the same id is the same version,
        // another id is another version, ordered by the source's own version order.
        return match (&source.version_id, &replica.version_id) {
            (Some(s), Some(r)) if s == r => Final(Decision::UpToDate),
            (Some(_), Some(r)) => Ask(r.clone()),
            _ => Final(Decision::NativeReplicaOfUnknownVersion),
        };
    }
    let Some(p) = &replica.provenance else {
        // An object we did not write (a manual copy, an earlier tool): the source is the
        // truth, and a versioned destination keeps what we replace.
        return Final(replace);
    };
    let same_etag = p.etag.trim_matches('"') == source.etag.trim_matches('"');
    match (&source.version_id, &p.version_id) {
        (Some(s), Some(r)) if s == r => return Final(Decision::UpToDate),
        (None, None) if same_etag && p.last_modified == source.last_modified => {
            return Final(Decision::UpToDate)
        }
        _ => {}
    }
    match p.last_modified.cmp(&source.last_modified) {
        Ordering::Greater => Final(Decision::ReplicaIsNewer),
        Ordering::Less => Final(replace),
        Ordering::Equal => match (&source.sequencer, &p.sequencer) {
            (Some(s), Some(r)) => match compare_sequencers(s, r) {
                Ordering::Greater => Final(replace),
                Ordering::Less => Final(Decision::ReplicaIsNewer),
                // S3 never gives two versions one sequencer; if the events claim so, the
                // source's own version order decides rather than the claim.
                Ordering::Equal => match (&source.version_id, &p.version_id) {
                    (Some(v), Some(r)) if v != r => Ask(r.clone()),
                    _ => Final(Decision::UpToDate),
                },
            },
            _ => match &p.version_id {
                Some(r) if source.version_id.is_some() => Ask(r.clone()),
                // Unversioned source rewritten within the same second: the current
                // object is the newest there is.
                _ if same_etag => Final(Decision::UpToDate),
                _ => Final(replace),
            },
        },
    }
}

/// The replica's source version whose order against `source`'s the decision needs, if any.
pub fn order_question(source: &SourceFacts, replica: Option<&ReplicaFacts>) -> Option<String> {
    match verdict(source, replica) {
        Verdict::Ask(version) => Some(version),
        Verdict::Final(_) => None,
    }
}

/// Decides whether `source` should overwrite `replica`. Never goes back in time.
///
/// `order` is the source's version order of `source` against the version
/// [`order_question`] named (`Greater`: the source version is the newer). Where the order
/// is needed and not given, the replica is kept: the engine never writes on a guess.
pub fn decide(
    source: &SourceFacts,
    replica: Option<&ReplicaFacts>,
    order: Option<Ordering>,
) -> Decision {
    match verdict(source, replica) {
        Verdict::Final(decision) => decision,
        Verdict::Ask(_) => match (order, replica) {
            (Some(Ordering::Greater), Some(r)) => Decision::Replace {
                replica_etag: r.etag.clone(),
            },
            _ => Decision::ReplicaIsNewer,
        },
    }
}

/// The cheapest idempotency check, before the source is read: the replica's provenance names
/// the version the request names, or (from a listing) the listed ETag and Last-Modified; or
/// it is a native replica of the version the request names.
pub fn replica_made_from(req: &ObjectRequest, replica: Option<&ReplicaFacts>) -> bool {
    let Some(replica) = replica else {
        return false;
    };
    if replica.is_native() {
        return req.version_id.is_some() && req.version_id == replica.version_id;
    }
    let Some(p) = replica.provenance.as_ref() else {
        return false;
    };
    if let Some(v) = &req.version_id {
        return p.version_id.as_ref() == Some(v);
    }
    match &req.listed {
        Some(l) => p.etag == l.etag.trim_matches('"') && p.last_modified == l.last_modified,
        None => false,
    }
}

/// In heal mode (NATIVE_REPLICATION=heal), what native replication's status of the source
/// version says: copy what it FAILED, or left PENDING longer than `grace_s`, and what no
/// rule covers; leave what it COMPLETED, or is still within its time to do. `now_s` and the
/// source's `last_modified` are seconds since the epoch.
pub fn heal(
    status: Option<NativeStatus>,
    last_modified: i64,
    now_s: i64,
    grace_s: i64,
) -> Option<SkipReason> {
    match status {
        Some(NativeStatus::Completed) => Some(SkipReason::NativeReplicationCompleted),
        Some(NativeStatus::Pending) if now_s - last_modified < grace_s => {
            Some(SkipReason::NativeReplicationPending)
        }
        Some(NativeStatus::Pending | NativeStatus::Failed) => None,
        // No rule covers it (or the source is itself a replica): the fallback copies it.
        None | Some(NativeStatus::Replica) => None,
    }
}

/// S3 sequencers are hexadecimal strings of varying length, comparable for one key after
/// right-padding the shorter one with zeros (AWS: "Event message structure").
pub fn compare_sequencers(a: &str, b: &str) -> Ordering {
    let width = a.len().max(b.len());
    let pad = |s: &str| format!("{:0<width$}", s.to_ascii_uppercase());
    pad(a).cmp(&pad(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Provenance;
    use proptest::prelude::*;

    fn src(version: Option<&str>, etag: &str, lm: i64, seq: Option<&str>) -> SourceFacts {
        SourceFacts {
            version_id: version.map(Into::into),
            etag: etag.into(),
            last_modified: lm,
            sequencer: seq.map(Into::into),
        }
    }

    fn replica_of(s: &SourceFacts) -> ReplicaFacts {
        ReplicaFacts::ours(
            "\"replica-etag\"",
            Provenance {
                source: "b/k".into(),
                version_id: s.version_id.clone(),
                etag: s.etag.clone(),
                last_modified: s.last_modified,
                sequencer: s.sequencer.clone(),
                checksum: None,
            },
        )
    }

    /// What native replication wrote for source version `version`.
    fn native(version: Option<&str>) -> ReplicaFacts {
        ReplicaFacts {
            etag: "\"native-etag\"".into(),
            version_id: version.map(Into::into),
            native: true,
            ..ReplicaFacts::default()
        }
    }

    fn replace() -> Decision {
        Decision::Replace {
            replica_etag: "\"replica-etag\"".into(),
        }
    }

    #[test]
    fn missing_replica_is_created() {
        assert_eq!(
            decide(&src(Some("v1"), "e", 10, None), None, None),
            Decision::Create
        );
    }

    #[test]
    fn same_version_is_up_to_date() {
        let s = src(Some("v1"), "e", 10, None);
        assert_eq!(decide(&s, Some(&replica_of(&s)), None), Decision::UpToDate);
        let unversioned = src(None, "e", 10, None);
        assert_eq!(
            decide(&unversioned, Some(&replica_of(&unversioned)), None),
            Decision::UpToDate
        );
    }

    #[test]
    fn older_source_never_replaces_newer_replica() {
        let newer = src(Some("v2"), "e2", 20, None);
        let older = src(Some("v1"), "e1", 10, None);
        assert_eq!(
            decide(&older, Some(&replica_of(&newer)), None),
            Decision::ReplicaIsNewer
        );
        assert_eq!(decide(&newer, Some(&replica_of(&older)), None), replace());
    }

    #[test]
    fn same_second_uses_sequencer_then_source_order() {
        let a = src(Some("va"), "e1", 10, Some("0055AED6DCD90281E5"));
        let b = src(Some("vb"), "e2", 10, Some("0055AED6DCD90281E6"));
        assert_eq!(
            decide(&a, Some(&replica_of(&b)), None),
            Decision::ReplicaIsNewer
        );
        assert_eq!(decide(&b, Some(&replica_of(&a)), None), replace());
        let a = src(Some("va"), "e1", 10, None);
        let b = src(Some("vb"), "e2", 10, None);
        let r = replica_of(&a);
        assert_eq!(order_question(&b, Some(&r)).as_deref(), Some("va"));
        assert_eq!(decide(&b, Some(&r), Some(Ordering::Greater)), replace());
        assert_eq!(
            decide(&b, Some(&r), Some(Ordering::Less)),
            Decision::ReplicaIsNewer
        );
        // Two versions claiming one sequencer: the claim is not trusted.
        let a = src(Some("va"), "e1", 10, Some("00AB"));
        let b = src(Some("vb"), "e2", 10, Some("00AB"));
        assert_eq!(
            order_question(&b, Some(&replica_of(&a))).as_deref(),
            Some("va")
        );
    }

    #[test]
    fn an_unanswered_order_question_keeps_the_replica() {
        let a = src(Some("va"), "e1", 10, None);
        let b = src(Some("vb"), "e2", 10, None);
        assert_eq!(
            decide(&b, Some(&replica_of(&a)), None),
            Decision::ReplicaIsNewer
        );
    }

    #[test]
    fn same_size_rewrite_of_unversioned_source_is_detected() {
        let before = src(None, "e1", 10, None);
        let after = src(None, "e2", 10, None);
        assert_eq!(decide(&after, Some(&replica_of(&before)), None), replace());
    }

    #[test]
    fn foreign_object_is_replaced_conditionally() {
        let r = ReplicaFacts {
            etag: "x".into(),
            ..ReplicaFacts::default()
        };
        assert_eq!(
            decide(&src(Some("v"), "e", 1, None), Some(&r), None),
            Decision::Replace {
                replica_etag: "x".into()
            }
        );
    }

    #[test]
    fn a_native_replica_of_this_version_is_never_rewritten() {
        let s = src(Some("v2"), "e", 10, None);
        assert_eq!(
            decide(&s, Some(&native(Some("v2"))), None),
            Decision::UpToDate
        );
        let req = ObjectRequest::created("b", "k").with_version(Some("v2".into()));
        assert!(replica_made_from(&req, Some(&native(Some("v2")))));
        assert!(!replica_made_from(&req, Some(&native(Some("v1")))));
    }

    #[test]
    fn a_native_replica_of_another_version_is_ordered_by_the_source() {
        let s = src(Some("v2"), "e", 10, None);
        let r = native(Some("v1"));
        assert_eq!(order_question(&s, Some(&r)).as_deref(), Some("v1"));
        assert_eq!(
            decide(&s, Some(&r), Some(Ordering::Greater)),
            Decision::Replace {
                replica_etag: "\"native-etag\"".into()
            }
        );
        assert_eq!(
            decide(&s, Some(&r), Some(Ordering::Less)),
            Decision::ReplicaIsNewer
        );
    }

    #[test]
    fn a_native_replica_without_a_version_is_never_overwritten_on_a_guess() {
        let s = src(Some("v2"), "e", 10, None);
        assert_eq!(
            decide(&s, Some(&native(None)), None),
            Decision::NativeReplicaOfUnknownVersion
        );
        let unversioned = src(None, "e", 10, None);
        assert_eq!(
            decide(&unversioned, Some(&native(Some("v1"))), None),
            Decision::NativeReplicaOfUnknownVersion
        );
    }

    #[test]
    fn heal_mode_copies_what_native_replication_failed_or_left_pending_too_long() {
        use NativeStatus::*;
        let grace = 900;
        assert_eq!(
            heal(Some(Completed), 0, 10, grace),
            Some(SkipReason::NativeReplicationCompleted)
        );
        assert_eq!(
            heal(Some(Pending), 100, 500, grace),
            Some(SkipReason::NativeReplicationPending)
        );
        assert_eq!(heal(Some(Pending), 100, 1000, grace), None);
        assert_eq!(heal(Some(Failed), 100, 101, grace), None);
        assert_eq!(heal(None, 100, 101, grace), None);
    }

    #[test]
    fn sequencers_compare_after_padding() {
        assert_eq!(compare_sequencers("0A", "0A00"), Ordering::Equal);
        assert_eq!(compare_sequencers("0B", "0A12"), Ordering::Greater);
        assert_eq!(compare_sequencers("0a", "0A"), Ordering::Equal);
    }

    proptest! {
        #[test]
        fn decisions_never_go_back_in_time(
            s_lm in 0i64..100, r_lm in 0i64..100,
            s_v in "[a-c]", r_v in "[a-c]",
            order in proptest::option::of(prop_oneof![Just(Ordering::Less), Just(Ordering::Greater)]),
        ) {
            let s = src(Some(&s_v), "es", s_lm, None);
            let r = replica_of(&src(Some(&r_v), "er", r_lm, None));
            let d = decide(&s, Some(&r), order);
            if s_v == r_v {
                prop_assert_eq!(d, Decision::UpToDate);
            } else if r_lm > s_lm {
                prop_assert_eq!(d, Decision::ReplicaIsNewer);
            } else if r_lm < s_lm {
                prop_assert!(matches!(d, Decision::Replace { .. }), "{:?}", d);
            } else {
                // Same second: only the source's own order can allow a write.
                prop_assert_eq!(matches!(d, Decision::Replace { .. }), order == Some(Ordering::Greater));
            }
        }
    }
}
