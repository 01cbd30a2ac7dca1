//! Beside native S3 replication: its replicas are recognised and never rewritten, its
//! failures are healed (from its failure events, and in heal mode from the source's
//! replication status), and what it completed is left alone. The emulator has no
//! replication engine; the test front's simulator acts as one (`tests/moto_runner.py`).

use replicator_core::sync::SyncRequest;
use replicator_tests::World;
use serde_json::{json, Value};

use crate::common::{deliver, Captured};

async fn sync(world: &World, run: &str) -> replicator_core::sync::SyncReport {
    world
        .syncer()
        .await
        .run(SyncRequest {
            run_id: run.into(),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// An SQS event carrying `body` as its one message.
fn in_sqs(world: &World, body: &Value) -> Value {
    let mut record = world.fixture("sqs-s3-notification.json")["Records"][0].clone();
    record["body"] = body.to_string().into();
    json!({ "Records": [record] })
}

/// An informational replication event for `key`: acknowledged, nothing copied.
async fn acknowledged(world: &World, handler: &event_copier::Handler, key: &str, event: Value) {
    let out = handler.handle(event).await.unwrap();
    assert_eq!(
        (out["skipped"].as_u64(), out["copied"].as_u64()),
        (Some(1), Some(0)),
        "{out}"
    );
    assert!(world.replica_bytes(key).await.is_none(), "{key}");
}

#[tokio::test]
async fn native_replicas_are_never_rewritten_by_events_or_syncs() {
    // Regression: a replica without this replicator's provenance was taken for stale and
    // rewritten by every event and every sync pass.
    let mut world = World::new().await;
    world.set("MULTIPART_THRESHOLD", "5MiB");
    let mut versions = Vec::new();
    for (key, size) in [("n/small", 100), ("n/large", 6 * 1024 * 1024)] {
        let body = replicator_tests::bytes(size, 3);
        let version = world.put(key, body).await;
        world.native_replication(key, &version, "COMPLETED", "");
        versions.push((key, version, size));
    }
    let replicas = || async {
        let all = world.all_destination_versions().await;
        all.into_iter()
            .filter(|(key, _)| !key.starts_with(".s3-fallback-replicator/"))
            .collect::<Vec<_>>()
    };
    let before = replicas().await;
    for (key, version, size) in &versions {
        let out = deliver(&world, key, version, *size).await.unwrap();
        assert_eq!(out["skipped"], 1, "{key}: {out}");
    }
    for run in ["first", "second"] {
        let report = sync(&world, run).await;
        assert_eq!((report.copied, report.failed), (0, 0), "{report:?}");
    }
    assert_eq!(replicas().await, before, "no replica written");
}

#[tokio::test]
async fn a_native_replica_of_an_older_version_is_replaced() {
    let world = World::new().await;
    let v1 = world.put("n/changed", b"version 1".to_vec()).await;
    world.native_replication("n/changed", &v1, "COMPLETED", "");
    let v2 = world.put("n/changed", b"version 2".to_vec()).await;
    let out = deliver(&world, "n/changed", &v2, 9).await.unwrap();
    assert_eq!(out["copied"], 1, "{out}");
    world.assert_replica("n/changed", b"version 2").await;
    // And the late event for version 1 never goes back in time.
    let out = deliver(&world, "n/changed", &v1, 9).await.unwrap();
    assert_eq!(out["skipped"], 1, "{out}");
    world.assert_replica("n/changed", b"version 2").await;
}

#[tokio::test]
async fn failure_events_heal_through_sqs_and_sns_and_informational_ones_are_acknowledged() {
    let world = World::new().await;
    let handler = world.handler().await;
    // Through SQS.
    let v = world.put("heal/sqs", b"failed natively".to_vec()).await;
    let event = world.native_replication("heal/sqs", &v, "FAILED", "AssumeRoleNotPermitted")
        ["event"]
        .clone();
    assert_eq!(
        event["Records"][0]["eventName"],
        "Replication:OperationFailedReplication"
    );
    let out = handler.handle(in_sqs(&world, &event)).await.unwrap();
    assert_eq!(out["batchItemFailures"], json!([]), "{out}");
    world.assert_replica("heal/sqs", b"failed natively").await;

    // Through SNS, then SQS.
    let v = world.put("heal/sns", b"failed natively too".to_vec()).await;
    let event =
        world.native_replication("heal/sns", &v, "FAILED", "DstKmsKeyNotFound")["event"].clone();
    let mut envelope = world.fixture("sqs-sns-s3-notification.json");
    let mut sns: Value =
        serde_json::from_str(envelope["Records"][0]["body"].as_str().unwrap()).unwrap();
    sns["Message"] = event.to_string().into();
    envelope["Records"][0]["body"] = sns.to_string().into();
    let out = handler.handle(envelope).await.unwrap();
    assert_eq!(out["batchItemFailures"], json!([]), "{out}");
    world
        .assert_replica("heal/sns", b"failed natively too")
        .await;

    // Informational: acknowledged, nothing copied.
    let v = world.put("heal/late", b"late".to_vec()).await;
    let mut late = world.native_replication("heal/late", &v, "FAILED", "")["event"].clone();
    late["Records"][0]["eventName"] = "Replication:OperationReplicatedAfterThreshold".into();
    acknowledged(&world, &handler, "heal/late", late).await;

    // Another destination's failure is not this replicator's to heal.
    let v = world.put("heal/theirs", b"theirs".to_vec()).await;
    let mut theirs =
        world.native_replication("heal/theirs", &v, "FAILED", "DstBucketNotFound")["event"].clone();
    theirs["Records"][0]["replicationEventData"]["destinationBucket"] =
        "arn:aws:s3:::someone-elses-destination".into();
    let out = handler.handle(theirs).await.unwrap();
    assert_eq!(out["skipped"], 1, "{out}");
    assert!(world.replica_bytes("heal/theirs").await.is_none());
}

/// A replication event for a version native replication still has PENDING: the simulator's
/// failure event for it, without the failure's own `failureReason`.
fn missed_event(world: &World, key: &str, version: &str) -> Value {
    let mut event = world.native_replication(key, version, "FAILED", "")["event"].clone();
    world.native_replication(key, version, "PENDING", "");
    let data = event["Records"][0]["replicationEventData"]
        .as_object_mut()
        .unwrap();
    data.remove("failureReason");
    event
}

#[tokio::test]
async fn a_missed_threshold_is_healed_an_untracked_object_acknowledged_and_the_reason_logged() {
    let logs = Captured::default();
    let _logging = tracing::subscriber::set_default(replicator_core::logging::subscriber(
        "info",
        true,
        logs.clone(),
    ));
    let world = World::new().await;
    let handler = world.handler().await;
    // Still PENDING past the replication time threshold: copied.
    let v = world.put("heal/missed", b"overdue natively".to_vec()).await;
    let mut missed = missed_event(&world, "heal/missed", &v);
    missed["Records"][0]["eventName"] = "Replication:OperationMissedThreshold".into();
    let out = handler.handle(in_sqs(&world, &missed)).await.unwrap();
    assert_eq!(out["batchItemFailures"], json!([]), "{out}");
    world
        .assert_replica("heal/missed", b"overdue natively")
        .await;

    // No longer tracked by replication metrics: acknowledged, nothing copied.
    let v = world.put("heal/untracked", b"untracked".to_vec()).await;
    let mut untracked = missed_event(&world, "heal/untracked", &v);
    untracked["Records"][0]["eventName"] = "Replication:OperationNotTracked".into();
    acknowledged(&world, &handler, "heal/untracked", untracked).await;

    // A failure's reason is logged with the object's key before it is copied.
    let v = world.put("heal/logged", b"logged".to_vec()).await;
    let failed =
        world.native_replication("heal/logged", &v, "FAILED", "DstKmsKeyNotFound")["event"].clone();
    handler.handle(failed).await.unwrap();
    world.assert_replica("heal/logged", b"logged").await;
    let text = logs.text();
    for (key, reason) in [
        ("heal/logged", "DstKmsKeyNotFound"),
        ("heal/missed", "MissedThreshold"),
    ] {
        let line = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["fields"]["key"] == key && l["fields"]["native_failure"].is_string())
            .unwrap_or_else(|| panic!("no log line for {key}:\n{text}"));
        assert_eq!(line["fields"]["native_failure"], reason, "{line}");
    }
}

#[tokio::test]
async fn heal_mode_copies_only_what_native_replication_failed_or_left_pending_too_long() {
    let mut world = World::new().await;
    world.set("NATIVE_REPLICATION", "heal");
    world.set("NATIVE_PENDING_GRACE_SECONDS", "3");
    let put = |key: &'static str| {
        let world = &world;
        async move { (key, world.put(key, key.as_bytes().to_vec()).await) }
    };
    let (completed, failed, pending, uncovered) = (
        put("h/completed").await,
        put("h/failed").await,
        put("h/pending").await,
        put("h/uncovered").await,
    );
    world.native_replication(completed.0, &completed.1, "COMPLETED", "");
    world.native_replication(failed.0, &failed.1, "FAILED", "DstBucketUnversioned");
    world.native_replication(pending.0, &pending.1, "PENDING", "");
    let before = world.replica_versions(completed.0).await;

    // The copier, on the object's own event: a version still pending is left to native
    // replication, within its grace period.
    let out = deliver(&world, pending.0, &pending.1, 9).await.unwrap();
    assert_eq!(out["skipped"], 1, "{out}");

    let report = sync(&world, "heal-1").await;
    assert_eq!(
        report.copied, 2,
        "the failed and the uncovered one: {report:?}"
    );
    world.assert_replica(failed.0, failed.0.as_bytes()).await;
    world
        .assert_replica(uncovered.0, uncovered.0.as_bytes())
        .await;
    assert!(
        world.replica_bytes(pending.0).await.is_none(),
        "still within its grace"
    );
    assert_eq!(
        world.replica_versions(completed.0).await,
        before,
        "left to native"
    );

    // Pending past its grace period: overdue, healed.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let report = sync(&world, "heal-2").await;
    assert_eq!(report.copied, 1, "{report:?}");
    world.assert_replica(pending.0, pending.0.as_bytes()).await;
}

/// `replicator doctor --json` with the copier's queue given: its native-replication check.
async fn doctor_native_check(world: &World, queue_arn: &str) -> (i32, Value) {
    let argv = world.cli_args(&["doctor", "--json", "--copier-queue-arn", queue_arn]);
    let mut out = Vec::new();
    let code = replicator_cli::run(argv, Some(world.source_sdk.clone()), &mut out).await;
    let out = String::from_utf8(out).unwrap();
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let check = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "native replication beside this replicator")
        .unwrap_or_else(|| panic!("no native replication check in {doc}"))
        .clone();
    (code, check)
}

/// A native configuration on the source: one rule to this world's destination (replication
/// metrics on or off), one to another bucket under `logs/`.
async fn put_native_configuration(world: &World, metrics: bool) {
    use replicator_tests::native::rule;
    world
        .put_native_rules(vec![
            rule(
                "to-the-replica-bucket",
                1,
                "",
                &world.destination_bucket,
                metrics,
            ),
            rule("logs-elsewhere", 2, "logs/", "elsewhere", true),
        ])
        .await;
}

#[tokio::test]
async fn doctor_reports_the_native_configuration_with_and_without_metrics() {
    let mut world = World::new().await;
    world.set("NATIVE_REPLICATION", "heal");
    let queue = crate::common::queue(&world).await;
    let arn = world.queue_arn(&queue).await;
    world.send_failure_events_to(Some(&arn)).await;

    // No native replication, heal mode: a warning that heal mode would copy everything.
    let (code, check) = doctor_native_check(&world, &arn).await;
    assert_eq!(code, 0, "a warning, not a failure: {check}");
    assert_eq!(check["status"], "warn", "{check}");
    assert!(
        check["cause"]
            .as_str()
            .unwrap()
            .contains("no replication configuration"),
        "{check}"
    );

    // Metrics on, events to the copier's queue: the rules are shown as they were put.
    put_native_configuration(&world, true).await;
    let (code, check) = doctor_native_check(&world, &arn).await;
    assert_eq!((code, &check["status"]), (0, &json!("pass")), "{check}");
    let detail = check["detail"].as_str().unwrap();
    for shown in [
        "rule to-the-replica-bucket (Enabled, prefix \"\")",
        "rule logs-elsewhere (Enabled, prefix \"logs/\") → arn:aws:s3:::elsewhere",
        "covers all of \"\"",
        "failure events go to the copier's queue",
    ] {
        assert!(detail.contains(shown), "{shown:?} not in {detail}");
    }

    // Metrics off: S3 sends no failure events; the rule is named, and how to turn them on.
    put_native_configuration(&world, false).await;
    let (code, check) = doctor_native_check(&world, &arn).await;
    assert_eq!((code, &check["status"]), (0, &json!("warn")), "{check}");
    let cause = check["cause"].as_str().unwrap();
    assert!(
        cause.contains("replication metrics are off on rule(s) to-the-replica-bucket"),
        "{cause}"
    );
    assert!(check["fix"]
        .as_str()
        .unwrap()
        .contains("Metrics Status=Enabled"));

    // Metrics on, but the events go nowhere: the wiring to add.
    put_native_configuration(&world, true).await;
    world.send_failure_events_to(None).await;
    let (_, check) = doctor_native_check(&world, &arn).await;
    assert_eq!(check["status"], "warn", "{check}");
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("put-bucket-notification-configuration"),
        "{check}"
    );
}

#[tokio::test]
async fn doctor_calls_a_denied_replication_configuration_a_warning() {
    use replicator_tests::faults::{Fault, FaultProxy, Rule};
    let world = World::new().await;
    put_native_configuration(&world, true).await;
    let queue = crate::common::queue(&world).await;
    let arn = world.queue_arn(&queue).await;
    // The caller may not s3:GetReplicationConfiguration: S3 answers 403 AccessDenied.
    let proxy = FaultProxy::start(
        &world.endpoint,
        vec![Rule::new(
            &format!("GET /{}*replication", world.source_bucket),
            1.0,
            Fault::AccessDenied,
        )],
        0x15,
    )
    .await;
    let sdk = replicator_tests::source_sdk(&proxy.endpoint()).await;
    let argv = world.cli_args(&["doctor", "--json", "--copier-queue-arn", &arn]);
    let mut out = Vec::new();
    let code = replicator_cli::run(argv, Some(sdk), &mut out).await;
    let out = String::from_utf8(out).unwrap();
    assert_eq!(proxy.injected().values().sum::<u64>(), 1, "{out}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let check = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "native replication beside this replicator")
        .unwrap()
        .clone();
    assert_eq!(
        (code, &check["status"]),
        (0, &json!("warn")),
        "replication does not need the permission: {check}"
    );
    assert!(
        check["cause"]
            .as_str()
            .unwrap()
            .contains("cannot read the replication configuration"),
        "{check}"
    );
    assert!(
        check["fix"].as_str().unwrap().contains(&format!(
            "s3:GetReplicationConfiguration on arn:aws:s3:::{}",
            world.source_bucket
        )),
        "{check}"
    );
}
