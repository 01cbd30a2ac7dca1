//! The scheduled sync through its real handler (`scheduled_sync::handle`), against the
//! emulator: convergence, idempotence, time budget and resume, dry run, fan-out through SQS
//! to the event copier, and guarded deletes.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt;
use replicator_core::sync::{SyncReport, Syncer};
use replicator_tests::{bytes, World};
use serde_json::{json, Value};

async fn run(syncer: &Syncer, input: Value, deadline: Option<Instant>) -> SyncReport {
    scheduled_sync::handle(
        syncer,
        input,
        deadline,
        format!("run-{}", rand::random::<u32>()),
        "sync-test",
    )
    .await
    .unwrap_or_else(|e| panic!("sync failed: {e}"))
}

fn scheduled() -> Value {
    let text = std::fs::read_to_string(replicator_tests::workspace().join("events/schedule.json"))
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Checks every source object has a byte-identical replica under the destination key.
async fn assert_converged(world: &World, objects: &BTreeMap<String, Vec<u8>>) {
    futures::stream::iter(objects.iter())
        .for_each_concurrent(16, |(k, v)| async move { world.assert_replica(k, v).await })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_of_500_objects_converges_and_a_second_run_copies_nothing() {
    let world = World::new().await;
    let mut objects: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..520u64 {
        let key = match i % 5 {
            0 => format!("data/{i:04} with space+plus.bin"),
            1 => format!("data/ünï/{i:04}"),
            _ => format!("data/{i:04}"),
        };
        objects.insert(key, bytes(100 + (i as usize % 7) * 300, i));
    }
    world.put_all(&objects).await;
    // 200 already replicated.
    let replicator = world.replicator().await;
    let keys: Vec<String> = objects.keys().cloned().collect();
    for key in keys.iter().take(200) {
        replicator
            .replicate(&replicator_core::ObjectRequest::created(
                world.source_bucket.clone(),
                key.clone(),
            ))
            .await
            .unwrap();
    }
    // 50 of those rewritten with the same size, 20 with another size.
    let mut changed = BTreeMap::new();
    for (n, key) in keys.iter().take(70).enumerate() {
        let old = &objects[key];
        let new = if n < 50 {
            bytes(old.len(), 10_000 + n as u64)
        } else {
            bytes(old.len() + 1, 20_000 + n as u64)
        };
        changed.insert(key.clone(), new);
    }
    world.put_all(&changed).await;
    objects.extend(changed);
    // 30 destination-only objects.
    for i in 0..30 {
        world
            .put_foreign(&format!("data/only-in-destination-{i}"), b"x")
            .await;
    }

    let syncer = world.syncer().await;
    let first = run(&syncer, scheduled(), None).await;
    assert!(first.complete, "{first:?}");
    assert_eq!(first.failed, 0, "{:?}", first.failed_keys);
    assert_eq!(first.copied, 320 + 70, "{first:?}");
    assert_eq!(first.skipped, 130, "{first:?}");
    assert_eq!(first.destination_only, 30);
    assert_converged(&world, &objects).await;
    for i in 0..30 {
        assert!(
            world
                .replica_bytes(&format!("data/only-in-destination-{i}"))
                .await
                .is_some(),
            "kept"
        );
    }

    let versions = world.all_destination_versions().await;
    let second = run(&syncer, scheduled(), None).await;
    assert!(second.complete);
    assert_eq!(
        (second.copied, second.failed, second.skipped),
        (0, 0, 520),
        "{second:?}"
    );
    // Only the checkpoint object may have gained versions.
    let replica_versions = |v: &[(String, String)]| -> Vec<(String, String)> {
        v.iter()
            .filter(|(k, _)| !k.starts_with(".s3-fallback-replicator/"))
            .cloned()
            .collect()
    };
    assert_eq!(
        replica_versions(&world.all_destination_versions().await),
        replica_versions(&versions)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_deadline_stops_early_and_later_runs_finish_the_pass() {
    let mut world = World::new().await;
    world.set("SYNC_TIME_MARGIN_SECONDS", "1");
    world.set("SYNC_CONCURRENCY", "4");
    let objects = world
        .put_numbered(300, |i| format!("k/{i:05}"), |_| 2000)
        .await;
    let syncer = world.syncer().await;

    let mut runs = 0;
    let mut copied = 0;
    loop {
        runs += 1;
        let started = Instant::now();
        let deadline = started + Duration::from_millis(1600);
        let report = run(&syncer, scheduled(), Some(deadline)).await;
        assert!(
            Instant::now() < deadline,
            "run {runs} answered after its deadline"
        );
        assert_eq!(report.failed, 0, "{:?}", report.failed_keys);
        copied += report.copied;
        if report.complete {
            break;
        }
        assert!(
            report.checkpoint.is_some(),
            "an incomplete run saves where it stopped"
        );
        assert!(runs < 60, "sync never completed");
    }
    assert!(runs > 1, "the deadline should have stopped the first run");
    assert_eq!(copied, 300, "every object copied exactly once across runs");
    assert_converged(&world, &objects).await;
    for key in objects.keys() {
        assert_eq!(
            world.replica_versions(key).await.len(),
            1,
            "{key} written once"
        );
    }
}

#[tokio::test]
async fn max_objects_limits_a_run() {
    let world = World::new().await;
    world
        .put_numbered(25, |i| format!("m/{i:03}"), |_| 10)
        .await;
    let syncer = world.syncer().await;
    let report = run(&syncer, json!({"max_objects": 10}), None).await;
    assert!(!report.complete);
    assert_eq!(report.copied, 10);
    let rest = run(&syncer, scheduled(), None).await;
    assert!(rest.complete);
    assert_eq!(rest.copied, 15, "{rest:?}");
}

#[tokio::test]
async fn a_dry_run_writes_nothing() {
    let world = World::new().await;
    world
        .put_numbered(20, |i| format!("d/{i:03}"), |_| 10)
        .await;
    world.put_foreign("d/orphan", b"o").await;
    let before = world.all_destination_versions().await;
    let syncer = world.syncer().await;
    let report = run(&syncer, world.fixture("schedule-dry-run.json"), None).await;
    assert!(report.dry_run);
    assert_eq!(report.would_copy_count, 20, "{report:?}");
    assert_eq!(report.copied, 0);
    assert_eq!(report.destination_only, 1);
    assert_eq!(report.destination_only_keys, vec!["d/orphan".to_owned()]);
    assert_eq!(
        world.all_destination_versions().await,
        before,
        "nothing written, not even a checkpoint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_through_sqs_converges_via_the_event_copier() {
    let mut world = World::new().await;
    let queue = crate::common::queue(&world).await;
    world.overrides.insert("SYNC_QUEUE_URL", queue.clone());
    let objects = world
        .put_numbered(45, |i| format!("fan/{i:03} é+x"), |i| 50 + i as usize)
        .await;

    let report = run(&world.syncer().await, scheduled(), None).await;
    assert!(report.complete);
    assert_eq!(report.enqueued, 45, "{report:?}");
    assert_eq!(report.copied, 0, "fan-out does not copy itself");
    assert!(world
        .replica_bytes(objects.keys().next().unwrap())
        .await
        .is_none());

    // Feed the queue to the event copier, as Lambda's SQS event source would.
    let delivered = crate::common::drain(&world, &queue).await;
    assert_eq!(delivered, 45);
    assert_converged(&world, &objects).await;
    // Nothing left to enqueue.
    let again = run(&world.syncer().await, scheduled(), None).await;
    assert_eq!(again.enqueued, 0, "{again:?}");
}

#[tokio::test]
async fn sync_delete_removes_only_orphaned_replicas_and_respects_the_limit() {
    let mut world = World::new().await;
    world.set("SYNC_DELETE", "true");
    let replicator = world.replicator().await;
    // Two replicas whose sources were deleted, and one foreign object.
    for key in ["del/a", "del/b"] {
        world.put(key, b"x".to_vec()).await;
        replicator
            .replicate(&replicator_core::ObjectRequest::created(
                world.source_bucket.clone(),
                key,
            ))
            .await
            .unwrap();
        world.delete_source(key).await;
    }
    world.put("del/keep", b"k".to_vec()).await;
    world.put_foreign("del/foreign", b"f").await;

    // Three destination-only objects, limit 2: the whole delete phase is refused.
    world.set("SYNC_MAX_DELETES", "2");
    let refused = run(&world.syncer().await, scheduled(), None).await;
    assert_eq!(refused.destination_only, 3);
    assert_eq!(refused.deleted, 0);
    assert!(
        refused.delete_phase.starts_with("refused"),
        "{}",
        refused.delete_phase
    );
    assert!(world.replica_bytes("del/a").await.is_some());

    world.set("SYNC_MAX_DELETES", "3");
    let done = run(&world.syncer().await, scheduled(), None).await;
    assert_eq!(done.deleted, 2, "{done:?}");
    assert!(world.replica_bytes("del/a").await.is_none());
    assert!(world.replica_bytes("del/b").await.is_none());
    assert!(
        world.replica_bytes("del/foreign").await.is_some(),
        "not ours: never deleted"
    );
    world.assert_replica("del/keep", b"k").await;
    // The replicas' data is still there as noncurrent versions.
    assert_eq!(world.replica_versions("del/a").await.len(), 1);
}

#[tokio::test]
async fn an_empty_source_never_wipes_the_destination() {
    let mut world = World::new().await;
    world.set("SYNC_DELETE", "true");
    let replicator = world.replicator().await;
    world.put("e/a", b"x".to_vec()).await;
    replicator
        .replicate(&replicator_core::ObjectRequest::created(
            world.source_bucket.clone(),
            "e/a",
        ))
        .await
        .unwrap();
    world.delete_source("e/a").await;
    let report = run(&world.syncer().await, scheduled(), None).await;
    assert_eq!(report.deleted, 0);
    assert!(
        report.delete_phase.contains("no objects"),
        "{}",
        report.delete_phase
    );
    assert!(world.replica_bytes("e/a").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_runs_do_not_work_the_same_keys() {
    let world = World::new().await;
    let objects = world
        .put_numbered(60, |i| format!("o/{i:03}"), |_| 500)
        .await;
    let a = world.syncer().await;
    let b = world.syncer().await;
    let (ra, rb) = tokio::join!(run(&a, scheduled(), None), run(&b, scheduled(), None));
    assert!(
        ra.busy || rb.busy,
        "one run must find the other's lease: {ra:?} {rb:?}"
    );
    assert_eq!(ra.copied + rb.copied, 60);
    assert_converged(&world, &objects).await;
    let counts: HashMap<String, usize> = {
        let mut m = HashMap::new();
        for (k, _) in world.all_destination_versions().await {
            *m.entry(k).or_default() += 1;
        }
        m
    };
    for key in objects.keys() {
        assert_eq!(counts[key], 1, "{key} written once");
    }
}

#[tokio::test]
async fn a_prefix_outside_key_prefix_is_refused() {
    let mut world = World::new().await;
    world.set("KEY_PREFIX", "in/");
    let err = scheduled_sync::handle(
        &world.syncer().await,
        json!({"prefix": "out/"}),
        None,
        "r".into(),
        "f",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("KEY_PREFIX"), "{err}");
}

/// Regression: a checkpoint write whose answer was lost (it landed, and the SDK's retry then
/// failed its condition on it) was taken for another run's: the run answered busy, its own
/// lease stayed, and every later run was busy until it expired.
#[tokio::test]
async fn a_checkpoint_write_whose_answer_was_lost_is_recognised_as_ours() {
    use replicator_core::sync::{SyncConfig, SyncRequest};
    use replicator_core::{Clients, Replicator};
    use replicator_tests::faults::{Fault, FaultProxy, Rule};

    let world = World::new().await;
    for i in 0..3 {
        world.put(&format!("lost-answer/{i}"), bytes(100, i)).await;
    }
    let proxy = FaultProxy::start(
        &world.endpoint,
        vec![Rule::new("PUT *sync/*/all.json", 1.0, Fault::ResetBeforeResponse).first_only()],
        3,
    )
    .await;
    let sdk = replicator_tests::source_sdk(&proxy.endpoint()).await;
    let syncer = Syncer::new(
        Replicator::new(world.config(), Clients::new(&sdk, &world.config()).await),
        None,
        SyncConfig::from_lookup(|k| world.vars().get(k).cloned()).unwrap(),
        None,
    );
    for run in ["first", "second"] {
        let report = syncer
            .run(SyncRequest {
                run_id: run.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(!report.busy && report.complete, "{run}: {report:?}");
    }
    assert_eq!(proxy.injected().get("reset before response"), Some(&1));
    for i in 0..3 {
        world
            .assert_replica(&format!("lost-answer/{i}"), &bytes(100, i))
            .await;
    }
}

/// A replica made from a version written in the same second as the current one, with no
/// sequencers to tell them apart: the sync replaces it without asking the source's version
/// order (the current version, read after the replica, is the newer), and no
/// ListObjectVersions is sent. (moto copies the whole bucket for each of those listings; at
/// 10,000 objects a sync beside the copier swapped the machine to a halt.)
#[tokio::test]
async fn a_same_second_rewrite_is_replaced_without_listing_versions() {
    use replicator_tests::captured_requests;

    let world = World::new().await;
    let replicator = world.replicator().await;
    let last_modified = |version: String| {
        let world = &world;
        async move { world.source_second("same-second/key", &version).await }
    };
    // Two versions within one second (tried until the clock obliges).
    let (v1, body) = loop {
        let v1 = world.put("same-second/key", b"first".to_vec()).await;
        let v2 = world.put("same-second/key", b"second!".to_vec()).await;
        if last_modified(v1.clone()).await == last_modified(v2).await {
            break (v1, b"second!".to_vec());
        }
    };
    replicator
        .replicate(
            &replicator_core::ObjectRequest::created(
                world.source_bucket.clone(),
                "same-second/key",
            )
            .with_version(Some(v1)),
        )
        .await
        .unwrap();
    world.assert_replica("same-second/key", b"first").await;

    let mark = captured_requests(&world.endpoint).len();
    let report = run(
        &world.syncer().await,
        json!({"prefix": "same-second/"}),
        None,
    )
    .await;
    assert_eq!((report.copied, report.failed), (1, 0), "{report:?}");
    world.assert_replica("same-second/key", &body).await;
    let listings = captured_requests(&world.endpoint)[mark..]
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap_or_default()
                .contains(&world.source_bucket)
                && r["query"].as_str().unwrap_or_default().contains("versions")
        })
        .count();
    assert_eq!(listings, 0, "ListObjectVersions sent");
}
