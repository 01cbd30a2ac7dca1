//! The randomized soak: objects of mixed sizes (some multipart, some rewritten), delivered as
//! SQS batches of S3 events — shuffled, some twice — with a sync pass running alongside the
//! copier, and then scheduled syncs, all through a proxy that injects faults
//! (`replicator_tests::faults`), KMS throttling as S3 reports it among them. In the first
//! round half the batches holding a multipart object reach their deadline mid-copy; failed
//! messages are redelivered as SQS would. Afterwards every source object's latest version
//! must be in the destination with equal bytes and the destination key, no key may hold more
//! replica versions than its source has versions, no multipart upload may be open, a copy
//! stopped at its deadline must have been resumed from its parts, and no message
//! acknowledged as done may have left its object unreplicated.
//!
//! Size and seed: SOAK_OBJECTS (default 1000), SOAK_SEED (default fixed; a failing run prints
//! it). `SOAK_OBJECTS=10000 cargo test -p replicator-tests --test e2e soak -- --nocapture`
//! is the larger documented run.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use event_copier::Handler;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use replicator_core::clock::Stop;
use replicator_core::{Clients, Replicator};
use replicator_tests::faults::{Fault, FaultProxy, Rule};
use replicator_tests::{bytes, sha256, World, REGION};
use serde_json::{json, Value};

use crate::common::s3_event;

/// How long a copy holds its upload's record at a time, in the soak.
const SOAK_UPLOAD_LEASE: Duration = Duration::from_secs(30);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The faults injected throughout: answered by the proxy (no side effect), or after the
/// emulator has acted (the client must cope with not knowing) — every operation can lose
/// its answer, CreateMultipartUpload included (a complete sync pass's sweep finds the upload
/// whose id never reached the client).
fn rules() -> Vec<Rule> {
    vec![
        Rule::new(" action=AssumeRole", 0.3, Fault::InternalError),
        // Both buckets encrypt with SSE-KMS: S3 reports KMS throttling on reads and writes.
        Rule::new("PUT /", 0.01, Fault::S3KmsThrottling),
        Rule::new("POST /", 0.01, Fault::S3KmsThrottling),
        Rule::new("GET /", 0.005, Fault::S3KmsThrottling),
        Rule::new("", 0.02, Fault::SlowDown),
        Rule::new("", 0.01, Fault::InternalError),
        Rule::new("GET /", 0.02, Fault::ResetMidBody),
        Rule::new("GET /", 0.01, Fault::TruncatedBody),
        Rule::new("PUT /", 0.02, Fault::ResetBeforeResponse),
        Rule::new("POST *uploadId=", 0.02, Fault::ResetBeforeResponse),
        Rule::new("DELETE /", 0.02, Fault::ResetBeforeResponse),
        Rule::new("POST *?uploads", 0.03, Fault::ResetBeforeResponse),
        // Any other request, reads and listings included: applied, its answer lost.
        Rule::new("", 0.01, Fault::ResetBeforeResponse),
        Rule::new("HEAD /", 0.03, Fault::Latency(Duration::from_millis(40))),
    ]
}

struct Object {
    key: String,
    /// (version id, body), oldest first.
    versions: Vec<(String, Vec<u8>)>,
}

fn size_for(rng: &mut StdRng) -> usize {
    match rng.random_range(0..1000) {
        0..=9 => rng.random_range(9 * 1024 * 1024..13 * 1024 * 1024),
        10..=99 => rng.random_range(64 * 1024..2 * 1024 * 1024),
        _ => rng.random_range(0..64 * 1024),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_with_faults_loses_corrupts_and_duplicates_nothing() {
    let count: usize = env_or("SOAK_OBJECTS", 1000);
    let seed: u64 = env_or("SOAK_SEED", 0x50a4_2026);
    eprintln!("soak: {count} objects, SOAK_SEED={seed}");
    let started = Instant::now();
    // Its own emulator: moto's memory grows with what a soak writes, and is freed with it.
    let emulator = replicator_tests::start_emulator();
    let mut world = World::on(&emulator.endpoint()).await;
    world.set("PART_SIZE", "5MiB");
    world.set("MULTIPART_THRESHOLD", "8MiB");
    world.set("SYNC_CONCURRENCY", "32");
    let mut rng = StdRng::seed_from_u64(seed);

    // The source: every object once, one in ten rewritten.
    let plan: Vec<(String, Vec<usize>)> = (0..count)
        .map(|i| {
            let n = if rng.random_range(0..10) == 0 { 2 } else { 1 };
            let sizes = (0..n).map(|_| size_for(&mut rng)).collect();
            (
                format!("soak/{:02}/{i:05}-{}.bin", i % 17, i * 7919 % 10007),
                sizes,
            )
        })
        .collect();
    let objects: Vec<Object> = futures::stream::iter(plan.into_iter().enumerate())
        .map(|(i, (key, sizes))| {
            let world = &world;
            async move {
                let mut versions = Vec::new();
                for (v, size) in sizes.into_iter().enumerate() {
                    let body = bytes(size, (i * 2 + v) as u64);
                    versions.push((world.put(&key, body.clone()).await, body));
                }
                Object { key, versions }
            }
        })
        .buffered(32)
        .collect()
        .await;
    let total_versions: usize = objects.iter().map(|o| o.versions.len()).sum();
    eprintln!(
        "soak: source written ({:.0} s)",
        started.elapsed().as_secs_f64()
    );

    // The functions under test talk to the emulator through the proxy. The copier and the
    // sync are separate engines, as separate Lambda containers are.
    let proxy = FaultProxy::start(&world.endpoint, rules(), seed).await;
    let sdk = replicator_tests::source_sdk(&proxy.endpoint()).await;
    // Copies hold their upload records for 30 s at a time (renewed after every part)
    // instead of 16 minutes, so that within the soak the sync's own sweep is what aborts
    // the uploads nobody will finish, those no record names included.
    let mut config = world.config();
    config.transfer.upload_lease_ms = SOAK_UPLOAD_LEASE.as_millis() as i64;
    let replicator = Replicator::new(config.clone(), Clients::new(&sdk, &config).await);
    let handler = Handler::new(replicator, Some(REGION.to_owned()), "soak");
    let sync_config =
        replicator_core::sync::SyncConfig::from_lookup(|k| world.vars().get(k).cloned())
            .expect("sync settings");
    let syncer = replicator_core::sync::Syncer::new(
        Replicator::new(config.clone(), Clients::new(&sdk, &config).await),
        None,
        sync_config,
        Some(REGION.to_owned()),
    );

    // One SQS message per version's event; one in ten delivered twice; shuffled.
    let mut messages: Vec<(String, usize, usize)> = Vec::new();
    for (o, object) in objects.iter().enumerate() {
        for v in 0..object.versions.len() {
            messages.push((format!("m-{o}-{v}"), o, v));
            if rng.random_range(0..10) == 0 {
                messages.push((format!("m-{o}-{v}-dup"), o, v));
            }
        }
    }
    messages.shuffle(&mut rng);
    let body_of = |o: usize, v: usize| {
        let object = &objects[o];
        let (version, body) = &object.versions[v];
        let mut event = s3_event(&world, &object.key, version, body.len());
        // S3's sequencers increase with each change to a key.
        event["Records"][0]["s3"]["object"]["sequencer"] =
            format!("0055AED6DCD9{:06X}", v + 1).into();
        event.to_string()
    };
    let template = world.fixture("sqs-s3-notification.json")["Records"][0].clone();
    let batch = |ids: &[&(String, usize, usize)]| {
        let records: Vec<Value> = ids
            .iter()
            .map(|(id, o, v)| {
                let mut r = template.clone();
                r["messageId"] = id.clone().into();
                r["body"] = body_of(*o, *v).into();
                r
            })
            .collect();
        json!({ "Records": records })
    };

    let multipart = |o: usize, v: usize| objects[o].versions[v].1.len() > 8 * 1024 * 1024;

    // Deliver; redeliver what was reported failed, as SQS does after the visibility timeout.
    // In the first round, half the batches that hold a multipart object reach their
    // "deadline" once the first part is under way (the copy keeps its upload for the
    // redelivery), and a sync pass runs at the same time as the copier.
    let mut pending: Vec<&(String, usize, usize)> = messages.iter().collect();
    let mut acknowledged: HashMap<&str, bool> = HashMap::new();
    let (mut reported_failures, mut deliveries, mut stopped) = (0u64, 0u64, 0u64);
    let mut concurrent_sync = None;
    for round in 0..6 {
        if pending.is_empty() {
            break;
        }
        deliveries += pending.len() as u64;
        let stops: Vec<bool> = pending
            .chunks(10)
            .map(|chunk| {
                let has_multipart = chunk.iter().any(|(_, o, v)| multipart(*o, *v));
                let stop = round == 0 && has_multipart && rng.random_range(0..2) == 0;
                if stop {
                    stopped += chunk.iter().filter(|(_, o, v)| multipart(*o, *v)).count() as u64;
                }
                stop
            })
            .collect();
        let deliver = futures::stream::iter(pending.chunks(10).zip(stops))
            .map(|(chunk, stop)| {
                let handler = if stop {
                    handler.clone().with_stop(Stop::when(|part| part >= 2))
                } else {
                    handler.clone()
                };
                let event = batch(chunk);
                async move {
                    let out = handler.handle(event).await.expect("SQS batches answer");
                    out["batchItemFailures"]
                        .as_array()
                        .expect("a batch response")
                        .iter()
                        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
                        .collect()
                }
            })
            .buffer_unordered(6)
            .collect::<Vec<Vec<String>>>();
        let sync_alongside = async {
            if round > 0 {
                return None;
            }
            let request = replicator_core::sync::SyncRequest {
                run_id: "soak-alongside".into(),
                ..Default::default()
            };
            Some(syncer.run(request).await)
        };
        let (results, sync_report) = tokio::join!(deliver, sync_alongside);
        if sync_report.is_some() {
            concurrent_sync = sync_report;
        }
        let failed: std::collections::HashSet<String> = results.into_iter().flatten().collect();
        reported_failures += failed.len() as u64;
        for m in &pending {
            acknowledged.insert(&m.0, !failed.contains(&m.0));
        }
        pending.retain(|m| failed.contains(&m.0));
    }

    eprintln!(
        "soak: events delivered ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    // No failure swallowed: a message acknowledged as done for an object's newest version
    // means that version is replicated now, before any sync runs.
    let mut swallowed = Vec::new();
    for (id, o, v) in &messages {
        let object = &objects[*o];
        if *v + 1 == object.versions.len() && acknowledged[id.as_str()] {
            let replica = world.replica_bytes(&object.key).await;
            if replica.as_deref().map(sha256) != Some(sha256(&object.versions[*v].1)) {
                swallowed.push(object.key.clone());
            }
        }
    }
    assert!(
        swallowed.is_empty(),
        "acknowledged but not replicated: {swallowed:?}"
    );

    let concurrent_sync = match concurrent_sync {
        Some(Ok(r)) => format!(
            "copied {}, skipped {}, failed {}",
            r.copied, r.skipped, r.failed
        ),
        Some(Err(e)) => format!("failed as a whole: {e}"),
        None => "did not run".into(),
    };
    // The first delivery of a stopped multipart copy kept its upload; a later attempt (the
    // redelivery, or the sync) listed its parts to resume it.
    let list_parts = proxy.count("GET *uploadId=");
    assert!(
        stopped == 0 || list_parts > 0,
        "{stopped} copies stopped at their deadline, none resumed (seed {seed})"
    );

    // Then the scheduled sync, with the faults still on, until a pass completes cleanly.
    let mut sync_failures = 0;
    let mut sync_runs = 0;
    let mut uploads_aborted = 0;
    loop {
        sync_runs += 1;
        let report = syncer
            .run(replicator_core::sync::SyncRequest {
                run_id: format!("soak-{sync_runs}"),
                ..Default::default()
            })
            .await;
        if let Ok(r) = &report {
            uploads_aborted += r.uploads_aborted;
            eprintln!(
                "sync run {sync_runs}: copied {}, skipped {}, failed {}, complete {}, busy {}",
                r.copied, r.skipped, r.failed, r.complete, r.busy
            );
        }
        match report {
            Ok(r) if r.complete && r.failed == 0 => break,
            Ok(r) => sync_failures += r.failed,
            Err(e) => {
                sync_failures += 1;
                eprintln!("sync run {sync_runs} failed as a whole: {e}");
            }
        }
        assert!(sync_runs < 10, "the sync did not converge under faults");
    }
    // The closing sync, faults still on: once no copy is in flight and the lease has run
    // out, an upload no record names is an orphan, and a complete pass's sweep aborts it.
    tokio::time::sleep(SOAK_UPLOAD_LEASE + Duration::from_secs(1)).await;
    for closing in 1..=3 {
        let report = syncer
            .run(replicator_core::sync::SyncRequest {
                run_id: format!("soak-closing-{closing}"),
                ..Default::default()
            })
            .await;
        match report {
            Ok(r) => {
                uploads_aborted += r.uploads_aborted;
                eprintln!(
                    "closing sync {closing}: copied {}, complete {}, {} uploads aborted",
                    r.copied, r.complete, r.uploads_aborted
                );
                if r.complete && world.open_uploads().await == 0 {
                    break;
                }
            }
            Err(e) => eprintln!("closing sync {closing} failed as a whole: {e}"),
        }
    }
    proxy.set_enabled(false);
    eprintln!("soak: synced ({:.0} s)", started.elapsed().as_secs_f64());

    // The verdict, read directly from the emulator.
    let (mut lost, mut corrupt, mut duplicates, mut wrong_key) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let destination_key = world.destination_key_arn.clone();
    // One listing of every replica version (moto's per-key version listing copies the whole
    // bucket each time, and keeps the memory).
    let mut replica_versions: HashMap<String, usize> = HashMap::new();
    for (key, _) in world.all_destination_versions().await {
        *replica_versions.entry(key).or_default() += 1;
    }
    for object in &objects {
        let newest = &object.versions.last().unwrap().1;
        match world.replica_bytes(&object.key).await {
            None => lost.push(object.key.clone()),
            Some(b) if sha256(&b) != sha256(newest) => corrupt.push(object.key.clone()),
            Some(_) => {}
        }
        let head = world.replica_head(&object.key).await;
        if head.ssekms_key_id() != Some(destination_key.as_str()) {
            wrong_key.push(object.key.clone());
        }
        if replica_versions.get(&object.key).copied().unwrap_or(0) > object.versions.len() {
            duplicates.push(object.key.clone());
        }
    }
    let open_uploads = world.open_uploads().await;
    let injected: BTreeMap<_, _> = proxy.injected();
    let faults: u64 = injected.values().sum();
    eprintln!(
        "soak (seed {seed}): {count} objects, {total_versions} versions, {} messages, {deliveries} deliveries, \
         {} requests, {faults} faults injected {injected:?}, {} repeated requests (retries, re-deliveries), \
         {reported_failures} failures reported to SQS, {stopped} multipart copies stopped at a deadline \
         ({list_parts} ListParts to resume), sync alongside the copier: {concurrent_sync}; \
         {sync_runs} sync runs after ({sync_failures} failed objects, {uploads_aborted} abandoned uploads aborted), \
         lost={}, corrupt={}, duplicates={}, wrong key={}, open uploads={open_uploads}, {:.0} s",
        messages.len(),
        proxy.requests(),
        proxy.repeats(),
        lost.len(),
        corrupt.len(),
        duplicates.len(),
        wrong_key.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        faults > count as u64 / 10,
        "too few faults to mean anything: {injected:?}"
    );
    assert!(lost.is_empty(), "lost (seed {seed}): {lost:?}");
    assert!(corrupt.is_empty(), "corrupt (seed {seed}): {corrupt:?}");
    assert!(
        duplicates.is_empty(),
        "duplicates (seed {seed}): {duplicates:?}"
    );
    assert!(
        wrong_key.is_empty(),
        "wrong KMS key (seed {seed}): {wrong_key:?}"
    );
    if open_uploads > 0 {
        for (key, upload_id) in world.open_upload_list().await {
            eprintln!("open upload {upload_id} of {key}; faults on its requests:");
            for (request, occurrence, fault) in proxy.faults_on(&key) {
                eprintln!("  {fault} on {request} (seen {occurrence} times)");
            }
        }
    }
    assert_eq!(open_uploads, 0, "multipart uploads left open (seed {seed})");
}
