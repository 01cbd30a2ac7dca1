//! Pure planning: whether to write a replica, and how to split an object into parts.
//! Nothing here talks to AWS, so every rule is unit- and property-tested.

use std::cmp::Ordering;
use std::collections::HashMap;

/// S3 limits.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
pub const MAX_PARTS: u64 = 10_000;
pub const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;

/// User-metadata names this replicator writes on every replica (`x-amz-meta-…`).
pub mod provenance_keys {
    pub const MARKER: &str = "replicator-source";
    pub const VERSION_ID: &str = "replicator-source-version-id";
    pub const ETAG: &str = "replicator-source-etag";
    pub const LAST_MODIFIED: &str = "replicator-source-last-modified";
    pub const SEQUENCER: &str = "replicator-source-sequencer";
    pub const ALL: [&str; 5] = [MARKER, VERSION_ID, ETAG, LAST_MODIFIED, SEQUENCER];
}

/// What the replica says about the source object it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// `bucket/key` of the source.
    pub source: String,
    /// `None` for an unversioned source (S3 reports the version id `null`).
    pub version_id: Option<String>,
    pub etag: String,
    /// Seconds since the epoch (S3's Last-Modified has one-second resolution).
    pub last_modified: i64,
    pub sequencer: Option<String>,
}

impl Provenance {
    pub fn to_metadata(&self) -> Vec<(&'static str, String)> {
        use provenance_keys::*;
        let mut m = vec![
            (MARKER, self.source.clone()),
            (ETAG, self.etag.trim_matches('"').to_owned()),
            (LAST_MODIFIED, self.last_modified.to_string()),
        ];
        if let Some(v) = &self.version_id {
            m.push((VERSION_ID, v.clone()));
        }
        if let Some(s) = &self.sequencer {
            m.push((SEQUENCER, s.clone()));
        }
        m
    }

    /// Reads provenance from a replica's user metadata; `None` if it was not written by us.
    pub fn from_metadata(metadata: &HashMap<String, String>) -> Option<Self> {
        use provenance_keys::*;
        let get = |k: &str| metadata.get(k).filter(|v| !v.is_empty()).cloned();
        Some(Self {
            source: get(MARKER)?,
            version_id: get(VERSION_ID),
            etag: get(ETAG)?,
            last_modified: get(LAST_MODIFIED)?.parse().ok()?,
            sequencer: get(SEQUENCER),
        })
    }
}

/// Normalises S3's version id: unversioned objects report `null`.
pub fn normalize_version(v: Option<&str>) -> Option<String> {
    v.filter(|v| !v.is_empty() && *v != "null")
        .map(str::to_owned)
}

/// The source version about to be replicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFacts {
    pub version_id: Option<String>,
    pub etag: String,
    pub last_modified: i64,
    pub sequencer: Option<String>,
}

/// The destination object currently at the replica key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaFacts {
    /// The replica's own ETag, used for If-Match.
    pub etag: String,
    pub provenance: Option<Provenance>,
}

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
    /// Same second, different versions, no sequencers: the source's version order decides.
    AskSourceOrder { replica_version_id: String },
}

/// Decides whether `source` should overwrite `replica`. Never goes back in time.
pub fn decide(source: &SourceFacts, replica: Option<&ReplicaFacts>) -> Decision {
    let Some(replica) = replica else {
        return Decision::Create;
    };
    let replace = Decision::Replace {
        replica_etag: replica.etag.clone(),
    };
    let Some(p) = &replica.provenance else {
        // An object we did not write (a manual copy, an earlier tool): the source is the
        // truth, and a versioned destination keeps what we replace.
        return replace;
    };
    let same_etag = p.etag.trim_matches('"') == source.etag.trim_matches('"');
    match (&source.version_id, &p.version_id) {
        (Some(s), Some(r)) if s == r => return Decision::UpToDate,
        (None, None) if same_etag && p.last_modified == source.last_modified => {
            return Decision::UpToDate
        }
        _ => {}
    }
    match p.last_modified.cmp(&source.last_modified) {
        Ordering::Greater => Decision::ReplicaIsNewer,
        Ordering::Less => replace,
        Ordering::Equal => match (&source.sequencer, &p.sequencer) {
            (Some(s), Some(r)) => match compare_sequencers(s, r) {
                Ordering::Greater => replace,
                Ordering::Less => Decision::ReplicaIsNewer,
                // S3 never gives two versions one sequencer; if the events claim so, the
                // source's own version order decides rather than the claim.
                Ordering::Equal => match (&source.version_id, &p.version_id) {
                    (Some(v), Some(r)) if v != r => Decision::AskSourceOrder {
                        replica_version_id: r.clone(),
                    },
                    _ => Decision::UpToDate,
                },
            },
            _ => match &p.version_id {
                Some(r) if source.version_id.is_some() => Decision::AskSourceOrder {
                    replica_version_id: r.clone(),
                },
                // Unversioned source rewritten within the same second: the current
                // object is the newest there is.
                _ if same_etag => Decision::UpToDate,
                _ => replace,
            },
        },
    }
}

/// S3 sequencers are hexadecimal strings of varying length, comparable for one key after
/// right-padding the shorter one with zeros (AWS: "Event message structure").
pub fn compare_sequencers(a: &str, b: &str) -> Ordering {
    let width = a.len().max(b.len());
    let pad = |s: &str| format!("{:0<width$}", s.to_ascii_uppercase());
    pad(a).cmp(&pad(b))
}

/// How an object of a given size is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferPlan {
    /// One GET, one PUT.
    Single,
    /// `part_count` parts of `part_size` bytes (the last one shorter).
    Multipart { part_size: u64, part_count: u64 },
}

/// Chooses single PUT or multipart, and the part size: at least `preferred_part_size`,
/// grown in whole MiB so the object fits in 10,000 parts.
pub fn transfer_plan(size: u64, threshold: u64, preferred_part_size: u64) -> TransferPlan {
    if size <= threshold.min(MAX_SINGLE_PUT) {
        return TransferPlan::Single;
    }
    let min_for_count = size.div_ceil(MAX_PARTS);
    let mib = 1024 * 1024;
    let part_size = preferred_part_size
        .max(MIN_PART_SIZE)
        .max(min_for_count.div_ceil(mib) * mib)
        .min(MAX_PART_SIZE);
    TransferPlan::Multipart {
        part_size,
        part_count: size.div_ceil(part_size),
    }
}

/// The inclusive byte range of part `number` (1-based), as used in an HTTP Range header.
pub fn part_range(size: u64, part_size: u64, number: u64) -> (u64, u64) {
    let start = (number - 1) * part_size;
    let end = (start + part_size).min(size) - 1;
    (start, end)
}

/// The server-side copy rate (bytes per second) a single CopyObject is planned with:
/// deliberately low (copies within a region are usually several times faster), so that a
/// copy chosen to fit the time left does fit.
pub const PLANNED_SERVER_SIDE_RATE: u64 = 32 * 1024 * 1024;

/// Whether a server-side copy of `size` bytes takes one CopyObject rather than UploadPartCopy
/// part by part: always at or under the multipart threshold; above it, up to `single_max`
/// (at most S3's 5 GiB) when the time left, if there is a deadline, covers the copy at
/// [`PLANNED_SERVER_SIDE_RATE`]. One CopyObject cannot be resumed, so a copy the deadline
/// might cut short goes part by part instead.
pub fn one_copy_object(
    size: u64,
    threshold: u64,
    single_max: u64,
    time_left: Option<std::time::Duration>,
) -> bool {
    if size <= threshold {
        return true;
    }
    size <= single_max.min(MAX_SINGLE_PUT)
        && time_left
            .is_none_or(|left| left.as_secs_f64() >= size as f64 / PLANNED_SERVER_SIDE_RATE as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_copy_object_when_it_fits_the_time_and_the_limit() {
        use std::time::Duration;
        const MIB: u64 = 1024 * 1024;
        let (threshold, max) = (16 * MIB, MAX_SINGLE_PUT);
        assert!(one_copy_object(1, threshold, 0, Some(Duration::ZERO)));
        assert!(one_copy_object(1024 * MIB, threshold, max, None));
        // 1 GiB at 32 MiB/s is 32 s.
        assert!(one_copy_object(
            1024 * MIB,
            threshold,
            max,
            Some(Duration::from_secs(33))
        ));
        assert!(!one_copy_object(
            1024 * MIB,
            threshold,
            max,
            Some(Duration::from_secs(31))
        ));
        assert!(!one_copy_object(MAX_SINGLE_PUT + 1, threshold, max, None));
        assert!(!one_copy_object(100 * MIB, threshold, 64 * MIB, None));
    }

    fn src(version: Option<&str>, etag: &str, lm: i64, seq: Option<&str>) -> SourceFacts {
        SourceFacts {
            version_id: version.map(Into::into),
            etag: etag.into(),
            last_modified: lm,
            sequencer: seq.map(Into::into),
        }
    }

    fn replica_of(s: &SourceFacts) -> ReplicaFacts {
        ReplicaFacts {
            etag: "\"replica-etag\"".into(),
            provenance: Some(Provenance {
                source: "b/k".into(),
                version_id: s.version_id.clone(),
                etag: s.etag.clone(),
                last_modified: s.last_modified,
                sequencer: s.sequencer.clone(),
            }),
        }
    }

    #[test]
    fn missing_replica_is_created() {
        assert_eq!(
            decide(&src(Some("v1"), "e", 10, None), None),
            Decision::Create
        );
    }

    #[test]
    fn same_version_is_up_to_date() {
        let s = src(Some("v1"), "e", 10, None);
        assert_eq!(decide(&s, Some(&replica_of(&s))), Decision::UpToDate);
        let unversioned = src(None, "e", 10, None);
        assert_eq!(
            decide(&unversioned, Some(&replica_of(&unversioned))),
            Decision::UpToDate
        );
    }

    #[test]
    fn older_source_never_replaces_newer_replica() {
        let newer = src(Some("v2"), "e2", 20, None);
        let older = src(Some("v1"), "e1", 10, None);
        assert_eq!(
            decide(&older, Some(&replica_of(&newer))),
            Decision::ReplicaIsNewer
        );
        assert_eq!(
            decide(&newer, Some(&replica_of(&older))),
            Decision::Replace {
                replica_etag: "\"replica-etag\"".into()
            }
        );
    }

    #[test]
    fn same_second_uses_sequencer_then_source_order() {
        let a = src(Some("va"), "e1", 10, Some("0055AED6DCD90281E5"));
        let b = src(Some("vb"), "e2", 10, Some("0055AED6DCD90281E6"));
        assert_eq!(decide(&a, Some(&replica_of(&b))), Decision::ReplicaIsNewer);
        assert!(matches!(
            decide(&b, Some(&replica_of(&a))),
            Decision::Replace { .. }
        ));
        let a = src(Some("va"), "e1", 10, None);
        let b = src(Some("vb"), "e2", 10, None);
        assert_eq!(
            decide(&b, Some(&replica_of(&a))),
            Decision::AskSourceOrder {
                replica_version_id: "va".into()
            }
        );
        // Two versions claiming one sequencer: the claim is not trusted.
        let a = src(Some("va"), "e1", 10, Some("00AB"));
        let b = src(Some("vb"), "e2", 10, Some("00AB"));
        assert_eq!(
            decide(&b, Some(&replica_of(&a))),
            Decision::AskSourceOrder {
                replica_version_id: "va".into()
            }
        );
    }

    #[test]
    fn same_size_rewrite_of_unversioned_source_is_detected() {
        let before = src(None, "e1", 10, None);
        let after = src(None, "e2", 10, None);
        assert!(matches!(
            decide(&after, Some(&replica_of(&before))),
            Decision::Replace { .. }
        ));
    }

    #[test]
    fn foreign_object_is_replaced_conditionally() {
        let r = ReplicaFacts {
            etag: "x".into(),
            provenance: None,
        };
        assert_eq!(
            decide(&src(Some("v"), "e", 1, None), Some(&r)),
            Decision::Replace {
                replica_etag: "x".into()
            }
        );
    }

    #[test]
    fn sequencers_compare_after_padding() {
        assert_eq!(compare_sequencers("0A", "0A00"), Ordering::Equal);
        assert_eq!(compare_sequencers("0B", "0A12"), Ordering::Greater);
        assert_eq!(compare_sequencers("0a", "0A"), Ordering::Equal);
    }

    #[test]
    fn provenance_round_trips_through_metadata() {
        let p = Provenance {
            source: "b/k".into(),
            version_id: Some("v".into()),
            etag: "\"abc\"".into(),
            last_modified: 1_700_000_000,
            sequencer: Some("00AB".into()),
        };
        let m: HashMap<String, String> = p
            .to_metadata()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let back = Provenance::from_metadata(&m).unwrap();
        assert_eq!(back.etag, "abc");
        assert_eq!(back.version_id.as_deref(), Some("v"));
        assert_eq!(back.last_modified, 1_700_000_000);
        assert!(Provenance::from_metadata(&HashMap::new()).is_none());
    }

    #[test]
    fn small_objects_are_single_puts() {
        assert_eq!(transfer_plan(0, 16, 8), TransferPlan::Single);
        assert_eq!(transfer_plan(16, 16, 8), TransferPlan::Single);
    }

    #[test]
    fn the_largest_object_fits_in_ten_thousand_parts() {
        let five_tib = 5 * 1024u64.pow(4);
        let TransferPlan::Multipart {
            part_size,
            part_count,
        } = transfer_plan(five_tib, 16 << 20, 8 << 20)
        else {
            panic!("multipart expected")
        };
        assert!(part_count <= MAX_PARTS, "{part_count}");
        assert!(part_size <= MAX_PART_SIZE);
    }

    proptest! {
        #[test]
        fn part_plans_respect_s3_limits(
            size in 1u64..=5 * 1024u64.pow(4),
            threshold in 1u64..=(64u64 << 20),
            preferred in MIN_PART_SIZE..=(256u64 << 20),
        ) {
            match transfer_plan(size, threshold, preferred) {
                TransferPlan::Single => prop_assert!(size <= threshold),
                TransferPlan::Multipart { part_size, part_count } => {
                    prop_assert!(size > threshold);
                    prop_assert!((MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size));
                    prop_assert!(part_count <= MAX_PARTS);
                    prop_assert!(part_count * part_size >= size);
                    prop_assert!((part_count - 1) * part_size < size);
                    let (first, _) = part_range(size, part_size, 1);
                    let (_, last) = part_range(size, part_size, part_count);
                    prop_assert_eq!(first, 0);
                    prop_assert_eq!(last, size - 1);
                }
            }
        }

        #[test]
        fn decisions_never_go_back_in_time(
            s_lm in 0i64..100, r_lm in 0i64..100,
            s_v in "[a-c]", r_v in "[a-c]",
        ) {
            let s = src(Some(&s_v), "es", s_lm, None);
            let r = replica_of(&src(Some(&r_v), "er", r_lm, None));
            let d = decide(&s, Some(&r));
            if s_v == r_v {
                prop_assert_eq!(d, Decision::UpToDate);
            } else if r_lm > s_lm {
                prop_assert_eq!(d, Decision::ReplicaIsNewer);
            } else if r_lm < s_lm {
                prop_assert!(matches!(d, Decision::Replace { .. }), "{:?}", d);
            }
        }
    }
}
