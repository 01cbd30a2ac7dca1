//! Replication rules against the emulator: `rules import` of a native configuration the
//! emulator stores (PutBucketReplication), `rules check` on what it printed, the document
//! read from SSM and from S3 at start-up, and the start-up errors of malformed documents,
//! each naming its rule.

use std::collections::HashMap;

use aws_sdk_s3::types as t;
use replicator_core::rules::RulesError;
use replicator_core::{Clients, Config, ConfigError, Outcome, Replicator};
use replicator_tests::{World, DESTINATION_ACCOUNT, DESTINATION_ROLE, EXTERNAL_ID};
use serde_json::{json, Value};

async fn cli(world: &World, args: &[&str]) -> (i32, String) {
    let mut argv = vec!["replicator".to_owned()];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv.extend([
        "--source-bucket".to_owned(),
        world.source_bucket.clone(),
        "--s3-force-path-style".to_owned(),
        "true".to_owned(),
    ]);
    let mut out = Vec::new();
    let code = replicator_cli::run(argv, Some(world.source_sdk.clone()), &mut out).await;
    (code, String::from_utf8(out).unwrap())
}

fn temp_file(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

/// A rule replicating to this world's destination, complete.
fn world_rule(world: &World, id: &str, priority: u32, filter: Value) -> Value {
    json!({
        "ID": id, "Priority": priority, "Status": "Enabled", "Filter": filter,
        "DeleteMarkerReplication": {"Status": "Disabled"},
        "Destination": {
            "Bucket": format!("arn:aws:s3:::{}", world.destination_bucket),
            "Account": DESTINATION_ACCOUNT,
            "EncryptionConfiguration": {"ReplicaKmsKeyID": world.destination_key_arn},
            "FallbackReplicator": {"RoleArn": DESTINATION_ROLE, "ExternalId": EXTERNAL_ID,
                                   "ServerSideCopy": "off"}
        }
    })
}

/// The settings a REPLICATION_RULES deployment has: no single-destination variable.
fn rules_vars(world: &World, rules: &str) -> HashMap<&'static str, String> {
    HashMap::from([
        ("SOURCE_BUCKET", world.source_bucket.clone()),
        ("REPLICATION_RULES", rules.to_owned()),
        ("S3_FORCE_PATH_STYLE", "true".to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", "rules-test".to_owned()),
    ])
}

async fn load(world: &World, rules: &str) -> Result<Config, ConfigError> {
    // The policy proof evaluates this deployment's requests against the world's policies:
    // the one rule names the world's own buckets, key and role.
    world.register();
    let vars = rules_vars(world, rules);
    Config::load(|k| vars.get(k).cloned(), &world.source_sdk).await
}

fn native_rule(
    id: &str,
    priority: i32,
    enabled: bool,
    filter: t::ReplicationRuleFilter,
    deletes: bool,
    bucket: &str,
    account: &str,
) -> t::ReplicationRule {
    t::ReplicationRule::builder()
        .id(id)
        .priority(priority)
        .status(if enabled {
            t::ReplicationRuleStatus::Enabled
        } else {
            t::ReplicationRuleStatus::Disabled
        })
        .filter(filter)
        .delete_marker_replication(
            t::DeleteMarkerReplication::builder()
                .status(if deletes {
                    t::DeleteMarkerReplicationStatus::Enabled
                } else {
                    t::DeleteMarkerReplicationStatus::Disabled
                })
                .build(),
        )
        .destination(
            t::Destination::builder()
                .bucket(format!("arn:aws:s3:::{bucket}"))
                .account(account)
                .storage_class(t::StorageClass::StandardIa)
                .encryption_configuration(
                    t::EncryptionConfiguration::builder()
                        .replica_kms_key_id(format!(
                            "arn:aws:kms:us-east-1:{account}:key/00000000-0000-0000-0000-00000000000{priority}"
                        ))
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn routes(check: &Value, key: &str) -> Vec<(String, String)> {
    let entry = check["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {check}"));
    entry["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["bucket"].as_str().unwrap().to_owned(),
                r["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn rules_import_round_trips_a_native_configuration_that_check_routes_as_native_would() {
    let world = World::new().await;
    let (backup, audit) = ("backup-replica-bucket", "audit-replica-bucket");
    let prefix = |p: &str| t::ReplicationRuleFilter::builder().prefix(p).build();
    let native = t::ReplicationConfiguration::builder()
        .role("arn:aws:iam::123456789012:role/native-replication")
        .rules(native_rule(
            "everything",
            1,
            true,
            prefix(""),
            true,
            backup,
            DESTINATION_ACCOUNT,
        ))
        .rules(native_rule(
            "logs",
            3,
            true,
            prefix("logs/"),
            false,
            backup,
            DESTINATION_ACCOUNT,
        ))
        .rules(native_rule(
            "finance",
            2,
            true,
            t::ReplicationRuleFilter::builder()
                .and(
                    t::ReplicationRuleAndOperator::builder()
                        .prefix("reports/")
                        .tags(
                            t::Tag::builder()
                                .key("team")
                                .value("finance")
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build(),
            false,
            audit,
            "333333333333",
        ))
        .rules(native_rule(
            "paused",
            4,
            false,
            prefix("tmp/"),
            false,
            audit,
            "333333333333",
        ))
        .build()
        .unwrap();
    world.put_replication_configuration(native).await;

    // Without a role map, import writes placeholders and check refuses them by rule.
    let (code, bare) = cli(&world, &["rules", "import"]).await;
    assert_eq!(code, 0, "{bare}");
    let bare_file = temp_file(&bare);
    let (code, out) = cli(
        &world,
        &[
            "rules",
            "check",
            "--rules",
            bare_file.path().to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("rule \"everything\"") && out.contains("placeholder"),
        "{out}"
    );

    let role_map = temp_file(
        &json!({
            format!("arn:aws:s3:::{backup}"): {"RoleArn": DESTINATION_ROLE, "ExternalId": EXTERNAL_ID},
            "333333333333": {"RoleArn": "arn:aws:iam::333333333333:role/replicator-destination",
                             "Region": "eu-west-1"},
        })
        .to_string(),
    );
    let (code, imported) = cli(
        &world,
        &[
            "rules",
            "import",
            "--role-map",
            role_map.path().to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{imported}");
    let doc: Value = serde_json::from_str(&imported).unwrap_or_else(|e| panic!("{e}: {imported}"));
    assert_eq!(doc["Rules"].as_array().unwrap().len(), 4, "{doc}");
    let finance = &doc["Rules"][2];
    assert_eq!(
        finance["Filter"]["And"]["Tags"][0]["Value"], "finance",
        "{doc}"
    );
    assert_eq!(finance["Destination"]["Account"], "333333333333");
    assert_eq!(
        finance["Destination"]["FallbackReplicator"]["Region"],
        "eu-west-1"
    );
    assert_eq!(doc["Rules"][3]["Status"], "Disabled");

    let file = temp_file(&imported);
    let path = file.path().to_str().unwrap();
    let (code, out) = cli(
        &world,
        &[
            "rules",
            "check",
            "--rules",
            path,
            "--json",
            "--key",
            "logs/app.log",
            "--key",
            "reports/q1.csv",
            "--tags",
            "team=finance",
            "--key",
            "reports/q2.csv",
            "--tags",
            "team=sales",
            "--key",
            "tmp/scratch",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let check: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let pair = |b: &str, r: &str| (b.to_owned(), r.to_owned());
    // Per destination bucket, the highest priority among the matching enabled rules.
    assert_eq!(routes(&check, "logs/app.log"), [pair(backup, "logs")]);
    assert_eq!(
        routes(&check, "reports/q1.csv"),
        [pair(backup, "everything"), pair(audit, "finance")]
    );
    assert_eq!(
        routes(&check, "reports/q2.csv"),
        [pair(backup, "everything")]
    );
    // The disabled rule routes nothing.
    assert_eq!(routes(&check, "tmp/scratch"), [pair(backup, "everything")]);

    // The table form says the same.
    let (code, table) = cli(
        &world,
        &["rules", "check", "--rules", path, "--key", "logs/app.log"],
    )
    .await;
    assert_eq!(code, 0, "{table}");
    assert!(
        table.contains("4 rules (3 enabled) to 2 destination buckets"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("logs/app.log") && l.contains(backup) && l.contains("logs")),
        "{table}"
    );
}

#[tokio::test]
async fn rules_import_names_a_bucket_without_replication() {
    let world = World::new().await;
    let (code, out) = cli(&world, &["rules", "import"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&world.source_bucket), "{out}");
}

#[tokio::test]
async fn rules_from_ssm_and_from_s3_configure_the_engine_that_replicates() {
    let world = World::new().await;
    let document =
        json!({"Rules": [world_rule(&world, "reports", 1, json!({"Prefix": "reports/"}))]})
            .to_string();
    let ssm = aws_sdk_ssm::Client::new(&world.source_sdk);
    let parameter = format!("/replicator/{}/rules", world.source_bucket);
    ssm.put_parameter()
        .name(&parameter)
        .value(&document)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    world
        .src
        .put_object()
        .bucket(&world.source_bucket)
        .key("config/rules.json")
        .body(document.clone().into_bytes().into())
        .send()
        .await
        .unwrap();
    let from_ssm = load(&world, &format!("ssm:{parameter}")).await.unwrap();
    let from_s3 = load(
        &world,
        &format!("s3://{}/config/rules.json", world.source_bucket),
    )
    .await
    .unwrap();
    assert_eq!(from_ssm, from_s3);
    // `replicator policies` lets the functions read the rules where they are kept.
    for (location, action, resource) in [
        (
            format!("ssm:{parameter}"),
            "ssm:GetParameter",
            format!("arn:aws:ssm:REGION:123456789012:parameter{parameter}"),
        ),
        (
            format!("s3://{}/config/rules.json", world.source_bucket),
            "s3:GetObject",
            format!("arn:aws:s3:::{}/config/rules.json", world.source_bucket),
        ),
    ] {
        let (code, out) = cli(
            &world,
            &[
                "policies",
                "--json",
                "--function-role-arn",
                "arn:aws:iam::123456789012:role/fn",
                "--replication-rules",
                &location,
            ],
        )
        .await;
        assert_eq!(code, 0, "{out}");
        let bundle: Value = serde_json::from_str(&out).unwrap();
        let read = bundle["source account: the functions' role policy"]["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "ReadReplicationRules")
            .unwrap_or_else(|| panic!("{location}: {out}"))
            .clone();
        assert_eq!(
            (read["Action"].as_str(), read["Resource"].as_str()),
            (Some(action), Some(resource.as_str()))
        );
    }
    assert_eq!(from_ssm.rules.rules()[0].id, "reports");
    assert_eq!(from_ssm.source.key_prefix, "reports/");
    assert_eq!(from_ssm.destination.bucket, world.destination_bucket);

    // The engine configured from the rules replicates under the rule's prefix only.
    world.put("reports/2024.csv", b"a,b\n".to_vec()).await;
    world.put("other/2024.csv", b"a,b\n".to_vec()).await;
    let replicator = Replicator::new(
        from_ssm.clone(),
        Clients::new(&world.source_sdk, &from_ssm).await,
    );
    let copied = replicator
        .replicate(&world.request("reports/2024.csv"))
        .await
        .unwrap();
    assert!(matches!(copied, Outcome::Copied { .. }), "{copied:?}");
    let skipped = replicator
        .replicate(&world.request("other/2024.csv"))
        .await
        .unwrap();
    assert!(matches!(skipped, Outcome::Skipped { .. }), "{skipped:?}");
    let head = world
        .dst
        .head_object()
        .bucket(&world.destination_bucket)
        .key("reports/2024.csv")
        .send()
        .await
        .expect("the replica exists");
    assert_eq!(
        head.ssekms_key_id(),
        Some(world.destination_key_arn.as_str())
    );

    // `rules check` reads REPLICATION_RULES from SSM too.
    let (code, out) = cli(
        &world,
        &[
            "rules",
            "check",
            "--replication-rules",
            &format!("ssm:{parameter}"),
            "--key",
            "reports/x",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("reports/x") && out.contains(&world.destination_bucket),
        "{out}"
    );
}

#[tokio::test]
async fn unreadable_and_oversized_rules_name_where_they_were_looked_for() {
    let world = World::new().await;
    let err = load(&world, "ssm:/replicator/no-such-parameter")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Rules(RulesError::Unreadable { location, .. }) if location.contains("/replicator/no-such-parameter")),
        "{err}"
    );
    assert!(err.to_string().starts_with("REPLICATION_RULES"), "{err}");
    let missing = format!("s3://{}/config/missing.json", world.source_bucket);
    let err = load(&world, &missing).await.unwrap_err();
    assert!(err.to_string().contains(&missing), "{err}");
    world
        .src
        .put_object()
        .bucket(&world.source_bucket)
        .key("config/huge.json")
        .body(vec![b' '; 1024 * 1024 + 1].into())
        .send()
        .await
        .unwrap();
    let huge = format!("s3://{}/config/huge.json", world.source_bucket);
    let err = load(&world, &huge).await.unwrap_err();
    assert!(
        matches!(&err, ConfigError::Rules(RulesError::TooLarge { location, .. }) if *location == huge),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_documents_fail_start_up_naming_the_rule() {
    let world = World::new().await;
    let good = |id: &str, priority: u32, filter: Value| world_rule(&world, id, priority, filter);
    let mut unknown = good("typo", 1, json!({"Prefix": "a/"}));
    unknown["Destination"]["FallbackReplicator"]["RoleARN"] = json!(DESTINATION_ROLE);
    let mut no_role = good("no-role", 1, json!({}));
    no_role["Destination"]
        .as_object_mut()
        .unwrap()
        .remove("FallbackReplicator");
    let mut bad_arn = good("bad-arn", 1, json!({}));
    bad_arn["Destination"]["Bucket"] = json!(world.destination_bucket);
    let mut bad_key = good("bad-key", 1, json!({}));
    bad_key["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"] = json!("alias/replica");
    let mut archived = good("archived", 2, json!({"Prefix": "logs/"}));
    archived["Destination"]["FallbackReplicator"]["KeyPrefix"] = json!("archive/");
    let cases: Vec<(&str, Vec<Value>, &str)> = vec![
        ("unknown field", vec![unknown], "\"typo\""),
        (
            "two KeyPrefixes for one bucket",
            vec![good("everything", 1, json!({})), archived],
            "\"archived\"",
        ),
        (
            "duplicate ID",
            vec![
                good("twice", 1, json!({"Prefix": "a/"})),
                good("twice", 2, json!({"Prefix": "b/"})),
            ],
            "\"twice\"",
        ),
        (
            "equal-priority overlap",
            vec![
                good("wide", 5, json!({"Prefix": "logs/"})),
                good("narrow", 5, json!({"Prefix": "logs/app/"})),
            ],
            "\"narrow\"",
        ),
        ("missing role", vec![no_role], "\"no-role\""),
        ("bad bucket ARN", vec![bad_arn], "\"bad-arn\""),
        ("KMS key not an ARN", vec![bad_key], "\"bad-key\""),
    ];
    let ssm = aws_sdk_ssm::Client::new(&world.source_sdk);
    for (i, (what, rules, names)) in cases.into_iter().enumerate() {
        let text = json!({ "Rules": rules }).to_string();
        // Inline, as the Lambda reads it at cold start ...
        let err = load(&world, &text).await.unwrap_err().to_string();
        assert!(
            err.starts_with("REPLICATION_RULES") && err.contains(names),
            "{what}: {err}"
        );
        // ... from SSM the same ...
        let parameter = format!("/replicator/{}/bad-{i}", world.source_bucket);
        ssm.put_parameter()
            .name(&parameter)
            .value(&text)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
        let err = load(&world, &format!("ssm:{parameter}"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(names), "{what} from SSM: {err}");
        // ... and `rules check` exits 1 with the same words.
        let file = temp_file(&text);
        let (code, out) = cli(
            &world,
            &["rules", "check", "--rules", file.path().to_str().unwrap()],
        )
        .await;
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains(names), "{what}: {out}");
    }
}

#[tokio::test]
async fn rules_beside_single_destination_variables_or_two_destinations_in_a_one_rule_command_fail_clearly(
) {
    let world = World::new().await;
    let one = json!({"Rules": [world_rule(&world, "only", 1, json!({}))]}).to_string();
    let mut vars = world.vars();
    vars.insert("REPLICATION_RULES", one);
    let err = Config::from_lookup(|k| vars.get(k).cloned()).unwrap_err();
    assert!(matches!(err, ConfigError::WithRules { .. }), "{err}");
    assert!(err.to_string().contains("REPLICATION_RULES"), "{err}");

    let mut second = world_rule(&world, "second", 1, json!({"Prefix": "b/"}));
    second["Destination"]["Bucket"] = json!("arn:aws:s3:::another-replica-bucket");
    let two = json!({"Rules": [world_rule(&world, "first", 1, json!({"Prefix": "a/"})), second]})
        .to_string();
    let err = load(&world, &two).await.unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::Rules(RulesError::EngineLimitation { .. })
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&world.destination_bucket) && text.contains("another-replica-bucket"),
        "{text}"
    );
    // What does take them: the functions' engines, one per rule.
    let vars = rules_vars(&world, &two);
    let (_, configs) = Config::per_rule(|k| vars.get(k).cloned(), None)
        .await
        .expect("the functions take two destinations");
    let rules: Vec<&str> = configs.iter().map(|c| c.rule_id.as_str()).collect();
    assert_eq!(rules, ["first", "second"]);
}

#[tokio::test]
async fn policies_for_two_destinations_grant_each_account_its_own_and_the_functions_both_roles() {
    let world = World::new().await;
    let mut second = world_rule(&world, "second", 1, json!({"Prefix": "b/"}));
    second["Destination"]["Bucket"] = json!("arn:aws:s3:::another-replica-bucket");
    second["Destination"]["Account"] = json!("333333333333");
    second["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"] =
        json!("arn:aws:kms:eu-west-1:333333333333:key/00000000-1111-2222-3333-444444444444");
    second["Destination"]["FallbackReplicator"]["RoleArn"] =
        json!("arn:aws:iam::333333333333:role/second-destination");
    second["DeleteMarkerReplication"] = json!({"Status": "Enabled"});
    let two = json!({"Rules": [world_rule(&world, "first", 1, json!({"Prefix": "a/"})), second]})
        .to_string();
    let (code, out) = cli(&world, &["policies", "--json", "--replication-rules", &two]).await;
    assert_eq!(code, 0, "{out}");
    let bundle: Value = serde_json::from_str(&out).unwrap();
    let sections = bundle.as_object().unwrap();
    let source = &sections["source account: the functions' role policy"]["Statement"];
    let statement = |sid: &str| {
        source
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap()
            .clone()
    };
    assert_eq!(
        statement("AssumeDestinationRole")["Resource"],
        json!([
            DESTINATION_ROLE,
            "arn:aws:iam::333333333333:role/second-destination"
        ])
    );
    assert_eq!(
        statement("ReadSourceObjects")["Resource"],
        json!([
            format!("arn:aws:s3:::{}/a/*", world.source_bucket),
            format!("arn:aws:s3:::{}/b/*", world.source_bucket)
        ])
    );
    let permissions = |bucket: &str, account: &str| {
        sections[&format!(
            "destination s3://{bucket} (account {account}): the destination role's permissions"
        )]["Statement"]
            .as_array()
            .unwrap_or_else(|| panic!("no permissions for {bucket} in {out}"))
            .clone()
    };
    let first = permissions(&world.destination_bucket, DESTINATION_ACCOUNT);
    let second = permissions("another-replica-bucket", "333333333333");
    let key_of = |statements: &[Value]| {
        statements
            .iter()
            .find(|s| s["Sid"] == "UseReplicaKeyThroughS3")
            .unwrap()["Resource"]
            .clone()
    };
    assert_eq!(key_of(&first), json!(world.destination_key_arn));
    assert_eq!(
        key_of(&second),
        json!("arn:aws:kms:eu-west-1:333333333333:key/00000000-1111-2222-3333-444444444444")
    );
    // Delete markers only where the rule replicates them.
    let deletes = |statements: &[Value]| {
        statements
            .iter()
            .any(|s| s["Sid"] == "DeleteMarkersOnReplicas")
    };
    assert!(!deletes(&first) && deletes(&second), "{out}");
    assert!(
        sections.contains_key(
            "destination s3://another-replica-bucket (account 333333333333): the destination role's trust policy"
        ),
        "{out}"
    );
}
