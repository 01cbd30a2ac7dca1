//! The `replicator` CLI against the emulator: doctor on a healthy and on broken setups,
//! policies against the engine's actions and the templates, copy and sync end to end.

use std::collections::BTreeSet;

use replicator_tests::{bytes, World};
use serde_json::Value;

/// Runs `replicator ARGS…` with this world's configuration as flags.
async fn cli(world: &World, args: &[&str]) -> (i32, String) {
    let argv = world.cli_args(args);
    let mut out = Vec::new();
    let code = replicator_cli::run(argv, Some(world.source_sdk.clone()), &mut out).await;
    (code, String::from_utf8(out).unwrap())
}

/// The doctor's JSON for one check.
fn check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {doc}"))
}

/// The doctor's failing check `name` (the doctor exits 1), with the whole report.
async fn failing_check(world: &World, name: &str) -> (Value, Value) {
    let (code, doc) = doctor_json(world).await;
    assert_eq!(code, 1, "{doc}");
    let c = check(&doc, name).clone();
    assert_eq!(c["status"], "fail", "{doc}");
    (c, doc)
}

async fn doctor_json(world: &World) -> (i32, Value) {
    let (code, out) = cli(world, &["doctor", "--json"]).await;
    (
        code,
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")),
    )
}

#[tokio::test]
async fn doctor_passes_a_healthy_setup_and_leaves_nothing_behind() {
    let world = World::new().await;
    world
        .put_with("some/object", b"x".to_vec(), |p| p.tagging("a=b"))
        .await;
    let (code, out) = cli(
        &world,
        &[
            "doctor",
            "--function-role-arn",
            replicator_tests::FUNCTION_ROLE,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains('✗') && !out.contains("\n! "), "{out}");
    assert!(
        out.contains("✓ probe write with the destination key"),
        "{out}"
    );
    assert!(out.contains("✓ assume destination role"), "{out}");
    assert!(
        out.contains("✓ destination role trusts only the functions"),
        "{out}"
    );
    // The role's key grant is through S3 only: the doctor never calls GenerateDataKey itself.
    let direct = replicator_tests::captured_requests(&world.endpoint)
        .into_iter()
        .filter(|r| r["target"] == "TrentService.GenerateDataKey")
        .count();
    assert_eq!(direct, 0, "the doctor called kms:GenerateDataKey directly");
    let probes = world
        .dst
        .list_object_versions()
        .bucket(&world.destination_bucket)
        .prefix(".s3-fallback-replicator/doctor/")
        .send()
        .await
        .unwrap();
    assert!(
        probes.versions().is_empty() && probes.delete_markers().is_empty(),
        "probe left behind"
    );
}

/// KMS throttles the doctor's DescribeKey and GenerateDataKey calls (a 400
/// ThrottlingException, through the fault proxy): the SDK backs off and retries, and the
/// doctor still reports a healthy setup.
#[tokio::test]
async fn doctor_rides_out_kms_throttling() {
    use replicator_tests::faults::{Fault, FaultProxy, Rule};

    let world = World::new().await;
    let proxy = FaultProxy::start(
        &world.endpoint,
        vec![Rule::new(
            " target=TrentService.",
            0.5,
            Fault::KmsThrottling,
        )],
        0x6b6d73,
    )
    .await;
    let sdk = replicator_tests::source_sdk(&proxy.endpoint()).await;
    let mut out = Vec::new();
    let code = replicator_cli::run(world.cli_args(&["doctor"]), Some(sdk), &mut out).await;
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains('✗'), "{out}");
    let throttled = proxy.injected().get("KMS throttling").copied().unwrap_or(0);
    assert!(throttled > 0, "no KMS request was throttled: {out}");
}

#[tokio::test]
async fn doctor_names_a_disabled_destination_key_and_how_to_enable_it() {
    let world = World::new().await;
    let kms = aws_sdk_kms::Client::new(&world.destination_sdk);
    kms.disable_key()
        .key_id(&world.destination_key_id)
        .send()
        .await
        .unwrap();
    let (c, _) = failing_check(&world, "destination KMS key").await;
    assert!(
        c["fix"].as_str().unwrap().contains(&format!(
            "aws kms enable-key --key-id {}",
            world.destination_key_id
        )),
        "{c}"
    );
    assert!(c["cause"].as_str().unwrap().contains("disabled"), "{c}");
}

#[tokio::test]
async fn doctor_names_a_key_pending_deletion() {
    let world = World::new().await;
    let kms = aws_sdk_kms::Client::new(&world.destination_sdk);
    kms.schedule_key_deletion()
        .key_id(&world.destination_key_id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let (c, _) = failing_check(&world, "destination KMS key").await;
    assert!(
        c["fix"].as_str().unwrap().contains("cancel-key-deletion"),
        "{c}"
    );
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains(&world.destination_key_id),
        "{c}"
    );
}

#[tokio::test]
async fn doctor_names_a_missing_destination_bucket() {
    let mut world = World::new().await;
    world.set("DESTINATION_BUCKET", "no-such-replica-bucket");
    let (c, doc) = failing_check(&world, "destination bucket owned by the expected account").await;
    assert!(
        c["cause"]
            .as_str()
            .unwrap()
            .contains("no-such-replica-bucket"),
        "{c}"
    );
    assert_eq!(
        check(&doc, "probe write with the destination key")["status"],
        "skip"
    );
}

#[tokio::test]
async fn doctor_names_a_source_without_versioning() {
    let world = World::new().await;
    let bucket = format!("{}-unversioned", world.source_bucket);
    let world = world.with_source_bucket(bucket.clone()).await;
    let (c, _) = failing_check(&world, "source bucket versioning").await;
    assert!(
        c["fix"].as_str().unwrap().contains(&format!(
            "put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled"
        )),
        "{c}"
    );
}

#[tokio::test]
async fn doctor_names_the_wrong_destination_account() {
    let mut world = World::new().await;
    world.set("DESTINATION_ACCOUNT_ID", "999999999999");
    let (c, _) = failing_check(&world, "destination bucket owned by the expected account").await;
    let cause = c["cause"].as_str().unwrap();
    assert!(
        cause.contains("999999999999") && cause.contains(&world.destination_bucket),
        "{c}"
    );
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let world = World::new().await;
    assert_eq!(cli(&world, &["frobnicate"]).await.0, 2);
    let mut bad = World::new().await;
    bad.set("DESTINATION_KMS_KEY_ID", "not-an-arn");
    let (code, out) = cli(&bad, &["doctor"]).await;
    assert_eq!(code, 2);
    assert!(out.contains("DESTINATION_KMS_KEY_ID"), "{out}");
}

fn actions(statement: &Value) -> BTreeSet<String> {
    match &statement["Action"] {
        Value::String(a) => BTreeSet::from([a.clone()]),
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        other => panic!("{other}"),
    }
}

fn policy_actions(doc: &Value) -> BTreeSet<String> {
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(actions)
        .collect()
}

/// Every action an IAM role in a template allows, through Fn::If branches.
fn template_role_actions(path: &str, role: &str) -> BTreeSet<String> {
    fn walk(v: &serde_yaml::Value, out: &mut BTreeSet<String>) {
        match v {
            serde_yaml::Value::Mapping(m) => {
                if m.get("Effect").and_then(|e| e.as_str()) == Some("Allow") {
                    match m.get("Action") {
                        Some(serde_yaml::Value::String(a)) => {
                            out.insert(a.clone());
                        }
                        Some(serde_yaml::Value::Sequence(s)) => {
                            out.extend(s.iter().filter_map(|a| a.as_str().map(str::to_owned)))
                        }
                        _ => {}
                    }
                }
                m.values().for_each(|v| walk(v, out));
            }
            serde_yaml::Value::Sequence(s) => s.iter().for_each(|v| walk(v, out)),
            serde_yaml::Value::Tagged(t) => walk(&t.value, out),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(replicator_tests::workspace().join(path)).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut out = BTreeSet::new();
    walk(&doc["Resources"][role]["Properties"]["Policies"], &mut out);
    out
}

#[tokio::test]
async fn policies_grant_exactly_what_the_engine_uses_and_match_the_templates() {
    use replicator_core::permissions::*;
    let mut world = World::new().await;
    world.set("REPLICATE_DELETES", "true");
    let (code, out) = cli(
        &world,
        &[
            "policies",
            "--json",
            "--function-role-arn",
            "arn:aws:iam::123456789012:role/fn",
            "--source-kms-key-arn",
            &world.source_key_arn,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let bundle: serde_json::Map<String, Value> = serde_json::from_str(&out).unwrap();
    let doc = |prefix: &str| {
        bundle
            .iter()
            .find(|(k, _)| k.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}"))
            .1
    };

    let source = doc("source account: the functions' role policy");
    let engine_source: BTreeSet<String> = SOURCE_OBJECT_ACTIONS
        .iter()
        .chain(SOURCE_BUCKET_ACTIONS)
        .chain(SOURCE_KEY_ACTIONS)
        .chain(&["sts:AssumeRole"])
        .map(|a| a.to_string())
        .collect();
    assert_eq!(policy_actions(source), engine_source);

    let trust = doc("destination account: the destination role's trust policy");
    assert_eq!(
        trust["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::123456789012:root"
    );
    assert_eq!(
        trust["Statement"][0]["Condition"]["ArnEquals"]["aws:PrincipalArn"],
        "arn:aws:iam::123456789012:role/fn"
    );
    // Defect 6: the ExternalId is not printed unless asked for.
    assert!(!out.contains(replicator_tests::EXTERNAL_ID), "{out}");
    assert!(
        trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"]
            .as_str()
            .is_some_and(|id| id.starts_with("<DESTINATION_EXTERNAL_ID")),
        "{trust}"
    );

    let dest = doc("destination account: the destination role's permissions");
    let engine_dest: BTreeSet<String> = DESTINATION_OBJECT_ACTIONS
        .iter()
        .chain(DESTINATION_BUCKET_ACTIONS)
        .chain(DESTINATION_PROBE_ACTIONS)
        .chain(DESTINATION_STATE_ACTIONS)
        .chain(DESTINATION_DELETE_ACTIONS)
        .chain(DESTINATION_KEY_ACTIONS)
        .chain(DESTINATION_KEY_DESCRIBE_ACTIONS)
        .chain(DESTINATION_ROLE_ACTIONS)
        .map(|a| a.to_string())
        .collect();
    assert_eq!(policy_actions(dest), engine_dest);
    let tls = doc("destination account: bucket policy");
    assert_eq!(
        tls["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"],
        "false"
    );

    // The templates grant the same actions (the source role also reads its queue and logs,
    // and may write X-Ray traces).
    // The template also reads REPLICATION_RULES from SSM with ReplicationRulesParameter (this
    // world has no rules in SSM: rules::rules_from_ssm_… checks `policies` grants that read).
    let mut template_source = template_role_actions("template.yaml", "FunctionRole");
    template_source.retain(|a| {
        !a.starts_with("sqs:")
            && !a.starts_with("logs:")
            && !a.starts_with("xray:")
            && a != "ssm:GetParameter"
    });
    assert_eq!(template_source, engine_source);
    assert_eq!(
        template_role_actions("deploy/destination-account.yaml", "DestinationRole"),
        engine_dest
    );
}

#[tokio::test]
async fn copy_and_sync_from_the_command_line() {
    let world = World::new().await;
    for i in 0..5u64 {
        world
            .put(&format!("cli/{i} with space+plus"), bytes(100, i))
            .await;
    }
    let (code, out) = cli(
        &world,
        &["copy", "cli/0 with space+plus", "cli/1 with space+plus"],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("| copied           |             2 |"),
        "{out}"
    );
    world
        .assert_replica("cli/0 with space+plus", &bytes(100, 0))
        .await;

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "cli/2 with space+plus\ncli/missing\n").unwrap();
    let (code, out) = cli(
        &world,
        &["copy", "--keys-file", file.path().to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("skipped  cli/missing (SourceGone)"), "{out}");

    let (code, out) = cli(&world, &["sync", "--dry-run"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("| would copy       |             2 |"),
        "{out}"
    );
    assert!(world.replica_bytes("cli/4 with space+plus").await.is_none());
    let (code, out) = cli(&world, &["sync"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("| copied           |             2 |"),
        "{out}"
    );
    for i in 0..5u64 {
        world
            .assert_replica(&format!("cli/{i} with space+plus"), &bytes(100, i))
            .await;
    }
    // A failing copy exits non-zero.
    let mut broken = World::new().await;
    broken.set("DESTINATION_ACCOUNT_ID", "999999999999");
    broken.put("k", b"v".to_vec()).await;
    let (code, out) = cli(&broken, &["copy", "k"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED   k: access denied"), "{out}");
}

/// A world on an emulator of its own (its IAM role can be changed without racing others).
async fn own_world() -> (replicator_tests::Emulator, World) {
    let emulator = replicator_tests::start_emulator();
    let world = World::on(&emulator.endpoint()).await;
    (emulator, world)
}

async fn set_trust(world: &World, policy: &Value) {
    aws_sdk_iam::Client::new(&world.destination_sdk)
        .update_assume_role_policy()
        .role_name("replicator-destination")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
}

/// Defect 2: anyone trusted besides the functions' role and the doctor (with an expiry) is
/// a ✗, named.
#[tokio::test]
async fn doctor_reports_principals_trusted_besides_the_functions_and_itself() {
    use replicator_tests::world::trust_policy;
    let (_emulator, world) = own_world().await;
    let args = [
        "doctor",
        "--json",
        "--function-role-arn",
        replicator_tests::FUNCTION_ROLE,
    ];
    let trust_check = "destination role trusts only the functions";
    let (code, out) = cli(&world, &args).await;
    assert_eq!(code, 0, "{out}");

    let mut extra = trust_policy(Some("2099-01-01T00:00:00Z"));
    let mut alice = extra["Statement"][0].clone();
    alice["Condition"]["ArnEquals"]["aws:PrincipalArn"] =
        "arn:aws:iam::123456789012:user/alice".into();
    extra["Statement"].as_array_mut().unwrap().push(alice);
    set_trust(&world, &extra).await;
    let (code, out) = cli(&world, &args).await;
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 1, "{out}");
    let c = check(&doc, trust_check);
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["cause"].as_str().unwrap().contains("user/alice"), "{c}");

    // The doctor's own trust without an expiry would be left behind.
    set_trust(&world, &trust_policy(None)).await;
    let (code, out) = cli(&world, &args).await;
    assert_eq!(code, 1, "{out}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let c = check(&doc, trust_check);
    assert!(
        c["cause"]
            .as_str()
            .unwrap()
            .contains("no aws:CurrentTime expiry"),
        "{c}"
    );
}

/// Defect 10: a bucket without default encryption is a warning saying what it means, not a
/// missing s3:GetEncryptionConfiguration.
#[tokio::test]
async fn doctor_calls_a_missing_configuration_a_warning_not_a_missing_permission() {
    let world = World::new().await;
    let bucket = format!("{}-plain", world.source_bucket);
    let world = world.with_source_bucket(bucket.clone()).await;
    let (_, doc) = doctor_json(&world).await;
    let c = check(&doc, "source default encryption");
    assert_eq!(c["status"], "warn", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("ServerSideEncryptionConfigurationNotFoundError"),
        "{c}"
    );
    assert!(c["cause"].as_str().unwrap().contains(&bucket), "{c}");
    assert!(!c["fix"].as_str().unwrap().contains("allow"), "{c}");
}

/// Defect 10: a 5xx, or an answer cut short, is not a missing permission.
#[tokio::test]
async fn doctor_says_a_server_error_or_a_broken_answer_is_not_a_permission_problem() {
    use replicator_tests::faults::{Fault, FaultProxy, Rule};
    let world = World::new().await;
    let proxy = FaultProxy::start(
        &world.endpoint,
        vec![
            Rule::new(
                &format!("GET /{}*encryption", world.destination_bucket),
                1.0,
                Fault::InternalError,
            ),
            Rule::new(
                &format!("GET /{}*encryption", world.source_bucket),
                1.0,
                Fault::TruncatedBody,
            ),
        ],
        0x10,
    )
    .await;
    let sdk = replicator_tests::source_sdk(&proxy.endpoint()).await;
    let mut out = Vec::new();
    let code =
        replicator_cli::run(world.cli_args(&["doctor", "--json"]), Some(sdk), &mut out).await;
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 1, "{out}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    for name in [
        "destination default encryption",
        "source default encryption",
    ] {
        let c = check(&doc, name);
        assert_eq!(c["status"], "fail", "{c}");
        assert!(
            c["cause"]
                .as_str()
                .unwrap()
                .contains("not for a missing permission"),
            "{name}: {c}"
        );
        assert!(!c["fix"].as_str().unwrap().contains("allow"), "{name}: {c}");
    }
}

/// `replicator policies` with these extra arguments, as JSON sections.
async fn policies_json(world: &World, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["policies", "--json"];
    args.extend(extra);
    cli(world, &args).await
}

/// Defect 6: the source key's ViaService region is the source key's; an alias ARN is not an
/// IAM resource; the ExternalId only on request.
#[tokio::test]
async fn policies_take_each_key_region_from_its_own_arn_and_refuse_an_alias_resource() {
    let mut world = World::new().await;
    world.set(
        "DESTINATION_KMS_KEY_ID",
        "arn:aws:kms:eu-west-1:222222222222:key/00000000-1111-2222-3333-444444444444",
    );
    let source_key = "arn:aws:kms:us-east-1:123456789012:key/55555555-6666-7777-8888-999999999999";
    let (code, out) = policies_json(&world, &["--source-kms-key-arn", source_key]).await;
    assert_eq!(code, 0, "{out}");
    let bundle: Value = serde_json::from_str(&out).unwrap();
    let section = |prefix: &str| {
        bundle
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with(prefix))
            .unwrap()
            .1
            .clone()
    };
    let source = section("source account: the functions' role policy");
    let decrypt = source["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Resource"] == source_key)
        .unwrap()
        .clone();
    assert_eq!(
        decrypt["Condition"]["StringEquals"]["kms:ViaService"],
        "s3.us-east-1.amazonaws.com"
    );
    let dest = section("destination account: the destination role's permissions");
    let key = dest["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "UseReplicaKeyThroughS3")
        .unwrap()
        .clone();
    assert_eq!(
        key["Condition"]["StringEquals"]["kms:ViaService"],
        "s3.eu-west-1.amazonaws.com"
    );

    let (_, shown) = policies_json(&world, &["--show-external-id"]).await;
    assert!(shown.contains(replicator_tests::EXTERNAL_ID), "{shown}");

    world.set(
        "DESTINATION_KMS_KEY_ID",
        "arn:aws:kms:eu-west-1:222222222222:alias/replicas",
    );
    let (code, out) = policies_json(&world, &[]).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("alias ARN") && out.contains("--destination-kms-key-arn"),
        "{out}"
    );
    let key_arn = "arn:aws:kms:eu-west-1:222222222222:key/00000000-1111-2222-3333-444444444444";
    let (code, out) = policies_json(&world, &["--destination-kms-key-arn", key_arn]).await;
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("alias/replicas\""), "{out}");
}

/// With AUDIT_BUCKET, the destination role may write (and HEAD) the audit's evidence there,
/// under the reserved audit prefix only — as the destination template grants it.
#[tokio::test]
async fn policies_grant_the_audit_bucket_its_evidence_only() {
    use replicator_core::permissions::{audit_prefix, AUDIT_EVIDENCE_ACTIONS};
    let mut world = World::new().await;
    world.set("AUDIT_BUCKET", "audit-evidence");
    let (code, out) = cli(&world, &["policies", "--json"]).await;
    assert_eq!(code, 0, "{out}");
    let bundle: Value = serde_json::from_str(&out).unwrap();
    let dest = bundle
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with("destination account: the destination role's permissions"))
        .unwrap()
        .1;
    let evidence = dest["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "WriteAuditEvidence")
        .unwrap_or_else(|| panic!("no audit statement in {dest}"));
    assert_eq!(
        evidence["Resource"],
        format!("arn:aws:s3:::audit-evidence/{}*", audit_prefix(""))
    );
    assert_eq!(
        actions(evidence),
        AUDIT_EVIDENCE_ACTIONS
            .iter()
            .map(|a| a.to_string())
            .collect()
    );

    let template = std::fs::read_to_string(
        replicator_tests::workspace().join("deploy/destination-account.yaml"),
    )
    .unwrap();
    assert!(
        template.contains(
            "arn:${AWS::Partition}:s3:::${AuditBucketName}/${DestinationPrefix}.s3-fallback-replicator/audit/*"
        ),
        "the destination template grants the audit bucket elsewhere"
    );
    let without = cli(&World::new().await, &["policies", "--json"]).await.1;
    assert!(!without.contains("WriteAuditEvidence"), "{without}");
}
