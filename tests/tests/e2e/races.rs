//! Races, with seeded random interleavings: copiers (separate engines, as separate Lambda
//! containers are) handling different versions of one key at once, and the event copier and
//! the scheduled sync working the same keys at once. Conditional writes decide: the replica
//! always ends as the newest source version, and no version is written twice.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use replicator_tests::{bytes, World};

use crate::common::s3_event;

const SEED: u64 = 0x5eed_2026;

/// The source version id the replica was made from (its provenance).
async fn replica_source_version(world: &World, key: &str) -> String {
    world
        .replica_head(key)
        .await
        .metadata()
        .and_then(|m| m.get("replicator-source-version-id").cloned())
        .unwrap_or_else(|| panic!("replica of {key} has no provenance"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_copiers_of_different_versions_end_at_the_newest() {
    let mut world = World::new().await;
    world.set("PART_SIZE", "5MiB");
    world.set("MULTIPART_THRESHOLD", "5MiB");
    let copiers = [
        world.handler().await,
        world.handler().await,
        world.handler().await,
    ];
    let mut rng = StdRng::seed_from_u64(SEED);
    for round in 0..24 {
        let key = format!("race/{round:02}");
        // Every sixth round is large enough to go multipart.
        let size = if round % 6 == 5 {
            6 * 1024 * 1024
        } else {
            300 + round
        };
        let mut versions = Vec::new();
        for v in 0..3u64 {
            let body = bytes(size, round as u64 * 10 + v);
            versions.push((world.put(&key, body.clone()).await, body));
        }
        // Each copier gets one version's event (the newest sometimes twice), in random order
        // and after a random delay.
        let mut jobs: Vec<usize> = vec![0, 1, 2, 2];
        jobs.shuffle(&mut rng);
        let order = jobs.clone();
        let tasks: Vec<_> = jobs
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let handler = copiers[i % copiers.len()].clone();
                let mut event = s3_event(&world, &key, &versions[v].0, size);
                // Half the rounds carry increasing sequencers, as S3 sends; the others none,
                // so the source's version order decides same-second writes.
                let object = &mut event["Records"][0]["s3"]["object"];
                if round % 2 == 0 {
                    object["sequencer"] = format!("00{:014X}", round * 16 + v + 1).into();
                } else {
                    object.as_object_mut().unwrap().remove("sequencer");
                }
                let delay = std::time::Duration::from_millis(rng.random_range(0..30));
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    handler.handle(event).await
                })
            })
            .collect();
        for t in tasks {
            let out = t.await.expect("no panic");
            out.unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        let (newest_version, newest_body) = versions.last().unwrap();
        assert_eq!(
            &replica_source_version(&world, &key).await,
            newest_version,
            "round {round}: the replica is not the newest source version"
        );
        world.assert_replica(&key, newest_body).await;
        let written = world.replica_versions(&key).await;
        if written.len() > versions.len() {
            let mut made_from = Vec::new();
            for v in &written {
                let head = world
                    .dst
                    .head_object()
                    .bucket(&world.destination_bucket)
                    .key(&key)
                    .version_id(v)
                    .send()
                    .await
                    .unwrap();
                let source = head
                    .metadata()
                    .and_then(|m| m.get("replicator-source-version-id").cloned())
                    .unwrap_or_default();
                let index = versions.iter().position(|(id, _)| *id == source);
                made_from.push((head.last_modified().map(|t| t.to_string()), index));
            }
            panic!(
                "round {round}: {} replica versions for {} source versions; made from source versions {made_from:?} (jobs in order {order:?})",
                written.len(),
                versions.len()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_event_copier_and_the_sync_on_the_same_keys_converge_without_duplicates() {
    let world = World::new().await;
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let mut objects = Vec::new();
    for i in 0..120 {
        let key = format!("both/{i:03}");
        let body = bytes(64 + i, i as u64);
        objects.push((key.clone(), world.put(&key, body.clone()).await, body));
    }
    // Events for every object, some twice, shuffled.
    let mut events: Vec<usize> = (0..objects.len())
        .chain((0..objects.len()).filter(|i| i % 3 == 0))
        .collect();
    events.shuffle(&mut rng);
    let handler = world.handler().await;
    let syncer = world.syncer().await;
    let sync = tokio::spawn(async move {
        syncer
            .run(replicator_core::sync::SyncRequest {
                run_id: "race".into(),
                ..Default::default()
            })
            .await
    });
    let copier = {
        let handler = handler.clone();
        let events: Vec<_> = events
            .iter()
            .map(|&i| s3_event(&world, &objects[i].0, &objects[i].1, objects[i].2.len()))
            .collect();
        tokio::spawn(async move {
            for chunk in events.chunks(8) {
                let runs = chunk.iter().map(|e| handler.handle(e.clone()));
                for r in futures::future::join_all(runs).await {
                    r.expect("every event succeeds");
                }
            }
        })
    };
    copier.await.expect("no panic");
    let report = sync.await.expect("no panic").expect("sync runs");
    assert_eq!(report.failed, 0, "{report:?}");
    for (key, version, body) in &objects {
        world.assert_replica(key, body).await;
        assert_eq!(&replica_source_version(&world, key).await, version);
        assert_eq!(
            world.replica_versions(key).await.len(),
            1,
            "{key} was written more than once"
        );
    }
}
