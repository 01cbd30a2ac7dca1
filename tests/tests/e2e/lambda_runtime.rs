//! The compiled binaries under the Lambda Runtime API (`cargo lambda watch`),
//! invoked with `cargo lambda invoke --data-file` on fixtures from `events/`.

use replicator_tests::cargo_lambda::{function_env, LambdaWatch};
use replicator_tests::{bytes, World};

use crate::common::s3_event;

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_events_through_the_runtime_api() {
    let world = World::new().await;
    let body = bytes(3000, 7);
    let key = "runtime api/object+1.txt";
    let version = world.put(key, body.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let event_file = dir.path().join("event.json");
    std::fs::write(
        &event_file,
        s3_event(&world, key, &version, body.len()).to_string(),
    )
    .unwrap();
    let bad_file = dir.path().join("foreign.json");
    let mut foreign = s3_event(&world, key, &version, body.len());
    foreign["Records"][0]["s3"]["bucket"]["name"] = "foreign-bucket".into();
    std::fs::write(&bad_file, foreign.to_string()).unwrap();

    let env = function_env(&world);
    let log = dir.path().join("watch.log");
    let answers = tokio::task::spawn_blocking(move || {
        let watch = LambdaWatch::start(&env, &log);
        let ok = watch.invoke("event-copier", &event_file);
        let err = watch.invoke("event-copier", &bad_file);
        (ok, err, std::fs::read_to_string(&log).unwrap_or_default())
    })
    .await
    .unwrap();
    let (ok, err, log) = answers;
    let ok = ok.unwrap_or_else(|e| panic!("invoke failed: {e}\n--- watch log ---\n{log}"));
    assert_eq!(ok["copied"], 1, "{ok}");
    let err = err.expect_err("a foreign bucket fails the invocation");
    assert!(err.contains("foreign-bucket"), "{err}");
    world.assert_replica(key, &body).await;
}

/// A missing or malformed variable fails the cold start with a message naming it.
#[test]
fn the_binary_refuses_to_start_with_a_bad_configuration() {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| replicator_tests::workspace().join("target"));
    let binary = target.join("debug/event-copier");
    assert!(
        binary.exists(),
        "{} not built: run cargo build -p event-copier",
        binary.display()
    );
    for (unset, bad, expected) in [
        (
            "SOURCE_BUCKET",
            None,
            "invalid configuration: SOURCE_BUCKET is required",
        ),
        (
            "",
            Some(("DESTINATION_KMS_KEY_ID", "alias/replica")),
            "invalid configuration: DESTINATION_KMS_KEY_ID=\"alias/replica\" is invalid",
        ),
    ] {
        let mut cmd = std::process::Command::new(&binary);
        cmd.env_clear()
            .env("SOURCE_BUCKET", "src-bucket")
            .env("DESTINATION_BUCKET", "dst-bucket")
            .env("DESTINATION_ROLE_ARN", "arn:aws:iam::222222222222:role/r")
            .env(
                "DESTINATION_KMS_KEY_ID",
                "arn:aws:kms:us-east-1:222222222222:key/k",
            )
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9");
        if !unset.is_empty() {
            cmd.env_remove(unset);
        }
        if let Some((k, v)) = bad {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{text}");
        assert!(text.contains(expected), "{text}");
    }
}

/// Both binaries with REPLICATION_RULES in SSM, as template.yaml deploys them: one event and
/// one scheduled run reach the two destination accounts the rules choose.
#[tokio::test(flavor = "multi_thread")]
async fn the_binaries_take_a_rule_set_from_ssm_and_reach_two_destination_accounts() {
    use replicator_tests::accounts::ThreeAccounts;
    use serde_json::json;
    let a = ThreeAccounts::new().await;
    let rules = vec![
        a.rule("all-to-first", 1, &a.first, json!({}), false),
        a.rule(
            "reports-to-second",
            1,
            &a.second,
            json!({"Prefix": "reports/"}),
            false,
        ),
    ];
    let name = format!("/runtime-test/rules-{}", a.world.source_bucket);
    aws_sdk_ssm::Client::new(&a.world.source_sdk)
        .put_parameter()
        .name(&name)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value(json!({ "Rules": rules }).to_string())
        .send()
        .await
        .unwrap();
    let new_version = a.world.put("reports/new.csv", b"new".to_vec()).await;
    a.world.put("reports/old.csv", b"old".to_vec()).await;
    let dir = tempfile::tempdir().unwrap();
    let event_file = dir.path().join("event.json");
    let event = s3_event(&a.world, "reports/new.csv", &new_version, 3);
    std::fs::write(&event_file, event.to_string()).unwrap();
    let schedule_file = dir.path().join("schedule.json");
    std::fs::write(&schedule_file, a.world.fixture("schedule.json").to_string()).unwrap();
    let mut env: Vec<(String, String)> = function_env(&a.world)
        .into_iter()
        .filter(|(k, _)| {
            !replicator_core::rules::SINGLE_DESTINATION_VARIABLES.contains(&k.as_str())
        })
        .collect();
    env.push(("REPLICATION_RULES".into(), format!("ssm:{name}")));
    let log = dir.path().join("watch.log");
    let (copied, synced, log) = tokio::task::spawn_blocking(move || {
        let watch = LambdaWatch::start(&env, &log);
        let copied = watch.invoke("event-copier", &event_file);
        let synced = watch.invoke("scheduled-sync", &schedule_file);
        (
            copied,
            synced,
            std::fs::read_to_string(&log).unwrap_or_default(),
        )
    })
    .await
    .unwrap();
    let copied = copied.unwrap_or_else(|e| panic!("{e}\n--- watch log ---\n{log}"));
    assert_eq!(
        copied["copied"], 2,
        "one object, two destinations: {copied}"
    );
    let synced = synced.unwrap_or_else(|e| panic!("{e}\n--- watch log ---\n{log}"));
    let rules = synced["rules"].as_array().expect("a report per rule");
    let copied_by =
        |rule: &str| rules.iter().find(|r| r["rule"] == rule).unwrap()["report"]["copied"].clone();
    assert_eq!(copied_by("all-to-first"), 1, "{synced}");
    assert_eq!(copied_by("reports-to-second"), 1, "{synced}");
    for d in [&a.first, &a.second] {
        for (key, body) in [
            ("reports/new.csv", &b"new"[..]),
            ("reports/old.csv", b"old"),
        ] {
            let (got, kms) = d.replica(key).await.expect("a replica");
            assert_eq!(
                (got.as_slice(), kms.as_deref()),
                (body, Some(d.key_arn.as_str()))
            );
        }
    }
}
