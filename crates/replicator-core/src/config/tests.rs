//! The runtime contract's rules, variable by variable.

use super::*;
use crate::rules::ReplicaStorageClass;
use std::collections::HashMap;

fn base() -> HashMap<&'static str, String> {
    HashMap::from([
        ("SOURCE_BUCKET", "src-bucket".to_owned()),
        ("DESTINATION_BUCKET", "dst-bucket".to_owned()),
        (
            "DESTINATION_ROLE_ARN",
            "arn:aws:iam::222222222222:role/dest".to_owned(),
        ),
        (
            "DESTINATION_KMS_KEY_ID",
            "arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                .to_owned(),
        ),
    ])
}

fn load(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
    Config::from_lookup(|k| vars.get(k).cloned())
}

#[test]
fn minimal_configuration_uses_documented_defaults() {
    let c = load(&base()).unwrap();
    assert_eq!(c.destination.account_id, "222222222222");
    assert!(!c.destination.replicate_deletes);
    assert!(c.destination.bucket_key_enabled);
    assert_eq!(c.transfer.checksum_algorithm, ChecksumAlgorithm::Crc32C);
    assert_eq!(c.transfer.multipart_threshold, DEFAULT_MULTIPART_THRESHOLD);
    assert_eq!(c.destination_key("a/b"), "a/b");
}

#[test]
fn every_required_variable_is_named_when_missing() {
    for name in [
        "SOURCE_BUCKET",
        "DESTINATION_BUCKET",
        "DESTINATION_ROLE_ARN",
        "DESTINATION_KMS_KEY_ID",
    ] {
        let mut vars = base();
        vars.remove(name);
        let err = load(&vars).unwrap_err();
        assert!(
            matches!(err, ConfigError::Missing { variable, .. } if variable == name),
            "{err}"
        );
        assert!(err.to_string().contains(name));
    }
}

#[test]
fn malformed_values_name_their_variable() {
    let cases = [
        ("SOURCE_BUCKET", "s3://src-bucket"),
        ("DESTINATION_BUCKET", "Upper"),
        ("DESTINATION_ROLE_ARN", "arn:aws:iam::2222:role/x"),
        ("DESTINATION_ROLE_ARN", "arn:aws:iam::222222222222:user/x"),
        (
            "DESTINATION_KMS_KEY_ID",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
        ),
        ("DESTINATION_KMS_KEY_ID", "alias/replica"),
        ("DESTINATION_ACCOUNT_ID", "12345"),
        ("SOURCE_ACCOUNT_ID", "abc"),
        ("DESTINATION_REGION", "Europe"),
        ("DESTINATION_STORAGE_CLASS", "COLD"),
        ("SERVER_SIDE_SINGLE_COPY_MAX", "6GiB"),
        ("SERVER_SIDE_SINGLE_COPY_MAX", "lots"),
        ("REPLICATE_DELETES", "maybe"),
        ("S3_FORCE_PATH_STYLE", "2"),
        ("CHECKSUM_ALGORITHM", "MD5"),
        ("PART_SIZE", "1MiB"),
        ("MULTIPART_THRESHOLD", "lots"),
        ("MAX_IN_FLIGHT_BYTES", "1MiB"),
        ("COPY_CONCURRENCY", "0"),
        ("DESTINATION_EXTERNAL_ID", "has space"),
        ("SERVER_SIDE_COPY", "sometimes"),
        // Regression: `prod` also matched `production/`, and `*` is an IAM wildcard.
        ("KEY_PREFIX", "prod"),
        ("KEY_PREFIX", "logs/*/"),
        ("DESTINATION_PREFIX", "replica"),
        ("DESTINATION_PREFIX", "a?/"),
    ];
    for (name, value) in cases {
        let mut vars = base();
        vars.insert(name, value.to_owned());
        let err = load(&vars).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { variable, .. } if *variable == name),
            "{name}: {err}"
        );
    }
}

#[test]
fn parts_may_be_larger_than_the_memory_budget() {
    // Parts are streamed, so only a small object's body must fit the budget.
    let mut vars = base();
    vars.insert("PART_SIZE", "64MiB".into());
    vars.insert("MULTIPART_THRESHOLD", "5MiB".into());
    vars.insert("MAX_IN_FLIGHT_BYTES", "8MiB".into());
    let c = load(&vars).unwrap();
    assert_eq!(c.transfer.part_size, 64 * MIB);
}

#[test]
fn external_id_never_appears_in_errors_or_debug() {
    let mut vars = base();
    vars.insert("DESTINATION_EXTERNAL_ID", "secret value!".to_owned());
    let err = load(&vars).unwrap_err().to_string();
    assert!(!err.contains("secret"), "{err}");
    vars.insert("DESTINATION_EXTERNAL_ID", "s3cr3t-external".to_owned());
    let debug = format!("{:?}", load(&vars).unwrap());
    assert!(!debug.contains("s3cr3t"), "{debug}");
}

#[test]
fn variables_lists_exactly_what_is_read() {
    let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let vars = base();
    let _ = Config::from_lookup(|k| {
        read.borrow_mut().insert(k.to_owned());
        vars.get(k).cloned()
    });
    let listed: std::collections::BTreeSet<String> =
        VARIABLES.iter().map(|v| v.to_string()).collect();
    assert_eq!(read.into_inner(), listed);
}

#[test]
fn session_name_is_derived_from_the_function_name() {
    let mut vars = base();
    vars.insert("AWS_LAMBDA_FUNCTION_NAME", "my fn/copier".to_owned());
    assert_eq!(
        load(&vars).unwrap().runtime.role_session_name,
        "my-fn-copier"
    );
}

fn one_rule_document(filter: &str) -> String {
    format!(
        r#"{{"Rules": [{{"ID": "only", "Priority": 1, "Status": "Enabled", "Filter": {filter},
            "DeleteMarkerReplication": {{"Status": "Enabled"}},
            "Destination": {{"Bucket": "arn:aws:s3:::dst-bucket", "StorageClass": "STANDARD_IA",
              "EncryptionConfiguration": {{"ReplicaKmsKeyID": "arn:aws:kms:us-east-1:222222222222:key/k"}},
              "FallbackReplicator": {{"RoleArn": "arn:aws:iam::222222222222:role/dest",
                "ExternalId": "ext-id", "KeyPrefix": "copy/", "ServerSideCopy": "off"}}}}}}]}}"#
    )
}

fn rules_only(document: String) -> HashMap<&'static str, String> {
    HashMap::from([
        ("SOURCE_BUCKET", "src-bucket".to_owned()),
        ("REPLICATION_RULES", document),
    ])
}

#[test]
fn the_variables_are_one_rule() {
    let mut vars = base();
    vars.insert("KEY_PREFIX", "logs/".into());
    vars.insert("REPLICATE_DELETES", "true".into());
    let c = load(&vars).unwrap();
    let rule = c.rules.single_rule().unwrap();
    assert_eq!(rule.id, crate::rules::VARIABLES_RULE_ID);
    assert_eq!(rule.filter.prefix, "logs/");
    assert!(rule.delete_markers && c.destination.replicate_deletes);
    assert_eq!(c.source.key_prefix, "logs/");
    assert_eq!(rule.destination.bucket, c.destination.bucket);
}

#[test]
fn a_one_rule_document_configures_the_engine_like_the_variables() {
    let c = load(&rules_only(one_rule_document(r#"{"Prefix": "logs/"}"#))).unwrap();
    assert_eq!(c.source.key_prefix, "logs/");
    assert_eq!(c.destination.bucket, "dst-bucket");
    assert_eq!(c.destination.prefix, "copy/");
    assert_eq!(c.destination.account_id, "222222222222");
    assert_eq!(c.destination.external_id.as_deref(), Some("ext-id"));
    assert!(c.destination.replicate_deletes);
    assert!(!c.transfer.server_side_copy);
    assert_eq!(
        c.destination.storage_class,
        ReplicaStorageClass::Fixed(aws_sdk_s3::types::StorageClass::StandardIa)
    );
}

#[test]
fn rules_and_single_destination_variables_do_not_mix() {
    for variable in crate::rules::SINGLE_DESTINATION_VARIABLES {
        let mut vars = rules_only(one_rule_document("{}"));
        vars.insert(variable, "x".into());
        let err = load(&vars).unwrap_err();
        assert_eq!(err, ConfigError::WithRules { variable });
        assert!(err.to_string().contains(variable));
    }
}

#[test]
fn rules_errors_name_the_variable_and_the_rule() {
    let err = load(&rules_only(one_rule_document(r#"{"Prefx": "a/"}"#))).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("REPLICATION_RULES:") && text.contains("\"only\""),
        "{text}"
    );
    // A rule set the engine cannot carry out yet is refused, not cut to its first rule.
    let tagged = one_rule_document(r#"{"Tag": {"Key": "k", "Value": "v"}}"#)
        .replace(r#""Status": "Enabled"}"#, r#""Status": "Disabled"}"#);
    let err = load(&rules_only(tagged)).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::Rules(crate::rules::RulesError::EngineLimitation { .. })
        ),
        "{err}"
    );
    let err = load(&rules_only("ssm:/replicator/rules".into())).unwrap_err();
    assert!(
        matches!(&err, ConfigError::RulesNotRead { location } if location.contains("/replicator/rules")),
        "{err}"
    );
}

#[test]
fn an_empty_environment_names_the_source_bucket_first() {
    // Regression: reading the rules first made DESTINATION_BUCKET the first missing variable.
    let err = load(&HashMap::new()).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Missing {
                variable: "SOURCE_BUCKET",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_destinations_policies_cover_what_its_rules_share_and_one_key() {
    let rule = |id: &str, priority: u32, prefix: &str, key: &str| {
        serde_json::json!({"ID": id, "Priority": priority, "Status": "Enabled",
            "Filter": {"Prefix": prefix}, "DeleteMarkerReplication": {"Status": "Disabled"},
            "Destination": {"Bucket": "arn:aws:s3:::replica",
                "EncryptionConfiguration": {"ReplicaKmsKeyID": format!("arn:aws:kms:us-east-1:222222222222:key/{key}")},
                "FallbackReplicator": {"RoleArn": "arn:aws:iam::222222222222:role/r", "KeyPrefix": "in/"}}})
    };
    let set = |rules: Vec<serde_json::Value>| {
        RuleSet::from_json(&serde_json::json!({ "Rules": rules }).to_string()).unwrap()
    };
    let two = set(vec![
        rule("app", 1, "logs/app/", "k"),
        rule("api", 1, "logs/api/", "k"),
    ]);
    // Grants under what both prefixes share, into the bucket's one KeyPrefix.
    assert_eq!(
        two.common_prefixes().unwrap(),
        ("logs/ap".to_owned(), "in/".to_owned())
    );
    let keys = set(vec![
        rule("app", 1, "logs/app/", "k"),
        rule("api", 1, "logs/api/", "other"),
    ]);
    let err = keys.common_prefixes().unwrap_err().to_string();
    assert!(
        err.contains("\"api\"") && err.contains("ReplicaKmsKeyID"),
        "{err}"
    );
}
