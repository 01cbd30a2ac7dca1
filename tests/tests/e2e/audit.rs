//! The scheduled audit through the scheduled-sync function's entry point
//! (`scheduled_sync::invoke` with `{"verify": true}`): a pass cut by short deadlines resumes
//! from its checkpoint and counts every object exactly once; a completed pass leaves a
//! summary and manifest parts, SSE-KMS under the destination key, whose chain an auditor
//! can recompute; evidence can go to a separate Object Lock bucket.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_s3::types::ServerSideEncryption;
use replicator_core::verify::audit::Auditor;
use replicator_core::verify::evidence::chain;
use replicator_core::verify::{Verifier, VerifyConfig};
use replicator_tests::{bytes, sha256, World};
use serde_json::{json, Value};

use crate::verify::{comparable_world, plant_every_class};

async fn auditor(world: &World) -> Auditor {
    let vars = world.vars();
    let config = VerifyConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
    Auditor::new(
        Verifier::new(world.replicator().await, config),
        Duration::from_secs(1),
    )
}

async fn invoke(world: &World, auditor: &Auditor, input: Value, deadline: Instant) -> Value {
    let syncer = world.syncer().await;
    scheduled_sync::invoke(
        &syncer,
        auditor,
        input,
        Some(deadline),
        format!("audit-{}", rand::random::<u32>()),
        "audit-test",
    )
    .await
    .unwrap_or_else(|e| panic!("audit failed: {e}"))
}

async fn object(
    world: &World,
    bucket: &str,
    key: &str,
) -> (Vec<u8>, Option<ServerSideEncryption>, Option<String>) {
    let out = world
        .dst
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {bucket}/{key}: {e:?}"));
    let sse = out.server_side_encryption().cloned();
    let kms = out.ssekms_key_id().map(str::to_owned);
    (out.body.collect().await.unwrap().to_vec(), sse, kms)
}

/// Reads a completed pass's evidence as an auditor would: the summary, then every part it
/// names, recomputing the chain; returns each manifest line by key (a key listed twice
/// fails).
async fn read_evidence(
    world: &World,
    bucket: &str,
    summary_key: &str,
) -> (Value, BTreeMap<String, Value>) {
    let (body, sse, kms) = object(world, bucket, summary_key).await;
    assert_eq!(sse, Some(ServerSideEncryption::AwsKms));
    assert_eq!(kms.as_deref(), Some(world.destination_key_arn.as_str()));
    let summary: Value = serde_json::from_slice(&body).unwrap();
    let mut running = summary["pass"].as_str().unwrap().to_owned();
    let mut lines = BTreeMap::new();
    for part in summary["parts"].as_array().unwrap() {
        let (body, _, kms) = object(world, bucket, part.as_str().unwrap()).await;
        assert_eq!(kms.as_deref(), Some(world.destination_key_arn.as_str()));
        running = chain(&running, &sha256(&body));
        for line in String::from_utf8(body).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let key = v["key"].as_str().unwrap().to_owned();
            assert!(lines.insert(key.clone(), v).is_none(), "{key} listed twice");
        }
    }
    assert_eq!(summary["chain"].as_str().unwrap(), running, "chain");
    (summary, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_cut_by_deadlines_resumes_without_double_counting_and_leaves_evidence() {
    let world = comparable_world().await;
    world
        .put_numbered(300, |i| format!("bulk/{i:04}"), |i| 100 + i as usize)
        .await;
    let planted = plant_every_class(&world).await;
    let auditor = auditor(&world).await;

    let (mut runs, mut summed, mut report) = (0, 0u64, Value::Null);
    while runs < 200 {
        runs += 1;
        // SYNC_TIME_MARGIN_SECONDS is 1 s here: each run starts keys for about 0.6 s.
        report = invoke(
            &world,
            &auditor,
            json!({"verify": true}),
            Instant::now() + Duration::from_millis(1400),
        )
        .await;
        assert!(!report["busy"].as_bool().unwrap(), "{report}");
        summed += report["run"]["objects"].as_u64().unwrap();
        if report["complete"].as_bool().unwrap() {
            break;
        }
        assert!(report["summary"].is_null());
    }
    assert!(runs >= 2, "the deadline never cut the pass: {report}");
    let total_keys = 300 + planted.len() as u64 + 2; // bulk, planted, planted/ok-1 and -2
    assert_eq!(
        summed, total_keys,
        "runs' objects add up to the bucket, once each"
    );
    assert_eq!(report["pass_totals"]["objects"], total_keys, "{report}");
    let totals = &report["pass_totals"]["classes"];
    for class in planted.values() {
        if *class != "tag-drift" {
            assert_eq!(totals[*class], 1, "{class}: {report}");
        }
    }
    assert_eq!(totals["ok"], 300 + 3, "{report}"); // tags are not compared without deep

    let summary = &report["summary"];
    let (doc, lines) = read_evidence(
        &world,
        &world.destination_bucket,
        summary["key"].as_str().unwrap(),
    )
    .await;
    assert_eq!(lines.len() as u64, total_keys);
    assert_eq!(doc["totals"]["objects"], total_keys);
    for (key, class) in &planted {
        if *class != "tag-drift" {
            assert_eq!(lines[key]["class"], *class, "{key}");
        }
    }
    let ok = &lines["bulk/0007"];
    assert!(
        ok["source_version"].is_string() && ok["replica_version"].is_string(),
        "{ok}"
    );
    assert!(
        ok["checksum"].as_str().unwrap().starts_with("CRC32:"),
        "{ok}"
    );

    // The next run starts a new pass.
    let next = invoke(
        &world,
        &auditor,
        json!({"verify": true}),
        Instant::now() + Duration::from_millis(1400),
    )
    .await;
    assert_ne!(next["pass"], report["pass"]);
    assert!(next["resumed_after"].is_null(), "{next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_repairing_audit_writes_to_an_object_lock_audit_bucket() {
    let mut world = comparable_world().await;
    world.put("a/1", bytes(2000, 1)).await;
    world.put("a/2", bytes(2000, 2)).await;
    crate::verify::sync_all(&world).await;
    world
        .dst
        .delete_object()
        .bucket(&world.destination_bucket)
        .key("a/2")
        .send()
        .await
        .unwrap();
    let audit_bucket = format!("audit-{:016x}", rand::random::<u64>());
    world
        .dst
        .create_bucket()
        .bucket(&audit_bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    // Every object written there is a locked version by default.
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
        ObjectLockRule,
    };
    world
        .dst
        .put_object_lock_configuration()
        .bucket(&audit_bucket)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    world.set("AUDIT_BUCKET", audit_bucket.clone());
    let auditor = auditor(&world).await;
    let report = invoke(
        &world,
        &auditor,
        json!({"verify": true, "deep": true, "repair": true, "prefix": "a/"}),
        Instant::now() + Duration::from_secs(60),
    )
    .await;
    assert!(report["complete"].as_bool().unwrap(), "{report}");
    assert_eq!(report["run"]["classes"]["ok"], 2, "{report}");
    assert_eq!(report["run"]["repaired"], 1, "{report}");
    let summary = &report["summary"];
    assert_eq!(summary["bucket"], audit_bucket);
    // The answer reports the summary's lock as S3 states it, and every part is locked too.
    assert_eq!(summary["lock_mode"], "GOVERNANCE", "{summary}");
    assert!(summary["retain_until"].as_str().is_some(), "{summary}");
    let parts = world
        .dst
        .list_objects_v2()
        .bucket(&audit_bucket)
        .send()
        .await
        .unwrap();
    assert!(parts.contents().len() >= 2, "a part and the summary");
    for object in parts.contents() {
        let head = world
            .dst
            .head_object()
            .bucket(&audit_bucket)
            .key(object.key().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.object_lock_mode(),
            Some(&aws_sdk_s3::types::ObjectLockMode::Governance),
            "{:?}",
            object.key()
        );
        assert!(head.object_lock_retain_until_date().is_some());
    }
    let (doc, lines) = read_evidence(&world, &audit_bucket, summary["key"].as_str().unwrap()).await;
    assert_eq!(lines["a/2"]["found"], "missing");
    assert!(lines["a/1"]["checksum"]
        .as_str()
        .unwrap()
        .starts_with("SHA256-RANGES:"));
    assert_eq!(doc["options"]["deep"], true);
    assert!(
        summary["key"]
            .as_str()
            .unwrap()
            .contains("-prefix-a%2F-deep/"),
        "{summary}"
    );
    // Nothing was written to the destination bucket's audit prefix.
    let listed = world
        .dst
        .list_objects_v2()
        .bucket(&world.destination_bucket)
        .prefix(".s3-fallback-replicator/audit/")
        .send()
        .await
        .unwrap();
    assert!(listed.contents().is_empty());
    // A sync's input is still refused with the audit's fields.
    let syncer = world.syncer().await;
    let refused = scheduled_sync::invoke(
        &syncer,
        &auditor,
        json!({"deep": true}),
        None,
        "x".into(),
        "f",
    )
    .await;
    assert!(refused.is_err());
}
