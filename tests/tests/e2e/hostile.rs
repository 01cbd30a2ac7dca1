//! Hostile and malformed events (`tests/corpus/hostile/`, plus a few generated here): each
//! fails on its own — an invocation error, a batch item failure or a failed Batch
//! Operations task for every bad record — without a panic, and nothing reaches the
//! destination. The keys they name exist in the source bucket, so a decoder that let one
//! through would write a replica and fail the test.

use std::collections::BTreeSet;

use event_copier::Handler;
use replicator_tests::{bytes, workspace, World, FIXTURE_BUCKET};
use serde_json::{json, Value};

/// The key most hostile events name; it exists in the source.
const BAIT: &str = "bait.txt";

/// Runs the handler on its own task so a panic is caught and named instead of aborting.
async fn handle(handler: &Handler, event: Value) -> Result<Value, event_copier::InvocationFailed> {
    let handler = handler.clone();
    match tokio::spawn(async move { handler.handle(event).await }).await {
        Ok(result) => result,
        Err(e) => panic!("the handler panicked: {e}"),
    }
}

/// Checks that every unit of `event` (record, message, task) was reported as failed.
fn assert_all_failed(
    name: &str,
    event: &Value,
    result: Result<Value, event_copier::InvocationFailed>,
) {
    match result {
        Err(e) => {
            assert_eq!(e.failed, e.total, "{name}: only some records failed: {e}");
            assert!(
                !e.retryable,
                "{name}: a malformed event is not worth retrying: {e}"
            );
            assert!(!e.first.is_empty(), "{name}: the error says nothing");
        }
        Ok(out) if out.get("batchItemFailures").is_some() => {
            let reported: BTreeSet<&str> = out["batchItemFailures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["itemIdentifier"].as_str().unwrap())
                .collect();
            let sent: BTreeSet<&str> = event["Records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["messageId"].as_str().unwrap_or(""))
                .collect();
            assert_eq!(reported, sent, "{name}: {out}");
        }
        Ok(out) if out.get("results").is_some() => {
            let results = out["results"].as_array().unwrap();
            assert_eq!(
                results.len(),
                event["tasks"].as_array().unwrap().len(),
                "{name}: {out}"
            );
            for r in results {
                assert_eq!(r["resultCode"], "PermanentFailure", "{name}: {out}");
                assert!(
                    r["resultString"].as_str().is_some_and(|s| !s.is_empty()),
                    "{name}: {out}"
                );
            }
        }
        Ok(out) => panic!("{name}: accepted as if nothing were wrong: {out}"),
    }
}

fn corpus() -> Vec<(String, String)> {
    let dir = workspace().join("tests/corpus/hostile");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn hostile_events_fail_alone_and_write_nothing() {
    let world = World::new().await;
    world.put(BAIT, bytes(100, 1)).await;
    world.put("reports/bait.txt", bytes(100, 2)).await;
    let handler = world.handler().await;

    let corpus = corpus();
    assert!(corpus.len() >= 30, "the corpus has {} events", corpus.len());
    for (name, text) in &corpus {
        let event: Value =
            serde_json::from_str(&text.replace(FIXTURE_BUCKET, &world.source_bucket))
                .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        let result = handle(&handler, event.clone()).await;
        assert_all_failed(name, &event, result);
    }

    // Generated: more records than any trigger sends, and nesting deeper than the parser
    // follows (inside an SQS body, where this code parses it).
    let record = {
        let mut e = world.fixture("s3-object-created.json");
        e["Records"][0]["s3"]["object"]["key"] = BAIT.into();
        e["Records"][0].take()
    };
    let huge = json!({ "Records": vec![record; replicator_core::event::MAX_RECORDS + 1] });
    assert_all_failed(
        "10,001 records",
        &huge,
        handle(&handler, huge.clone()).await,
    );
    let mut deep = world.fixture("sqs-s3-notification.json");
    deep["Records"][0]["body"] = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into();
    let deep_records = deep["Records"].as_array_mut().unwrap();
    deep_records.truncate(1);
    assert_all_failed("deep nesting", &deep, handle(&handler, deep.clone()).await);

    assert_eq!(
        world.all_destination_versions().await,
        Vec::<(String, String)>::new(),
        "a hostile event wrote to the destination"
    );

    // The control: a well-formed event for the same key does copy it, so the bait works.
    let mut good = world.fixture("s3-object-created.json");
    good["Records"][0]["s3"]["object"]["key"] = BAIT.into();
    good["Records"][0]["s3"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("versionId");
    handle(&handler, good)
        .await
        .expect("the well-formed event copies");
    world.assert_replica(BAIT, &bytes(100, 1)).await;
}

/// A key S3 stores literally but path-normalising clients would rewrite is refused by the
/// scheduled sync too, and reported as failed rather than skipped.
#[tokio::test]
async fn sync_reports_keys_with_dot_segments_as_failed() {
    let world = World::new().await;
    let raw = world
        .src
        .put_object()
        .bucket(&world.source_bucket)
        .key("a/../b.txt")
        .body(bytes(10, 3).into())
        .send()
        .await;
    raw.expect("S3 stores a key with a '..' segment literally");
    world.put("plain.txt", bytes(10, 4)).await;
    let report = world
        .syncer()
        .await
        .run(replicator_core::sync::SyncRequest {
            run_id: "dots".into(),
            ..Default::default()
        })
        .await
        .expect("sync runs");
    assert_eq!((report.copied, report.failed), (1, 1), "{report:?}");
    world.assert_replica("plain.txt", &bytes(10, 4)).await;
    assert_eq!(world.replica_bytes("b.txt").await, None);
    assert_eq!(world.replica_bytes("a/../b.txt").await, None);
}
