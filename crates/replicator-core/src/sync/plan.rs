//! Pure reconciliation: merge-joining two sorted listings and deciding per key.

use std::cmp::Ordering;

/// One object as ListObjectsV2 reports it; `key` is relative (the destination's has
/// DESTINATION_PREFIX removed), so both sides compare directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub etag: String,
    /// Seconds since the epoch.
    pub last_modified: i64,
}

/// What to do about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncAction {
    /// No replica.
    Missing(ListedObject),
    /// The listings show the source changed after the replica was written (a later
    /// Last-Modified, or a different size).
    Changed(ListedObject),
    /// Both exist and the listings cannot tell: the replica's provenance decides
    /// (listed ETag and Last-Modified against what the replica was made from).
    Check(ListedObject),
    /// A replica with no source object.
    DestinationOnly(ListedObject),
}

impl SyncAction {
    pub fn key(&self) -> &str {
        match self {
            Self::Missing(o) | Self::Changed(o) | Self::Check(o) | Self::DestinationOnly(o) => {
                &o.key
            }
        }
    }
}

/// The change-detection rule. The replica's own ETag and size are useless for comparison
/// (the replica is re-encrypted, its ETag is not the source's), so:
/// - a size difference, or a source Last-Modified later than the replica's, means the source
///   changed after the replica was written: copy (the engine still decides conditionally);
/// - otherwise only the replica's provenance can tell (a late copy of an older version can
///   postdate the current version), so the replica is checked with one HEAD.
///
/// A same-size rewrite therefore never passes unnoticed: either its Last-Modified is later
/// than the replica's, or its ETag/Last-Modified differ from the provenance.
pub fn decide_pair(
    source: Option<ListedObject>,
    replica: Option<ListedObject>,
) -> Option<SyncAction> {
    match (source, replica) {
        (None, None) => None,
        (Some(s), None) => Some(SyncAction::Missing(s)),
        (None, Some(r)) => Some(SyncAction::DestinationOnly(r)),
        (Some(s), Some(r)) => Some(if s.size != r.size || s.last_modified > r.last_modified {
            SyncAction::Changed(s)
        } else {
            SyncAction::Check(s)
        }),
    }
}

/// One step of the merge-join: which heads to take, by key order.
pub fn merge_order(source: Option<&ListedObject>, replica: Option<&ListedObject>) -> (bool, bool) {
    match (source, replica) {
        (None, None) => (false, false),
        (Some(_), None) => (true, false),
        (None, Some(_)) => (false, true),
        (Some(s), Some(r)) => match s.key.as_bytes().cmp(r.key.as_bytes()) {
            Ordering::Less => (true, false),
            Ordering::Greater => (false, true),
            Ordering::Equal => (true, true),
        },
    }
}

/// The whole merge-join over in-memory listings (tests; the runner streams the same steps).
pub fn merge_join(source: Vec<ListedObject>, replica: Vec<ListedObject>) -> Vec<SyncAction> {
    let mut s = source.into_iter().peekable();
    let mut r = replica.into_iter().peekable();
    let mut out = Vec::new();
    loop {
        let (take_s, take_r) = merge_order(s.peek(), r.peek());
        if !take_s && !take_r {
            return out;
        }
        let a = if take_s { s.next() } else { None };
        let b = if take_r { r.next() } else { None };
        out.extend(decide_pair(a, b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn obj(key: &str, size: u64, lm: i64) -> ListedObject {
        ListedObject {
            key: key.into(),
            size,
            etag: format!("\"{key}{size}{lm}\""),
            last_modified: lm,
        }
    }

    #[test]
    fn rules() {
        assert!(matches!(
            decide_pair(Some(obj("a", 1, 1)), None),
            Some(SyncAction::Missing(_))
        ));
        assert!(matches!(
            decide_pair(None, Some(obj("a", 1, 1))),
            Some(SyncAction::DestinationOnly(_))
        ));
        // A rewrite after the replica was written, same size: caught by time.
        assert!(matches!(
            decide_pair(Some(obj("a", 4, 20)), Some(obj("a", 4, 10))),
            Some(SyncAction::Changed(_))
        ));
        // A different size: changed, whatever the times.
        assert!(matches!(
            decide_pair(Some(obj("a", 5, 5)), Some(obj("a", 4, 10))),
            Some(SyncAction::Changed(_))
        ));
        // Same size, replica newer: only provenance can tell.
        assert!(matches!(
            decide_pair(Some(obj("a", 4, 5)), Some(obj("a", 4, 10))),
            Some(SyncAction::Check(_))
        ));
    }

    proptest! {
        /// Every key of either side appears exactly once, in order, with the right action.
        #[test]
        fn merge_join_covers_both_sides(
            src in proptest::collection::btree_map("[a-d]{1,3}", (0u64..3, 0i64..3), 0..30),
            dst in proptest::collection::btree_map("[a-d]{1,3}", (0u64..3, 0i64..3), 0..30),
        ) {
            let listing = |m: &BTreeMap<String, (u64, i64)>| m.iter().map(|(k, (s, t))| obj(k, *s, *t)).collect::<Vec<_>>();
            let actions = merge_join(listing(&src), listing(&dst));
            let keys: Vec<&str> = actions.iter().map(|a| a.key()).collect();
            let mut expected: Vec<&str> = src.keys().chain(dst.keys()).map(String::as_str).collect();
            expected.sort();
            expected.dedup();
            prop_assert_eq!(keys, expected);
            for a in &actions {
                match a {
                    SyncAction::DestinationOnly(o) => prop_assert!(!src.contains_key(&o.key)),
                    SyncAction::Missing(o) => prop_assert!(!dst.contains_key(&o.key)),
                    SyncAction::Changed(o) | SyncAction::Check(o) => prop_assert!(dst.contains_key(&o.key)),
                }
            }
        }
    }
}
