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
    let (code, out) = cli(&world, &["doctor"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains('✗'), "{out}");
    assert!(
        out.contains("✓ probe write with the destination key"),
        "{out}"
    );
    assert!(out.contains("✓ assume destination role"), "{out}");
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
        "arn:aws:iam::123456789012:role/fn"
    );
    assert_eq!(
        trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"],
        replicator_tests::EXTERNAL_ID
    );

    let dest = doc("destination account: the destination role's permissions");
    let engine_dest: BTreeSet<String> = DESTINATION_OBJECT_ACTIONS
        .iter()
        .chain(DESTINATION_BUCKET_ACTIONS)
        .chain(DESTINATION_PROBE_ACTIONS)
        .chain(DESTINATION_STATE_ACTIONS)
        .chain(DESTINATION_DELETE_ACTIONS)
        .chain(DESTINATION_KEY_ACTIONS)
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
    let mut template_source = template_role_actions("template.yaml", "FunctionRole");
    template_source
        .retain(|a| !a.starts_with("sqs:") && !a.starts_with("logs:") && !a.starts_with("xray:"));
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
