//! Reconcile from S3 Inventory through the scheduled sync's real handler: an inventory of
//! 20,000+ rows in several gzip CSV data files, read from its location (the newest complete
//! one), healed in heal mode through the copier queue, resumed across runs cut by
//! `max_objects` and by short deadlines without a row read twice; a destination inventory
//! standing in for the replica HEADs; manifests and data files that cannot be trusted are
//! loud errors, and the pass resumes where it stopped once they are whole.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use replicator_core::clock::Stop;
use replicator_core::sync::{SyncReport, Syncer};
use replicator_core::ObjectRequest;
use replicator_tests::inventory::{self, InventoryRow};
use replicator_tests::{bytes, captured_requests, World};
use serde_json::{json, Value};

use crate::common::{deliver, drain, queue};

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

/// A bucket for inventories, made with `s3`'s account.
async fn inventory_bucket(s3: &aws_sdk_s3::Client) -> String {
    let name = format!("inventory-{:08x}", rand::random::<u32>());
    inventory::create_bucket(s3, &name).await;
    name
}

/// A current row for a real source object: its version, size, ETag and Last-Modified.
async fn row_of(world: &World, key: &str, status: &str) -> InventoryRow {
    let head = world
        .src
        .head_object()
        .bucket(&world.source_bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    InventoryRow {
        size: head.content_length().unwrap() as u64,
        etag: head.e_tag().unwrap().trim_matches('"').to_owned(),
        last_modified: head
            .last_modified()
            .unwrap()
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap(),
        ..InventoryRow::current(key, head.version_id().unwrap(), status)
    }
}

/// Replica keys of the destination, without the replicator's state.
async fn replica_versions(world: &World) -> Vec<(String, String)> {
    let all = world.all_destination_versions().await;
    all.into_iter()
        .filter(|(key, _)| !key.starts_with(".s3-fallback-replicator/"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inventory_of_20000_rows_heals_through_the_queue_and_resumes_without_reading_a_row_twice(
) {
    let mut world = World::new().await;
    let queue = queue(&world).await;
    world.set("SYNC_QUEUE_URL", queue.clone());
    world.set("NATIVE_REPLICATION", "heal");
    world.set("NATIVE_PENDING_GRACE_SECONDS", "1");
    world.set("SYNC_TIME_MARGIN_SECONDS", "1");
    let bucket = inventory_bucket(&world.src).await;

    // What native replication completed: 20,000 rows with no object behind them — any
    // request for one would fail the copy, so they must cost nothing but their parsing.
    let mut rows: Vec<InventoryRow> = (0..20_000)
        .map(|i| InventoryRow::current(format!("bulk/{i:05}"), format!("v{i}"), "COMPLETED"))
        .collect();
    let mut healed = BTreeMap::new();
    for (prefix, status, count) in [("failed", "FAILED", 24), ("pending", "PENDING", 4)] {
        for i in 0..count {
            let key = format!("{prefix}/{i:02} é+x");
            let body = bytes(100 + i, i as u64);
            let version = world.put(&key, body.clone()).await;
            world.native_replication(&key, &version, status, "");
            rows.push(row_of(&world, &key, status).await);
            healed.insert(key, body);
        }
    }
    for i in 0..6 {
        let key = format!("completed/{i}");
        let version = world.put(&key, bytes(50, i)).await;
        world.native_replication(&key, &version, "COMPLETED", "");
        rows.push(row_of(&world, &key, "COMPLETED").await);
    }
    // Not work: an older version native replication failed, a delete marker.
    rows.push(InventoryRow {
        latest: false,
        ..InventoryRow::current("failed/00 é+x", "an-older-version", "FAILED")
    });
    rows.push(InventoryRow {
        delete_marker: true,
        ..InventoryRow::current("deleted/key", "dm", "")
    });
    // Failed, and deleted since the inventory: selected, and the copier finds it gone.
    rows.push(InventoryRow::current("gone/object", "v-gone", "FAILED"));
    let total = rows.len() as u64;
    let selected = healed.len() as u64 + 1;
    let location = format!("inventory/{}/daily/", world.source_bucket);
    inventory::publish(
        &world.src,
        &bucket,
        &location,
        "2026-11-30T01-00Z",
        &world.source_bucket,
        &inventory::split(rows, 5),
        true,
    )
    .await;
    // The PENDING objects are past their grace period.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let completed_before = replica_versions(&world).await;

    let syncer = world.syncer().await;
    let input = json!({ "inventory_manifest": format!("s3://{bucket}/{location}") });
    let mut cut = input.clone();
    cut["max_objects"] = 6_000.into();
    let first = run(&syncer, cut, None).await;
    assert!(!first.complete, "{first:?}");
    assert_eq!(first.inventory_rows, 6_000, "{first:?}");
    assert!(first
        .inventory_manifest
        .as_deref()
        .is_some_and(|m| m.ends_with("2026-11-30T01-00Z/manifest.json")));
    let (mut read, mut chosen, mut enqueued) = (
        first.inventory_rows,
        first.inventory_selected,
        first.enqueued,
    );
    let (mut runs, mut cut_by_deadline) = (1, 0);
    loop {
        // 150 ms of work a run (SYNC_TIME_MARGIN_SECONDS=1): too little for the rows left.
        let deadline = Instant::now() + Duration::from_millis(1150);
        let report = run(&syncer, input.clone(), Some(deadline)).await;
        assert_eq!(report.failed, 0, "{report:?}");
        read += report.inventory_rows;
        chosen += report.inventory_selected;
        enqueued += report.enqueued;
        runs += 1;
        if report.complete {
            break;
        }
        // Nothing but the deadline stops these runs short.
        cut_by_deadline += 1;
        assert!(runs < 300, "the pass does not finish");
    }
    eprintln!("{total} rows in {runs} runs, {cut_by_deadline} cut by their deadline");
    assert!(
        cut_by_deadline >= 1,
        "no run was cut by its deadline: resuming after one is not shown"
    );
    assert_eq!(read, total, "every row read once");
    assert_eq!((chosen, enqueued), (selected, selected));

    assert_eq!(drain(&world, &queue).await as u64, selected);
    for (key, body) in &healed {
        world.assert_replica(key, body).await;
    }
    let after: Vec<_> = replica_versions(&world).await;
    let new: Vec<_> = after
        .iter()
        .filter(|v| !completed_before.contains(v))
        .collect();
    assert_eq!(
        new.len(),
        healed.len(),
        "only the healed objects were written: {new:?}"
    );

    // The same inventory once more: reconciled already, nothing read or sent.
    let again = run(&syncer, input, None).await;
    assert!(again.complete, "{again:?}");
    assert_eq!((again.inventory_rows, again.enqueued), (0, 0), "{again:?}");
}

/// HEAD requests on the destination for `key`'s replica since `from`.
fn replica_heads(world: &World, from: usize, key: &str) -> usize {
    let path = format!("/{}/{key}", world.destination_bucket);
    captured_requests(&world.endpoint)[from..]
        .iter()
        .filter(|r| r["method"] == "HEAD" && r["path"] == path.as_str())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_inventory_spares_the_heads_and_the_newest_complete_inventory_is_read() {
    let world = World::new().await;
    let source_inventory = inventory_bucket(&world.src).await;
    let destination_inventory = inventory_bucket(&world.dst).await;
    let (mut source_rows, mut destination_rows) = (Vec::new(), Vec::new());
    let mut objects = BTreeMap::new();
    for i in 0..12u64 {
        let key = format!("d/{i:02}");
        let body = bytes(64, i);
        let version = world.put(&key, body.clone()).await;
        match i {
            // Native replicas of the same version: the destination inventory says so.
            0..4 => {
                world.native_replication(&key, &version, "COMPLETED", "");
                destination_rows.push(InventoryRow::current(&key, &version, "REPLICA"));
            }
            // Missing: the destination inventory has no row.
            4..8 => {}
            // This replicator's replicas: present, so one HEAD tells whose.
            _ => {
                let out = deliver(&world, &key, &version, 64).await.unwrap();
                assert_eq!(out["copied"], 1, "{out}");
                destination_rows.push(InventoryRow::current(&key, "a-replica-version", ""));
            }
        }
        source_rows.push(row_of(&world, &key, "").await);
        objects.insert(key, body);
    }
    let location = format!("inv/{}/all/", world.source_bucket);
    inventory::publish(
        &world.src,
        &source_inventory,
        &location,
        "2026-11-29T01-00Z",
        &world.source_bucket,
        &inventory::split(source_rows.clone(), 3),
        true,
    )
    .await;
    // A newer inventory S3 is still writing (no manifest.checksum yet) is passed over.
    inventory::publish(
        &world.src,
        &source_inventory,
        &location,
        "2026-11-30T01-00Z",
        &world.source_bucket,
        &[vec![InventoryRow::current("d/00", "not-yet", "")]],
        false,
    )
    .await;
    let destination_location = format!("inv/{}/all/", world.destination_bucket);
    inventory::publish(
        &world.dst,
        &destination_inventory,
        &destination_location,
        "2026-11-29T02-00Z",
        &world.destination_bucket,
        &inventory::split(destination_rows, 2),
        true,
    )
    .await;
    let before = replica_versions(&world).await;
    let from = captured_requests(&world.endpoint).len();
    let input = json!({
        "inventory_manifest": format!("s3://{source_inventory}/{location}"),
        "destination_inventory_manifest": format!("s3://{destination_inventory}/{destination_location}"),
    });
    let report = run(&world.syncer().await, input, None).await;
    assert!(report.complete, "{report:?}");
    assert!(report
        .inventory_manifest
        .as_deref()
        .is_some_and(|m| m.ends_with("2026-11-29T01-00Z/manifest.json")));
    assert_eq!(
        (report.inventory_rows, report.copied, report.failed),
        (12, 4, 0),
        "{report:?}"
    );
    for i in 0..4 {
        assert_eq!(
            replica_heads(&world, from, &format!("d/{i:02}")),
            0,
            "d/{i:02}"
        );
    }
    for i in 8..12 {
        assert!(
            replica_heads(&world, from, &format!("d/{i:02}")) >= 1,
            "d/{i:02}"
        );
    }
    for (i, (key, body)) in objects.iter().enumerate() {
        if i < 4 {
            // Native replication's own replica, encrypted as its rule says: left as it is.
            assert_eq!(world.replica_bytes(key).await.as_ref(), Some(body), "{key}");
        } else {
            world.assert_replica(key, body).await;
        }
    }
    let after = replica_versions(&world).await;
    assert_eq!(
        after.len(),
        before.len() + 4,
        "only the missing four were written"
    );

    // The next day's inventory, through the command line: read because it is newer.
    source_rows.push(InventoryRow::current("d/new", "v-new", ""));
    world.put("d/new", b"new".to_vec()).await;
    inventory::publish(
        &world.src,
        &source_inventory,
        &location,
        "2026-11-30T02-00Z",
        &world.source_bucket,
        &inventory::split(source_rows, 2),
        true,
    )
    .await;
    let manifest = format!("s3://{source_inventory}/{location}");
    let mut out = Vec::new();
    let code = replicator_cli::run(
        world.cli_args(&["sync", "--inventory-manifest", &manifest]),
        Some(world.source_sdk.clone()),
        &mut out,
    )
    .await;
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("2026-11-30T02-00Z/manifest.json: 13 rows read"),
        "{out}"
    );
    world.assert_replica("d/new", b"new").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inventory_that_cannot_be_trusted_is_a_loud_error_and_the_pass_resumes_once_it_is_whole()
{
    let world = World::new().await;
    let bucket = inventory_bucket(&world.src).await;
    let mut rows = Vec::new();
    for i in 0..30u64 {
        let key = format!("t/{i:02}");
        world.put(&key, bytes(10, i)).await;
        rows.push(row_of(&world, &key, "").await);
    }
    // A key this replicator refuses to write: a failure named with its key, not a skip.
    rows.push(InventoryRow::current("t/x/../y", "v", ""));
    let files = inventory::split(rows, 3);
    let manifest = inventory::publish(
        &world.src,
        &bucket,
        "inv/",
        "2026-11-30T01-00Z",
        &world.source_bucket,
        &files,
        true,
    )
    .await;
    let syncer = world.syncer().await;
    let input = json!({ "inventory_manifest": manifest });

    // A manifest that is not the one S3 published (its checksum differs): nothing is read.
    let manifest_key = "inv/2026-11-30T01-00Z/manifest.json";
    let published = world
        .src
        .get_object()
        .bucket(&bucket)
        .key(manifest_key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let tampered = String::from_utf8(published.to_vec())
        .unwrap()
        .replace("\"CSV\"", "\"csv\"");
    inventory::put(&world.src, &bucket, manifest_key, tampered.into_bytes()).await;
    let err = scheduled_sync::handle(&syncer, input.clone(), None, "tampered".into(), "t")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("manifest.checksum"), "{err}");
    assert!(world.replica_bytes("t/00").await.is_none());
    inventory::put(&world.src, &bucket, manifest_key, published.to_vec()).await;

    // The second data file cut short: the pass stops at it, with an error naming it.
    let second = "inv/data/2026-11-30T01-00Z-0001.csv.gz".to_owned();
    let whole = inventory::data_file(&world.source_bucket, &files[1]);
    inventory::put(
        &world.src,
        &bucket,
        &second,
        whole[..whole.len() / 2].to_vec(),
    )
    .await;
    let err = scheduled_sync::handle(&syncer, input.clone(), None, "cut".into(), "t")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&second), "{err}");
    world.assert_replica("t/00", &bytes(10, 0)).await;
    assert!(
        world.replica_bytes("t/29").await.is_none(),
        "nothing past the bad file"
    );

    // Whole again: the next run goes on from the row the bad file stopped at.
    inventory::put(&world.src, &bucket, &second, whole).await;
    let report = run(&syncer, input, None).await;
    assert!(report.complete, "{report:?}");
    assert!(
        report.inventory_rows < 31 - files[0].len() as u64 + 1,
        "the first file is not read again: {report:?}"
    );
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(report.failed_keys[0].key, "t/x/../y", "{report:?}");
    for i in 0..30u64 {
        world
            .assert_replica(&format!("t/{i:02}"), &bytes(10, i))
            .await;
    }
}

#[tokio::test]
async fn an_inventory_pass_sweeps_the_uploads_nobody_will_finish_as_a_listing_pass_does() {
    // Regression: only a listing pass swept; a deployment reconciling from S3 Inventory kept
    // every abandoned upload open however many complete passes it ran.
    let mut world = World::new().await;
    world.set("PART_SIZE", "5MiB");
    world.set("MULTIPART_THRESHOLD", "5MiB");
    world.set("MAX_IN_FLIGHT_BYTES", "5MiB");
    let key = "swept/one.bin";
    let v1 = world.put(key, bytes(12 * 1024 * 1024, 31)).await;
    let replicator = world.replicator().await;
    // Version 1's copy stops at its deadline and keeps its upload; version 2 is copied
    // before version 1's retry would come, so nobody will finish version 1's upload.
    let older = ObjectRequest::created(world.source_bucket.clone(), key).with_version(Some(v1));
    replicator
        .replicate_until(&older, &Stop::when(|part| part >= 2))
        .await
        .unwrap_err();
    world.put(key, b"version 2".to_vec()).await;
    replicator
        .replicate(&ObjectRequest::created(world.source_bucket.clone(), key))
        .await
        .unwrap();
    assert_eq!(world.open_uploads().await, 1, "version 1's upload is kept");

    let inventories = inventory_bucket(&world.src).await;
    let location = format!("inv/{}/all/", world.source_bucket);
    inventory::publish(
        &world.src,
        &inventories,
        &location,
        "2026-12-01T01-00Z",
        &world.source_bucket,
        &[vec![row_of(&world, key, "").await]],
        true,
    )
    .await;
    let input = json!({ "inventory_manifest": format!("s3://{inventories}/{location}") });
    let report = run(&world.syncer().await, input, None).await;
    assert!(report.complete, "{report:?}");
    assert_eq!(
        (report.copied, report.uploads_aborted),
        (0, 1),
        "{report:?}"
    );
    assert_eq!(world.open_uploads().await, 0);
    assert_eq!(world.upload_records().await, 0);
    world.assert_replica(key, b"version 2").await;
}
