//! Documents in, rule sets or errors naming the rule out.

use serde_json::{json, Value};

use super::*;

const KEY_ONE: &str = "arn:aws:kms:us-east-1:222222222222:key/1111aaaa-0000-0000-0000-000000000001";
const KEY_TWO: &str = "arn:aws:kms:eu-west-1:333333333333:key/2222bbbb-0000-0000-0000-000000000002";

fn rule(id: &str, priority: u32, filter: Value, bucket: &str) -> Value {
    json!({
        "ID": id, "Priority": priority, "Status": "Enabled", "Filter": filter,
        "DeleteMarkerReplication": {"Status": "Disabled"},
        "Destination": {
            "Bucket": format!("arn:aws:s3:::{bucket}"),
            "EncryptionConfiguration": {"ReplicaKmsKeyID": KEY_ONE},
            "FallbackReplicator": {"RoleArn": "arn:aws:iam::222222222222:role/replicator"}
        }
    })
}

fn doc(rules: Vec<Value>) -> String {
    json!({ "Rules": rules }).to_string()
}

fn err(rules: Vec<Value>) -> RulesError {
    RuleSet::from_json(&doc(rules)).unwrap_err()
}

/// The README's example, which the README test below also parses.
fn complete_example() -> String {
    json!({"Rules": [
        {"ID": "everything-to-backup", "Priority": 1, "Status": "Enabled", "Filter": {},
         "DeleteMarkerReplication": {"Status": "Enabled"},
         "Destination": {"Bucket": "arn:aws:s3:::backup-replica", "Account": "222222222222",
            "StorageClass": "STANDARD_IA",
            "EncryptionConfiguration": {"ReplicaKmsKeyID": KEY_ONE},
            "FallbackReplicator": {"RoleArn": "arn:aws:iam::222222222222:role/replicator-destination",
                "ExternalId": "backup-external-id"}}},
        {"ID": "logs-to-backup-glacier", "Priority": 2, "Status": "Enabled",
         "Filter": {"Prefix": "logs/"},
         "DeleteMarkerReplication": {"Status": "Disabled"},
         "Destination": {"Bucket": "arn:aws:s3:::backup-replica", "StorageClass": "GLACIER_IR",
            "EncryptionConfiguration": {"ReplicaKmsKeyID": KEY_ONE},
            "FallbackReplicator": {"RoleArn": "arn:aws:iam::222222222222:role/replicator-destination",
                "ExternalId": "backup-external-id"}}},
        {"ID": "finance-to-audit", "Priority": 1, "Status": "Enabled",
         "Filter": {"And": {"Prefix": "reports/", "Tags": [{"Key": "team", "Value": "finance"}]}},
         "DeleteMarkerReplication": {"Status": "Disabled"},
         "Destination": {"Bucket": "arn:aws:s3:::audit-replica", "Account": "333333333333",
            "EncryptionConfiguration": {"ReplicaKmsKeyID": KEY_TWO},
            "FallbackReplicator": {"RoleArn": "arn:aws:iam::333333333333:role/replicator-destination",
                "ExternalId": "audit-external-id", "Region": "eu-west-1", "ServerSideCopy": "off",
                "KeyPrefix": "from-prod/"}}},
        {"ID": "tmp-paused", "Priority": 3, "Status": "Disabled",
         "Filter": {"Prefix": "tmp/"},
         "DeleteMarkerReplication": {"Status": "Disabled"},
         "Destination": {"Bucket": "arn:aws:s3:::audit-replica",
            "EncryptionConfiguration": {"ReplicaKmsKeyID": KEY_TWO},
            "FallbackReplicator": {"RoleArn": "arn:aws:iam::333333333333:role/replicator-destination",
                "KeyPrefix": "from-prod/"}}}
    ]})
    .to_string()
}

fn ids<'a>(set: &'a RuleSet, key: &str, tags: &[(&str, &str)]) -> Vec<(&'a str, &'a str)> {
    let tags: ObjectTags = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    set.route(key, &tags)
        .into_iter()
        .map(|r| (r.destination.bucket.as_str(), r.id.as_str()))
        .collect()
}

#[test]
fn the_complete_example_routes_as_native_would() {
    let set = RuleSet::from_json(&complete_example()).unwrap();
    assert_eq!(set.rules().len(), 4);
    assert_eq!(
        set.destination_buckets(),
        ["backup-replica", "audit-replica"]
    );
    // logs/ has priority 2 over the catch-all's 1 for the same bucket.
    assert_eq!(
        ids(&set, "logs/app.log", &[]),
        [("backup-replica", "logs-to-backup-glacier")]
    );
    assert_eq!(
        ids(&set, "reports/q1.csv", &[("team", "finance")]),
        [
            ("backup-replica", "everything-to-backup"),
            ("audit-replica", "finance-to-audit")
        ]
    );
    assert_eq!(
        ids(&set, "reports/q1.csv", &[("team", "sales")]),
        [("backup-replica", "everything-to-backup")]
    );
    // The disabled rule never routes.
    assert_eq!(
        ids(&set, "tmp/x", &[]),
        [("backup-replica", "everything-to-backup")]
    );
    assert!(set.needs_tags("reports/q1.csv"));
    assert!(!set.needs_tags("logs/app.log"));
    let finance = &set.rules()[2];
    assert_eq!(finance.destination.account_id, "333333333333");
    assert_eq!(finance.destination.region.as_deref(), Some("eu-west-1"));
    assert_eq!(finance.destination.server_side_copy, ServerSideCopy::Off);
    let everything = &set.rules()[0];
    assert!(everything.delete_markers);
    assert_eq!(
        everything.destination.storage_class,
        ReplicaStorageClass::Fixed(aws_sdk_s3::types::StorageClass::StandardIa)
    );
    assert_eq!(finance.destination.key_prefix, "from-prod/");
    // No StorageClass: each replica in its source's class, as native replication does.
    assert_eq!(
        finance.destination.storage_class,
        ReplicaStorageClass::Source
    );
}

#[test]
fn the_readme_example_is_the_one_tested_here() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("```json replication-rules")
        .expect("README has the rules example");
    let body = &readme[start..];
    let body = &body[body.find('\n').unwrap()..];
    let example = &body[..body.find("```").unwrap()];
    let ours: Value = serde_json::from_str(&complete_example()).unwrap();
    let theirs: Value = serde_json::from_str(example).unwrap();
    assert_eq!(ours, theirs, "README example and test example differ");
}

#[test]
fn unknown_fields_are_errors_naming_the_rule() {
    let mut r = rule("typo", 1, json!({"Prefix": "a/"}), "dst-one");
    r["Destination"]["FallbackReplicator"]["RoleARN"] = json!("x");
    let e = err(vec![rule("fine", 1, json!({}), "dst-two"), r]);
    assert!(
        matches!(&e, RulesError::Shape { rule: RuleRef::Id(id), .. } if id == "typo"),
        "{e}"
    );
    assert!(e.to_string().contains("RoleARN"), "{e}");
    let mut r = rule("typo", 1, json!({"Prefx": "a/"}), "dst-one");
    r["ID"] = Value::Null;
    let e = err(vec![r]);
    assert!(e.to_string().contains("rule #1 (no ID)"), "{e}");
    let e = RuleSet::from_json(r#"{"Rules": [], "Extra": 1}"#).unwrap_err();
    assert!(matches!(e, RulesError::Syntax { .. }), "{e}");
}

#[test]
fn ids_are_required_and_unique() {
    let mut r = rule("x", 1, json!({}), "dst-one");
    r.as_object_mut().unwrap().remove("ID");
    let e = err(vec![rule("a", 1, json!({}), "dst-two"), r]);
    assert_eq!(
        e,
        RulesError::MissingId {
            rule: RuleRef::Index(2)
        }
    );
    let e = err(vec![
        rule("same", 1, json!({"Prefix": "a/"}), "dst-one"),
        rule("same", 2, json!({"Prefix": "b/"}), "dst-one"),
    ]);
    assert_eq!(
        e,
        RulesError::DuplicateId {
            id: "same".into(),
            first: 1,
            second: 2
        }
    );
}

#[test]
fn equal_priority_overlaps_to_one_bucket_are_refused() {
    let overlapping = [
        (json!({"Prefix": "logs/"}), json!({"Prefix": "logs/app/"})),
        (json!({}), json!({"Prefix": "x"})),
        (
            json!({"Tag": {"Key": "team", "Value": "a"}}),
            json!({"Tag": {"Key": "class", "Value": "b"}}),
        ),
        (
            json!({"And": {"Prefix": "r/", "Tags": [{"Key": "team", "Value": "a"}]}}),
            json!({"Prefix": "r/x/"}),
        ),
    ];
    for (a, b) in overlapping {
        let e = err(vec![
            rule("first", 4, a.clone(), "dst-one"),
            rule("second", 4, b.clone(), "dst-one"),
        ]);
        assert!(
            matches!(&e, RulesError::Overlap { first: RuleRef::Id(f), second: RuleRef::Id(s), priority: 4, .. } if f == "first" && s == "second"),
            "{a} / {b}: {e}"
        );
        assert!(e.to_string().contains("dst-one"), "{e}");
        // Different priorities, different buckets, or one disabled: accepted.
        RuleSet::from_json(&doc(vec![
            rule("first", 4, a.clone(), "dst-one"),
            rule("second", 5, b.clone(), "dst-one"),
        ]))
        .unwrap();
        RuleSet::from_json(&doc(vec![
            rule("first", 4, a.clone(), "dst-one"),
            rule("second", 4, b.clone(), "dst-two"),
        ]))
        .unwrap();
        let mut off = rule("second", 4, b, "dst-one");
        off["Status"] = json!("Disabled");
        RuleSet::from_json(&doc(vec![rule("first", 4, a, "dst-one"), off])).unwrap();
    }
    // Disjoint filters may share a priority: no object matches both.
    let disjoint = [
        (json!({"Prefix": "logs/"}), json!({"Prefix": "data/"})),
        // `prod` and `production` overlap; `prod/` and `production/` do not.
        (json!({"Prefix": "prod/"}), json!({"Prefix": "production/"})),
        (
            json!({"Tag": {"Key": "team", "Value": "a"}}),
            json!({"Tag": {"Key": "team", "Value": "b"}}),
        ),
    ];
    for (a, b) in disjoint {
        RuleSet::from_json(&doc(vec![
            rule("first", 4, a, "dst-one"),
            rule("second", 4, b, "dst-one"),
        ]))
        .unwrap();
    }
}

#[test]
fn destinations_need_a_role_and_a_kms_key_arn() {
    let mut r = rule("no-role", 1, json!({}), "dst-one");
    r["Destination"]
        .as_object_mut()
        .unwrap()
        .remove("FallbackReplicator");
    let e = err(vec![r]);
    assert!(
        matches!(&e, RulesError::Missing { rule: RuleRef::Id(id), field, .. } if id == "no-role" && field.ends_with("RoleArn")),
        "{e}"
    );
    let mut r = rule("no-key", 1, json!({}), "dst-one");
    r["Destination"]
        .as_object_mut()
        .unwrap()
        .remove("EncryptionConfiguration");
    assert!(matches!(
        err(vec![r]),
        RulesError::Missing {
            field: "Destination.EncryptionConfiguration.ReplicaKmsKeyID",
            ..
        }
    ));
}

#[test]
fn malformed_values_name_the_rule_and_the_field() {
    let cases: [(&str, &[&str], Value); 9] = [
        (
            "Destination.Bucket",
            &["Destination", "Bucket"],
            json!("dst-one"),
        ),
        (
            "Destination.Bucket",
            &["Destination", "Bucket"],
            json!("arn:aws:s3:::Bad_Bucket"),
        ),
        (
            "Destination.EncryptionConfiguration.ReplicaKmsKeyID",
            &["Destination", "EncryptionConfiguration", "ReplicaKmsKeyID"],
            json!("alias/replica"),
        ),
        (
            "Destination.FallbackReplicator.RoleArn",
            &["Destination", "FallbackReplicator", "RoleArn"],
            json!("arn:aws:iam::222222222222:user/someone"),
        ),
        (
            "Destination.Account",
            &["Destination", "Account"],
            json!("1234"),
        ),
        (
            "Destination.StorageClass",
            &["Destination", "StorageClass"],
            json!("COLD"),
        ),
        (
            "Destination.FallbackReplicator.Region",
            &["Destination", "FallbackReplicator", "Region"],
            json!("Europe"),
        ),
        (
            "Destination.FallbackReplicator.KeyPrefix",
            &["Destination", "FallbackReplicator", "KeyPrefix"],
            json!("replica"),
        ),
        ("Filter.Prefix", &["Filter", "Prefix"], json!("logs/*")),
    ];
    for (field, path, value) in cases {
        let mut r = rule("bad", 1, json!({"Prefix": "a/"}), "dst-one");
        let mut at = &mut r;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = value.clone();
        let e = err(vec![r]);
        assert!(
            matches!(&e, RulesError::Invalid { rule: RuleRef::Id(id), field: f, .. } if id == "bad" && *f == field),
            "{field}={value}: {e}"
        );
    }
}

#[test]
fn the_external_id_is_never_repeated_in_errors_or_debug() {
    let mut r = rule("secret", 1, json!({}), "dst-one");
    r["Destination"]["FallbackReplicator"]["ExternalId"] = json!("top secret!");
    let e = err(vec![r.clone()]).to_string();
    assert!(!e.contains("top secret"), "{e}");
    r["Destination"]["FallbackReplicator"]["ExternalId"] = json!("s3cr3t-value");
    let set = RuleSet::from_json(&doc(vec![r])).unwrap();
    assert!(!format!("{set:?}").contains("s3cr3t"));
}

#[test]
fn native_v2_requirements() {
    let mut r = rule("no-priority", 1, json!({"Prefix": "a/"}), "dst-one");
    r.as_object_mut().unwrap().remove("Priority");
    assert!(matches!(
        err(vec![r]),
        RulesError::Missing {
            field: "Priority",
            ..
        }
    ));
    let mut r = rule("no-dmr", 1, json!({"Prefix": "a/"}), "dst-one");
    r.as_object_mut().unwrap().remove("DeleteMarkerReplication");
    assert!(matches!(
        err(vec![r]),
        RulesError::Missing {
            field: "DeleteMarkerReplication",
            ..
        }
    ));
    let mut r = rule(
        "tags-and-deletes",
        1,
        json!({"Tag": {"Key": "k", "Value": "v"}}),
        "dst-one",
    );
    r["DeleteMarkerReplication"]["Status"] = json!("Enabled");
    assert!(matches!(err(vec![r]), RulesError::Conflict { .. }));
    let two = rule(
        "two",
        1,
        json!({"Prefix": "a/", "Tag": {"Key": "k", "Value": "v"}}),
        "dst-one",
    );
    assert!(matches!(err(vec![two]), RulesError::Conflict { .. }));
    let mut both = rule("both", 1, json!({"Prefix": "a/"}), "dst-one");
    both["Prefix"] = json!("a/");
    assert!(matches!(err(vec![both]), RulesError::Conflict { .. }));
    let dup = rule(
        "dup-tag",
        1,
        json!({"And": {"Tags": [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]}}),
        "dst-one",
    );
    assert!(matches!(err(vec![dup]), RulesError::Conflict { .. }));
    assert_eq!(err(vec![]), RulesError::NoRules);
}

#[test]
fn a_v1_rule_has_priority_zero_and_replicates_delete_markers() {
    let mut r = rule("v1", 7, json!({}), "dst-one");
    let o = r.as_object_mut().unwrap();
    o.remove("Filter");
    o.remove("DeleteMarkerReplication");
    o.remove("Priority");
    o.insert("Prefix".into(), json!("old/"));
    let set = RuleSet::from_json(&doc(vec![r])).unwrap();
    let rule = &set.rules()[0];
    assert_eq!(rule.filter.prefix, "old/");
    assert_eq!(rule.priority, 0);
    assert!(rule.delete_markers);
}

#[test]
fn placeholders_from_import_are_named() {
    let mut r = rule("imported", 1, json!({}), "dst-one");
    r["Destination"]["FallbackReplicator"]["RoleArn"] =
        json!("<ROLE_ARN for arn:aws:s3:::dst-one>");
    let e = err(vec![r]);
    assert!(
        matches!(&e, RulesError::Placeholder { rule: RuleRef::Id(id), .. } if id == "imported"),
        "{e}"
    );
    assert!(e.to_string().contains("--role-map"), "{e}");
}

#[test]
fn the_engine_refuses_what_it_cannot_yet_carry_out() {
    let two = RuleSet::from_json(&complete_example()).unwrap();
    let e = two.single_rule().unwrap_err();
    assert!(
        e.to_string().contains("backup-replica") && e.to_string().contains("audit-replica"),
        "{e}"
    );
    let tags = RuleSet::from_json(&doc(vec![rule(
        "tagged",
        1,
        json!({"Tag": {"Key": "k", "Value": "v"}}),
        "dst-one",
    )]))
    .unwrap();
    assert!(matches!(
        tags.single_rule(),
        Err(RulesError::EngineLimitation { .. })
    ));
    let one = RuleSet::from_json(&doc(vec![rule(
        "one",
        1,
        json!({"Prefix": "a/"}),
        "dst-one",
    )]))
    .unwrap();
    assert_eq!(one.single_rule().unwrap().id, "one");
}

#[test]
fn a_native_configuration_round_trips_through_the_document() {
    use aws_sdk_s3::types as t;
    let native = t::ReplicationConfiguration::builder()
        .role("arn:aws:iam::111111111111:role/native")
        .rules(
            t::ReplicationRule::builder()
                .id("native")
                .priority(3)
                .status(t::ReplicationRuleStatus::Enabled)
                .filter(
                    t::ReplicationRuleFilter::builder()
                        .and(
                            t::ReplicationRuleAndOperator::builder()
                                .prefix("p/")
                                .tags(t::Tag::builder().key("k").value("v").build().unwrap())
                                .build(),
                        )
                        .build(),
                )
                .delete_marker_replication(
                    t::DeleteMarkerReplication::builder()
                        .status(t::DeleteMarkerReplicationStatus::Disabled)
                        .build(),
                )
                .destination(
                    t::Destination::builder()
                        .bucket("arn:aws:s3:::dst-one")
                        .account("222222222222")
                        .storage_class(t::StorageClass::StandardIa)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let doc = Document::from_native(&native);
    let text = doc.to_json_pretty();
    let again = Document::parse(&text).unwrap();
    assert_eq!(doc, again);
    let rule = &again.rules[0];
    assert_eq!(rule.priority, Some(3));
    let and = rule.filter.as_ref().unwrap().and.as_ref().unwrap();
    assert_eq!(and.prefix.as_deref(), Some("p/"));
}

#[test]
fn source_storage_class_keeps_what_a_general_purpose_bucket_takes() {
    use aws_sdk_s3::types::StorageClass as C;
    let source = ReplicaStorageClass::Source;
    for kept in [
        C::StandardIa,
        C::GlacierIr,
        C::DeepArchive,
        C::IntelligentTiering,
    ] {
        assert_eq!(source.for_source(Some(&kept)), Some(kept));
    }
    for standard in [
        C::ExpressOnezone,
        C::Outposts,
        C::Snow,
        C::FsxOpenzfs,
        C::from("NEW_CLASS"),
    ] {
        assert_eq!(source.for_source(Some(&standard)), None, "{standard:?}");
    }
    assert_eq!(source.for_source(None), None);
    let fixed = ReplicaStorageClass::Fixed(C::Glacier);
    assert_eq!(fixed.for_source(Some(&C::StandardIa)), Some(C::Glacier));
    assert_eq!(
        ReplicaStorageClass::BucketDefault.for_source(Some(&C::Glacier)),
        None
    );
    assert_eq!(
        ReplicaStorageClass::parse("SOURCE"),
        Some(ReplicaStorageClass::Source)
    );
    assert_eq!(
        ReplicaStorageClass::parse("GLACIER_IR"),
        Some(ReplicaStorageClass::Fixed(C::GlacierIr))
    );
    assert_eq!(ReplicaStorageClass::parse("glacier"), None);
}
