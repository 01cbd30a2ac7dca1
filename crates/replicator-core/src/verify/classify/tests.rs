//! The classifier's rules, one by one, and properties over arbitrary pairs: a replica is
//! never `ok` unless it is made from the current version, the same size, proven equal and
//! under the destination key; a class is always one of its findings.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::facts::Provenance;
use crate::verify::facts::{Checksum, LockSettings};

const KEY: &str = "arn:aws:kms:us-east-1:222222222222:key/dest";

fn expected() -> Expected {
    Expected {
        source: "src/k".into(),
        kms_key_arn: KEY.into(),
    }
}

fn crc(value: &str) -> Checksum {
    Checksum {
        algorithm: "CRC32C",
        kind: ChecksumKind::FullObject,
        value: value.into(),
    }
}

fn source() -> ObjectFacts {
    ObjectFacts {
        size: 10,
        version_id: Some("v2".into()),
        etag: "\"e2\"".into(),
        last_modified: 100,
        checksums: vec![crc("AAAA")],
        encryption: Some(Encryption::Kms(Some("arn:source-key".into()))),
        metadata: BTreeMap::from([("owner".into(), "a".into())]),
        ..Default::default()
    }
}

fn replica_of(s: &ObjectFacts) -> ObjectFacts {
    ObjectFacts {
        version_id: Some("r1".into()),
        etag: "\"other\"".into(),
        last_modified: s.last_modified + 5,
        encryption: Some(Encryption::Kms(Some(KEY.into()))),
        provenance: Some(Provenance {
            source: "src/k".into(),
            version_id: s.version_id.clone(),
            etag: s.etag.trim_matches('"').into(),
            last_modified: s.last_modified,
            sequencer: None,
            checksum: None,
        }),
        ..s.clone()
    }
}

fn class(s: Option<&ObjectFacts>, r: Option<&ObjectFacts>) -> Class {
    classify(s, r, None, None, &expected()).class
}

#[test]
fn each_rule() {
    let s = source();
    let ok = replica_of(&s);
    let v = classify(Some(&s), Some(&ok), None, None, &expected());
    assert_eq!(v.class, Class::Ok, "{v:?}");
    assert_eq!(v.proof.as_deref(), Some("CRC32C:AAAA"));

    assert_eq!(class(Some(&s), None), Class::Missing);

    let mut stale = ok.clone();
    stale.provenance.as_mut().unwrap().version_id = Some("v1".into());
    assert_eq!(class(Some(&s), Some(&stale)), Class::Stale);

    let mut not_ours = ok.clone();
    not_ours.provenance = None;
    assert_eq!(class(Some(&s), Some(&not_ours)), Class::Stale);

    let mut native = not_ours.clone();
    native.replication_status = Some("REPLICA".into());
    native.version_id = s.version_id.clone();
    assert_eq!(class(Some(&s), Some(&native)), Class::Ok);

    let mut flipped = ok.clone();
    flipped.checksums = vec![crc("BBBB")];
    assert_eq!(class(Some(&s), Some(&flipped)), Class::Corrupt);
    let mut shorter = ok.clone();
    shorter.size = 9;
    assert_eq!(class(Some(&s), Some(&shorter)), Class::Corrupt);

    let mut wrong_key = ok.clone();
    wrong_key.encryption = Some(Encryption::Kms(Some("arn:other".into())));
    assert_eq!(class(Some(&s), Some(&wrong_key)), Class::WrongKey);
    wrong_key.encryption = Some(Encryption::S3);
    assert_eq!(class(Some(&s), Some(&wrong_key)), Class::WrongKey);

    let mut drift = ok.clone();
    drift.metadata.insert("owner".into(), "b".into());
    assert_eq!(class(Some(&s), Some(&drift)), Class::MetadataDrift);
    let mut drift = ok.clone();
    drift.headers.content_type = Some("text/plain".into());
    assert_eq!(class(Some(&s), Some(&drift)), Class::MetadataDrift);

    let tags = TagPair {
        source: vec![("a".into(), "1".into())],
        replica: vec![("a".into(), "2".into())],
    };
    let v = classify(Some(&s), Some(&ok), Some(&tags), None, &expected());
    assert_eq!(v.class, Class::TagDrift);

    let mut locked = s.clone();
    locked.lock = LockSettings {
        mode: Some("GOVERNANCE".into()),
        retain_until_ms: Some(2_000_000_000_000),
        legal_hold: false,
    };
    let r = replica_of(&s);
    assert_eq!(class(Some(&locked), Some(&r)), Class::LockDrift);
    // Lock settings on the replica alone are not drift.
    let mut r_locked = r.clone();
    r_locked.lock = locked.lock.clone();
    assert_eq!(class(Some(&s), Some(&r_locked)), Class::Ok);
    assert_eq!(class(Some(&locked), Some(&r_locked)), Class::Ok);

    let mut other_algorithm = ok.clone();
    other_algorithm.checksums = vec![Checksum {
        algorithm: "CRC32",
        ..crc("AAAA")
    }];
    assert_eq!(class(Some(&s), Some(&other_algorithm)), Class::Unverifiable);
    let deep = Deep::Equal { digest: "d".into() };
    let v = classify(
        Some(&s),
        Some(&other_algorithm),
        None,
        Some(&deep),
        &expected(),
    );
    assert_eq!(
        (v.class, v.proof.as_deref()),
        (Class::Ok, Some("SHA256-RANGES:d"))
    );
    let v = classify(
        Some(&s),
        Some(&ok),
        None,
        Some(&Deep::Differs { offset: 8 }),
        &expected(),
    );
    assert_eq!(v.class, Class::Corrupt, "deep wins over an equal checksum");

    assert_eq!(class(None, Some(&ok)), Class::Extra);
    assert_eq!(class(None, Some(&not_ours)), Class::Foreign);
}

#[test]
fn unversioned_sources_match_on_etag_and_time_and_composites_only_prove() {
    let mut s = source();
    s.version_id = None;
    let mut r = replica_of(&s);
    assert_eq!(class(Some(&s), Some(&r)), Class::Ok);
    r.provenance.as_mut().unwrap().last_modified += 1;
    assert_eq!(class(Some(&s), Some(&r)), Class::Stale);

    let composite = |v: &str, parts| Checksum {
        algorithm: "CRC32C",
        kind: ChecksumKind::Composite { parts: Some(parts) },
        value: v.into(),
    };
    let mut s = source();
    s.checksums = vec![composite("X", 3)];
    let mut r = replica_of(&s);
    assert_eq!(class(Some(&s), Some(&r)), Class::Ok);
    r.checksums = vec![composite("Y", 3)];
    assert_eq!(class(Some(&s), Some(&r)), Class::Unverifiable);
    r.checksums = vec![composite("X", 4)];
    assert_eq!(class(Some(&s), Some(&r)), Class::Unverifiable);
}

fn arb_checksum() -> impl Strategy<Value = Checksum> {
    (
        prop::sample::select(vec!["CRC32", "CRC32C", "SHA256"]),
        prop::option::of(1u32..4),
        prop::sample::select(vec!["A", "B"]),
    )
        .prop_map(|(algorithm, parts, value)| Checksum {
            algorithm,
            kind: match parts {
                None => ChecksumKind::FullObject,
                Some(p) => ChecksumKind::Composite { parts: Some(p) },
            },
            value: value.into(),
        })
}

fn arb_facts() -> impl Strategy<Value = ObjectFacts> {
    (
        9u64..11,
        prop::option::of(prop::sample::select(vec!["v1", "v2"])),
        prop::collection::vec(arb_checksum(), 0..3),
        prop::sample::select(vec![0, 1, 2, 3]),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec!["v1", "v2"])),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(size, version, checksums, enc, meta, prov, native, lock)| ObjectFacts {
                size,
                version_id: version.map(str::to_owned),
                etag: "\"e\"".into(),
                last_modified: 100,
                checksums,
                encryption: Some(match enc {
                    0 => Encryption::Kms(Some(KEY.into())),
                    1 => Encryption::Kms(Some("arn:other".into())),
                    2 => Encryption::S3,
                    _ => Encryption::None,
                }),
                metadata: if meta {
                    BTreeMap::from([("m".into(), "1".into())])
                } else {
                    BTreeMap::new()
                },
                provenance: prov.map(|v| Provenance {
                    source: "src/k".into(),
                    version_id: Some(v.into()),
                    etag: "e".into(),
                    last_modified: 100,
                    sequencer: None,
                    checksum: None,
                }),
                replication_status: native.then(|| "REPLICA".to_owned()),
                lock: LockSettings {
                    legal_hold: lock,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
}

fn arb_deep() -> impl Strategy<Value = Option<Deep>> {
    prop::option::of(prop_oneof![
        Just(Deep::Equal { digest: "d".into() }),
        (0u64..10).prop_map(|offset| Deep::Differs { offset }),
    ])
}

proptest! {
    /// `ok` only when every condition of the table holds; the class is always the most
    /// serious finding; missing, extra and foreign depend only on which sides exist.
    #[test]
    fn ok_means_proven(
        s in prop::option::of(arb_facts()),
        r in prop::option::of(arb_facts()),
        deep in arb_deep(),
        tags_differ in prop::option::of(any::<bool>()),
    ) {
        let tags = tags_differ.map(|d| TagPair {
            source: vec![("a".into(), "1".into())],
            replica: vec![("a".into(), if d { "2" } else { "1" }.into())],
        });
        let v = classify(s.as_ref(), r.as_ref(), tags.as_ref(), deep.as_ref(), &expected());
        match (&s, &r) {
            (Some(_), None) | (None, None) => prop_assert_eq!(v.class, Class::Missing),
            (None, Some(r)) => prop_assert_eq!(
                v.class,
                if r.provenance.is_some() { Class::Extra } else { Class::Foreign }
            ),
            (Some(s), Some(r)) => {
                prop_assert!(!matches!(v.class, Class::Missing | Class::Extra | Class::Foreign));
                if v.class == Class::Ok {
                    prop_assert!(v.findings.is_empty());
                    prop_assert_eq!(s.size, r.size);
                    prop_assert_eq!(&r.encryption, &Some(Encryption::Kms(Some(KEY.into()))));
                    prop_assert!(v.proof.is_some());
                    let differs = matches!(deep, Some(Deep::Differs { .. }));
                    prop_assert!(!differs);
                    let made_from = match &r.provenance {
                        Some(p) => p.version_id == s.version_id && s.version_id.is_some(),
                        None => r.replication_status.is_some() && r.version_id == s.version_id,
                    };
                    prop_assert!(made_from);
                    prop_assert!(!s.lock.is_set() || s.lock == r.lock);
                    prop_assert!(tags_differ != Some(true));
                } else {
                    prop_assert!(v.findings.iter().any(|f| f.class == v.class));
                    prop_assert!(v.findings.iter().all(|f| f.class.rank() >= v.class.rank()));
                }
                if matches!(deep, Some(Deep::Equal { .. })) {
                    prop_assert!(v.class != Class::Unverifiable);
                }
            }
        }
    }
}
