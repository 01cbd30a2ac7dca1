use super::*;
use aws_sdk_s3::types as t;

fn native(buckets: &[(&str, Option<&str>)]) -> t::ReplicationConfiguration {
    let mut config =
        t::ReplicationConfiguration::builder().role("arn:aws:iam::111111111111:role/native");
    for (i, (bucket, account)) in buckets.iter().enumerate() {
        let mut d = t::Destination::builder().bucket(*bucket);
        if let Some(a) = account {
            d = d.account(*a);
        }
        config = config.rules(
            t::ReplicationRule::builder()
                .id(format!("rule-{i}"))
                .priority(i as i32)
                .status(t::ReplicationRuleStatus::Enabled)
                .filter(
                    t::ReplicationRuleFilter::builder()
                        .prefix(format!("p{i}/"))
                        .build(),
                )
                .delete_marker_replication(
                    t::DeleteMarkerReplication::builder()
                        .status(t::DeleteMarkerReplicationStatus::Disabled)
                        .build(),
                )
                .destination(
                    d.encryption_configuration(
                        t::EncryptionConfiguration::builder()
                            .replica_kms_key_id("arn:aws:kms:us-east-1:222222222222:key/k")
                            .build(),
                    )
                    .build()
                    .unwrap(),
                )
                .build()
                .unwrap(),
        );
    }
    config.build().unwrap()
}

fn entry(role: &str) -> FallbackReplicatorDoc {
    FallbackReplicatorDoc {
        role_arn: Some(role.into()),
        external_id: Some("ext-id".into()),
        region: None,
        key_prefix: None,
        server_side_copy: None,
    }
}

#[test]
fn the_role_map_fills_each_destination_by_bucket_arn_then_account() {
    let native = native(&[
        ("arn:aws:s3:::dst-one", None),
        ("arn:aws:s3:::dst-two", Some("333333333333")),
    ]);
    let map = RoleMap::from([
        (
            "arn:aws:s3:::dst-one".to_owned(),
            entry("arn:aws:iam::222222222222:role/one"),
        ),
        (
            "333333333333".to_owned(),
            entry("arn:aws:iam::333333333333:role/two"),
        ),
    ]);
    let doc = import_document(&native, &map);
    let set = RuleSet::from_document(&doc).unwrap();
    assert_eq!(
        set.rules()[0].destination.role_arn,
        "arn:aws:iam::222222222222:role/one"
    );
    assert_eq!(
        set.rules()[1].destination.role_arn,
        "arn:aws:iam::333333333333:role/two"
    );
    assert_eq!(set.rules()[1].destination.account_id, "333333333333");
}

#[test]
fn without_a_map_entry_the_placeholders_are_refused_by_check() {
    let doc = import_document(&native(&[("arn:aws:s3:::dst-one", None)]), &RoleMap::new());
    let text = doc.to_json_pretty();
    assert!(
        text.contains("<ROLE_ARN to assume for arn:aws:s3:::dst-one>"),
        "{text}"
    );
    let mut out = Vec::new();
    assert_eq!(check(&text, &[], false, &mut out), EXIT_FAILED);
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("rule \"rule-0\"") && out.contains("placeholder"),
        "{out}"
    );
}

#[test]
fn tags_belong_to_the_key_before_them() {
    let m = command()
        .try_get_matches_from([
            "rules", "check", "--key", "a", "--tags", "x=1,y=2", "--key", "b", "--key", "c",
            "--tags", "z=3",
        ])
        .unwrap();
    let (_, check) = m.subcommand().unwrap();
    let s = samples(check).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].tags.len(), 2);
    assert!(s[1].tags.is_empty());
    assert_eq!(s[2].tags.get("z").map(String::as_str), Some("3"));
    let m = command()
        .try_get_matches_from(["rules", "check", "--tags", "x=1", "--key", "a"])
        .unwrap();
    assert!(samples(m.subcommand().unwrap().1).is_err());
}
