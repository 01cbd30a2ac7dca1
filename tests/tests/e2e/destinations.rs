//! Several destinations through REPLICATION_RULES, in a three-account world: each object
//! goes to every destination a rule chooses for it (per destination, the highest-priority
//! enabled rule whose prefix and tags match), written with that rule's key, class and
//! delete marker replication; a destination that fails fails the message, and its retry
//! writes only where the replica is missing.

use replicator_tests::accounts::{Destination, ThreeAccounts};
use replicator_tests::form_encode;
use serde_json::{json, Value};

use crate::common::s3_event;

/// An SQS batch of one message carrying the S3 notification `event`.
fn sqs_message(id: &str, event: &Value) -> Value {
    json!({"Records": [{"messageId": id, "receiptHandle": "r", "body": event.to_string(),
        "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}]})
}

async fn put_tagged(accounts: &ThreeAccounts, key: &str, body: &[u8], tags: &str) -> String {
    accounts
        .world
        .put_with(key, body.to_vec(), |p| p.tagging(tags))
        .await
}

async fn assert_replica_in(d: &Destination, key: &str, body: &[u8]) {
    let (got, kms) = d
        .replica(key)
        .await
        .unwrap_or_else(|| panic!("no replica of {key} in {}", d.bucket));
    assert_eq!(got, body, "{key} in {}", d.bucket);
    assert_eq!(
        kms.as_deref(),
        Some(d.key_arn.as_str()),
        "{key} in {}",
        d.bucket
    );
}

#[tokio::test]
async fn each_object_reaches_the_destinations_its_rules_choose_by_priority_prefix_and_tags() {
    let a = ThreeAccounts::new().await;
    let mut logs_first = a.rule("logs-first", 2, &a.first, json!({"Prefix": "logs/"}), false);
    logs_first["Destination"]["StorageClass"] = json!("STANDARD_IA");
    let mut disabled = a.rule("all-second", 9, &a.second, json!({"Prefix": ""}), false);
    disabled["Status"] = json!("Disabled");
    let rules = vec![
        a.rule("all-first", 1, &a.first, json!({"Prefix": ""}), false),
        logs_first,
        a.rule(
            "logs-second",
            1,
            &a.second,
            json!({"Prefix": "logs/"}),
            false,
        ),
        disabled,
        a.rule(
            "team-data-second",
            2,
            &a.second,
            json!({"And": {"Prefix": "data/", "Tags": [{"Key": "team", "Value": "data"}]}}),
            false,
        ),
    ];
    let handler = a.handler(&rules).await;
    let objects: [(&str, &[u8], Option<&str>); 4] = [
        ("logs/a.txt", b"log line", None),
        ("other/b.txt", b"other", None),
        ("data/c.csv", b"team data", Some("team=data")),
        ("data/d.csv", b"someone else's data", Some("team=web")),
    ];
    for (key, body, tags) in objects {
        let version = match tags {
            Some(tags) => put_tagged(&a, key, body, tags).await,
            None => a.world.put(key, body.to_vec()).await,
        };
        let out = handler
            .handle(s3_event(&a.world, key, &version, body.len()))
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(out["failed"], 0, "{key}: {out}");
    }
    // The first destination takes everything: logs/ by the higher-priority rule's class.
    for (key, body, _) in objects {
        assert_replica_in(&a.first, key, body).await;
    }
    assert_eq!(
        a.first.storage_class("logs/a.txt").await.as_deref(),
        Some("STANDARD_IA")
    );
    assert_eq!(a.first.storage_class("other/b.txt").await, None);
    // The second takes logs/ and the data team's objects; its catch-all rule is disabled.
    assert_replica_in(&a.second, "logs/a.txt", b"log line").await;
    assert_replica_in(&a.second, "data/c.csv", b"team data").await;
    assert!(a.second.replica("other/b.txt").await.is_none());
    assert!(a.second.replica("data/d.csv").await.is_none());
}

#[tokio::test]
async fn a_delete_marker_reaches_only_the_destinations_whose_rule_replicates_them() {
    let a = ThreeAccounts::new().await;
    let rules = vec![
        a.rule(
            "first-with-deletes",
            1,
            &a.first,
            json!({"Prefix": ""}),
            true,
        ),
        a.rule(
            "second-keeps-all",
            1,
            &a.second,
            json!({"Prefix": ""}),
            false,
        ),
    ];
    let handler = a.handler(&rules).await;
    let key = "reports/q3.pdf";
    let version = a.world.put(key, b"q3".to_vec()).await;
    handler
        .handle(s3_event(&a.world, key, &version, 2))
        .await
        .unwrap();
    let marker = a.world.delete_source(key).await.expect("a delete marker");
    let mut event = a.world.fixture("s3-delete-marker-created.json");
    event["Records"][0]["s3"]["object"]["key"] = form_encode(key).into();
    event["Records"][0]["s3"]["object"]["versionId"] = marker.into();
    let out = handler.handle(event).await.unwrap();
    assert_eq!(out["failed"], 0, "{out}");
    let markers = |v: Vec<(String, bool)>| v.iter().filter(|(_, m)| *m).count();
    assert_eq!(markers(a.first.versions(key).await), 1);
    assert!(a.first.replica(key).await.is_none());
    assert_eq!(markers(a.second.versions(key).await), 0);
    assert_replica_in(&a.second, key, b"q3").await;
}

#[tokio::test]
async fn a_failing_destination_fails_the_message_and_its_retry_writes_only_there() {
    let a = ThreeAccounts::new().await;
    let rules = vec![
        a.rule("to-first", 1, &a.first, json!({"Prefix": ""}), false),
        a.rule("to-second", 1, &a.second, json!({"Prefix": ""}), false),
    ];
    let handler = a.handler(&rules).await;
    let kms = aws_sdk_kms::Client::new(&a.second.sdk);
    kms.disable_key()
        .key_id(&a.second.key_id)
        .send()
        .await
        .unwrap();
    let key = "orders/1.json";
    let version = a.world.put(key, b"{}".to_vec()).await;
    let message = sqs_message("m-1", &s3_event(&a.world, key, &version, 2));
    let out = handler.handle(message.clone()).await.unwrap();
    assert_eq!(
        out["batchItemFailures"],
        json!([{"itemIdentifier": "m-1"}]),
        "{out}"
    );
    assert_replica_in(&a.first, key, b"{}").await;
    assert!(a.second.replica(key).await.is_none());
    let first_versions = a.first.versions(key).await;
    assert_eq!(first_versions.len(), 1);

    kms.enable_key()
        .key_id(&a.second.key_id)
        .send()
        .await
        .unwrap();
    let out = handler.handle(message).await.unwrap();
    assert_eq!(out["batchItemFailures"], json!([]), "{out}");
    assert_replica_in(&a.second, key, b"{}").await;
    assert_eq!(
        a.first.versions(key).await,
        first_versions,
        "the retry rewrote the first destination's replica"
    );
}

#[tokio::test]
async fn the_sync_reconciles_every_destination_each_rule_with_its_own_keys_and_checkpoint() {
    let a = ThreeAccounts::new().await;
    let mut logs_first = a.rule("logs-first", 2, &a.first, json!({"Prefix": "logs/"}), false);
    logs_first["Destination"]["StorageClass"] = json!("STANDARD_IA");
    let rules = vec![
        a.rule("all-first", 1, &a.first, json!({"Prefix": ""}), false),
        logs_first,
        a.rule(
            "team-data-second",
            1,
            &a.second,
            json!({"Tag": {"Key": "team", "Value": "data"}}),
            false,
        ),
    ];
    a.world.put("logs/a.txt", b"log".to_vec()).await;
    a.world.put("other/b.txt", b"other".to_vec()).await;
    put_tagged(&a, "data/c.csv", b"team data", "team=data").await;
    let syncers = a.syncers(&rules).await;
    let auditor = auditor(&syncers);
    let run = |id: &'static str| {
        scheduled_sync::invoke_rules(&syncers, &auditor, json!({}), None, id.into(), "t")
    };
    let first = run("first").await.unwrap();
    let copied = |answer: &Value, rule: &str| {
        rule_entry(answer, rule)["report"]["copied"]
            .as_u64()
            .unwrap()
    };
    // Each key once, by the rule the routing chooses for its destination.
    assert_eq!(copied(&first, "all-first"), 2, "{first}");
    assert_eq!(copied(&first, "logs-first"), 1, "{first}");
    assert_eq!(copied(&first, "team-data-second"), 1, "{first}");
    for (key, body) in [
        ("logs/a.txt", &b"log"[..]),
        ("other/b.txt", b"other"),
        ("data/c.csv", b"team data"),
    ] {
        assert_replica_in(&a.first, key, body).await;
    }
    assert_eq!(
        a.first.storage_class("logs/a.txt").await.as_deref(),
        Some("STANDARD_IA")
    );
    assert_replica_in(&a.second, "data/c.csv", b"team data").await;
    assert!(a.second.replica("other/b.txt").await.is_none());
    // A second run copies nothing, and each rule kept its own checkpoint.
    let second = run("second").await.unwrap();
    for rule in ["all-first", "logs-first", "team-data-second"] {
        assert_eq!(copied(&second, rule), 0, "{second}");
    }
    let checkpoints: Vec<String> = a
        .first
        .s3
        .list_objects_v2()
        .bucket(&a.first.bucket)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .filter(|k| k.contains("/sync/") || k.contains("/rule-"))
        .map(str::to_owned)
        .collect();
    for rule in ["all-first", "logs-first"] {
        assert!(
            checkpoints
                .iter()
                .any(|k| k.contains(&format!("rule-{}/", rule.replace('-', "%2D")))),
            "no checkpoint of {rule}: {checkpoints:?}"
        );
    }
    let audit = run_audit(&syncers, &auditor).await;
    assert!(audit.contains("per destination"), "{audit}");
}

/// One rule's entry in a several-rules sync answer.
fn rule_entry<'a>(answer: &'a Value, rule: &str) -> &'a Value {
    answer["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} in {answer}"))
}

/// The scheduled function's auditor, on the first rule's engine.
fn auditor(syncers: &[replicator_core::sync::Syncer]) -> replicator_core::verify::audit::Auditor {
    replicator_core::verify::audit::Auditor::new(
        replicator_core::verify::Verifier::new(syncers[0].replicator().clone(), Default::default()),
        std::time::Duration::from_secs(1),
    )
}

async fn run_audit(
    syncers: &[replicator_core::sync::Syncer],
    auditor: &replicator_core::verify::audit::Auditor,
) -> String {
    scheduled_sync::invoke_rules(
        syncers,
        auditor,
        json!({"verify": true}),
        None,
        "a".into(),
        "t",
    )
    .await
    .expect_err("an audit of several rules is refused")
    .to_string()
}

#[tokio::test]
async fn doctor_checks_every_destination_and_names_the_one_that_fails() {
    let a = ThreeAccounts::new().await;
    let rules = vec![
        a.rule("to-first", 1, &a.first, json!({"Prefix": ""}), false),
        a.rule("to-second", 1, &a.second, json!({"Prefix": ""}), false),
    ];
    aws_sdk_kms::Client::new(&a.second.sdk)
        .disable_key()
        .key_id(&a.second.key_id)
        .send()
        .await
        .unwrap();
    let (code, out) = a.cli(&["doctor", "--json"], &rules).await;
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(code, 1, "{doc}");
    let sections = doc["destinations"].as_array().expect("a section per rule");
    let section = |rule: &str| {
        sections
            .iter()
            .find(|s| s["rule"] == rule)
            .unwrap_or_else(|| panic!("no {rule}: {doc}"))
    };
    assert_eq!(section("to-first")["ok"], true, "{doc}");
    assert_eq!(section("to-first")["destination"], a.first.bucket);
    let second = section("to-second");
    assert_eq!(second["ok"], false, "{doc}");
    let failing: Vec<&str> = second["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["destination KMS key"], "{doc}");
}

#[tokio::test]
async fn a_fan_out_message_names_its_rule_and_is_copied_to_that_destination_only() {
    let mut a = ThreeAccounts::new().await;
    let rules = vec![
        a.rule("to-first", 1, &a.first, json!({"Prefix": ""}), false),
        a.rule("to-second", 1, &a.second, json!({"Prefix": ""}), false),
    ];
    a.world.put("fan/out.txt", b"fanned".to_vec()).await;
    let queue = crate::common::queue(&a.world).await;
    // Recorded with the world, so the policy proof judges the sends against the fan-out's
    // grant.
    a.world.set("SYNC_QUEUE_URL", queue.clone());
    let syncers = a.syncers_fanning_out(&rules, Some(&queue)).await;
    for syncer in &syncers {
        let report = syncer
            .run(replicator_core::sync::SyncRequest {
                run_id: "fan-out".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(report.enqueued, 1, "{report:?}");
    }
    let sqs = aws_sdk_sqs::Client::new(&a.world.source_sdk);
    let got = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let handler = a.handler(&rules).await;
    let mut planned = Vec::new();
    for m in got.messages() {
        let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
        planned.push(
            body["Records"][0]["s3"]["configurationId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        // The body as the copier takes it: to its rule's destination alone.
        let out = handler.handle(body).await.unwrap();
        assert_eq!(
            (&out["copied"], &out["skipped"]),
            (&json!(1), &json!(0)),
            "{out}"
        );
    }
    planned.sort();
    assert_eq!(
        planned,
        [
            "scheduled-sync:rule=to-first",
            "scheduled-sync:rule=to-second"
        ]
    );
    // Both destinations have their replica, written once.
    for d in [&a.first, &a.second] {
        assert_replica_in(d, "fan/out.txt", b"fanned").await;
        assert_eq!(d.versions("fan/out.txt").await.len(), 1);
    }
}

#[tokio::test]
async fn every_destination_draws_on_one_memory_budget() {
    let a = ThreeAccounts::new().await;
    let rules = vec![
        a.rule("logs-first", 1, &a.first, json!({"Prefix": "logs/"}), false),
        a.rule(
            "data-second",
            1,
            &a.second,
            json!({"Prefix": "data/"}),
            false,
        ),
    ];
    let handler = a.handler(&rules).await;
    let version = a.world.put("data/only-second.bin", vec![7u8; 4096]).await;
    handler
        .handle(s3_event(&a.world, "data/only-second.bin", &version, 4096))
        .await
        .unwrap();
    let engines = handler.fleet().engines();
    // Only the second destination's engine copied; the first sees the bytes it held.
    assert!(
        engines[0].peak_bytes_held() >= 4096,
        "the budget is not shared"
    );
    assert_eq!(engines[0].peak_bytes_held(), engines[1].peak_bytes_held());
    assert!(a.first.replica("data/only-second.bin").await.is_none());
}

#[tokio::test]
async fn a_run_for_one_prefix_narrows_each_rule_to_it_and_leaves_rules_outside_it_alone() {
    let a = ThreeAccounts::new().await;
    let rules = vec![
        a.rule("logs-first", 1, &a.first, json!({"Prefix": "logs/"}), false),
        a.rule(
            "data-second",
            1,
            &a.second,
            json!({"Prefix": "data/"}),
            false,
        ),
    ];
    a.world.put("logs/2024/a.log", b"a".to_vec()).await;
    a.world.put("logs/2025/b.log", b"b".to_vec()).await;
    a.world.put("data/x.csv", b"x".to_vec()).await;
    let syncers = a.syncers(&rules).await;
    let auditor = auditor(&syncers);
    let input = json!({"prefix": "logs/2024/"});
    let answer = scheduled_sync::invoke_rules(&syncers, &auditor, input, None, "p".into(), "t")
        .await
        .expect("a rule outside the prefix is no failure");
    let of = |rule: &str| rule_entry(&answer, rule);
    assert_eq!(of("logs-first")["report"]["copied"], 1, "{answer}");
    assert!(of("data-second")["skipped"].is_string(), "{answer}");
    assert_replica_in(&a.first, "logs/2024/a.log", b"a").await;
    assert!(a.first.replica("logs/2025/b.log").await.is_none());
    assert!(a.second.replica("data/x.csv").await.is_none());
}

#[tokio::test]
async fn a_single_tag_rule_syncs_only_the_tagged_objects_and_refuses_an_audit() {
    let a = ThreeAccounts::new().await;
    let rules = vec![a.rule(
        "finance-only",
        1,
        &a.second,
        json!({"Tag": {"Key": "team", "Value": "finance"}}),
        false,
    )];
    put_tagged(&a, "r/finance.csv", b"f", "team=finance").await;
    a.world.put("r/public.csv", b"p".to_vec()).await;
    let syncers = a.syncers(&rules).await;
    let report = syncers[0]
        .run(replicator_core::sync::SyncRequest {
            run_id: "tags".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(report.copied, 1, "{report:?}");
    assert_replica_in(&a.second, "r/finance.csv", b"f").await;
    assert!(a.second.replica("r/public.csv").await.is_none());
    let auditor = auditor(&syncers);
    let audit = run_audit(&syncers, &auditor).await;
    assert!(audit.contains("tags"), "{audit}");
}
