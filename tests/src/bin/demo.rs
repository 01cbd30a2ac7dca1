//! The local demo: provisions two accounts on a fresh moto server, uploads objects, runs the
//! real `event-copier` binary under `cargo lambda watch` on an event of every trigger shape,
//! and verifies each replica independently (bytes, KMS key, metadata); then a rule set
//! replicating to two destination accounts. Exit code 1 on any FAIL. Run it with `./scripts/demo`.

#[path = "demo/two.rs"]
mod two;

use std::path::Path;
use std::process::ExitCode;

use replicator_tests::cargo_lambda::{function_env, LambdaWatch};
use replicator_tests::{bytes, form_encode, sha256, start_emulator, World};
use serde_json::Value;

struct Object {
    key: &'static str,
    trigger: &'static str,
    body: Vec<u8>,
}

fn write(dir: &Path, name: &str, event: &Value) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(event).unwrap()).unwrap();
    path
}

fn set_s3_object(v: &mut Value, key: &str, version: &str, size: usize) {
    let o = &mut v["Records"][0]["s3"]["object"];
    o["key"] = form_encode(key).into();
    o["versionId"] = version.into();
    o["size"] = size.into();
}

#[tokio::main]
async fn main() -> ExitCode {
    println!("== s3-fallback-replicator demo ==");
    let emulator = start_emulator();
    println!("moto server on {}", emulator.endpoint());
    let world = World::on(&emulator.endpoint()).await;
    println!(
        "source account      123456789012  bucket {}  (versioned, SSE-KMS {})",
        world.source_bucket, world.source_key_arn
    );
    println!(
        "destination account 222222222222  bucket {}  (versioned)",
        world.destination_bucket
    );
    println!(
        "destination role    {}  (assumed with an ExternalId)",
        replicator_tests::DESTINATION_ROLE
    );
    println!("replica KMS key     {}", world.destination_key_arn);

    let objects = vec![
        Object {
            key: "reports/2026 Q1/summary+final.csv",
            trigger: "S3 notification (direct)",
            body: bytes(1024, 1),
        },
        Object {
            key: "images/cat photo.jpg",
            trigger: "SQS",
            body: bytes(2048, 2),
        },
        Object {
            key: "data/résumé 2026.pdf",
            trigger: "SQS",
            body: bytes(4096, 3),
        },
        Object {
            key: "logs/app:1/2026-11-01 00:00.log",
            trigger: "SNS -> SQS",
            body: bytes(512, 4),
        },
        Object {
            key: "exports/daily report.json",
            trigger: "EventBridge",
            body: bytes(5, 5),
        },
        Object {
            key: "backfill/2019/a b+c.txt",
            trigger: "Batch Operations 1.0",
            body: bytes(300, 6),
        },
        Object {
            key: "videos/big.bin",
            trigger: "S3 notification (multipart)",
            body: bytes(20 * 1024 * 1024 + 7, 7),
        },
    ];
    let mut versions = Vec::new();
    for o in &objects {
        let v = world
            .put_with(o.key, o.body.clone(), |p| {
                p.metadata("demo", "yes").tagging("project=demo")
            })
            .await;
        versions.push(v);
    }
    println!("uploaded {} source objects", objects.len());
    // Objects that existed before replication was set up: no event will ever name them.
    let legacy: Vec<(String, Vec<u8>)> = (0..50u64)
        .map(|i| {
            (
                format!("legacy/{i:03} before the rule.dat"),
                bytes(700 + i as usize, 100 + i),
            )
        })
        .collect();
    for (key, body) in &legacy {
        world.put(key, body.clone()).await;
    }
    println!(
        "uploaded {} pre-existing objects that no event names (for the scheduled sync)",
        legacy.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let mut events = Vec::new();
    let mut direct = world.fixture("s3-object-created.json");
    set_s3_object(
        &mut direct,
        objects[0].key,
        &versions[0],
        objects[0].body.len(),
    );
    events.push(("S3 notification", write(dir.path(), "s3.json", &direct)));

    let mut sqs = world.fixture("sqs-s3-notification.json");
    for (i, idx) in [1usize, 2].iter().enumerate() {
        let mut body: Value =
            serde_json::from_str(sqs["Records"][i]["body"].as_str().unwrap()).unwrap();
        set_s3_object(
            &mut body,
            objects[*idx].key,
            &versions[*idx],
            objects[*idx].body.len(),
        );
        sqs["Records"][i]["body"] = body.to_string().into();
    }
    events.push(("SQS (2 messages)", write(dir.path(), "sqs.json", &sqs)));

    let mut sns = world.fixture("sqs-sns-s3-notification.json");
    let mut envelope: Value =
        serde_json::from_str(sns["Records"][0]["body"].as_str().unwrap()).unwrap();
    let mut inner: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    set_s3_object(
        &mut inner,
        objects[3].key,
        &versions[3],
        objects[3].body.len(),
    );
    envelope["Message"] = inner.to_string().into();
    sns["Records"][0]["body"] = envelope.to_string().into();
    events.push(("SNS -> SQS", write(dir.path(), "sns.json", &sns)));

    let mut eb = world.fixture("eventbridge-object-created.json");
    eb["detail"]["object"]["key"] = objects[4].key.into(); // EventBridge keys are not encoded
    eb["detail"]["object"]["version-id"] = versions[4].clone().into();
    events.push(("EventBridge", write(dir.path(), "eventbridge.json", &eb)));

    let mut batch = world.fixture("batch-operations-1.0.json");
    batch["tasks"][0]["s3Key"] = form_encode(objects[5].key).into();
    events.push(("Batch Operations", write(dir.path(), "batch.json", &batch)));

    let mut big = world.fixture("s3-object-created.json");
    set_s3_object(
        &mut big,
        objects[6].key,
        &versions[6],
        objects[6].body.len(),
    );
    events.push((
        "S3 notification (20 MiB)",
        write(dir.path(), "big.json", &big),
    ));
    events.push((
        "S3 notification (replayed)",
        write(dir.path(), "replay.json", &direct),
    ));

    println!(
        "\nstarting the event-copier binary under `cargo lambda watch` (the Lambda Runtime API)..."
    );
    let log = dir.path().join("watch.log");
    let env = function_env(&world);
    let watch = tokio::task::spawn_blocking(move || LambdaWatch::start(&env, &log))
        .await
        .unwrap();
    let mut failures = 0;
    for (name, file) in &events {
        let answer = {
            let file = file.clone();
            let watch = &watch;
            tokio::task::block_in_place(|| watch.invoke("event-copier", &file))
        };
        match answer {
            Ok(v) => println!(
                "cargo lambda invoke --data-file {:<18} {name:<28} -> {v}",
                file.file_name().unwrap().to_string_lossy()
            ),
            Err(e) => {
                failures += 1;
                println!("cargo lambda invoke {name}: FAILED: {e}");
            }
        }
    }

    println!("\nscheduled-sync: a dry run, then a real run (cargo lambda invoke scheduled-sync)");
    let dry = write(
        dir.path(),
        "schedule-dry-run.json",
        &world.fixture("schedule-dry-run.json"),
    );
    let sched = write(dir.path(), "schedule.json", &world.fixture("schedule.json"));
    for (name, file) in [
        ("dry run", &dry),
        ("scheduled run", &sched),
        ("second run", &sched),
    ] {
        let answer = tokio::task::block_in_place(|| watch.invoke("scheduled-sync", file));
        match answer {
            Ok(v) => println!(
                "  {name:<14} copied={} skipped={} would_copy={} destination_only={} failed={} complete={}",
                v["copied"], v["skipped"], v["would_copy_count"], v["destination_only"], v["failed"], v["complete"]
            ),
            Err(e) => {
                failures += 1;
                println!("  {name}: FAILED: {e}");
            }
        }
    }

    println!(
        "\nbeside native replication (the emulator's native-replication simulator acts as S3):"
    );
    let native = NativeDemo::start(&world).await;
    let native_events = native.events(&world, dir.path());
    for (name, file) in &native_events {
        let answer = tokio::task::block_in_place(|| watch.invoke("event-copier", file));
        match answer {
            Ok(v) => println!("  {name:<44} -> {v}"),
            Err(e) => {
                failures += 1;
                println!("  {name}: FAILED: {e}");
            }
        }
    }
    match tokio::task::block_in_place(|| watch.invoke("scheduled-sync", &sched)) {
        Ok(v) => println!(
            "  {:<44} -> copied={} skipped={} failed={} complete={}",
            "scheduled sync after native replication",
            v["copied"],
            v["skipped"],
            v["failed"],
            v["complete"]
        ),
        Err(e) => {
            failures += 1;
            println!("  scheduled sync: FAILED: {e}");
        }
    }
    drop(watch);

    println!(
        "\n{:<34} {:<28} {:>9}  {:<40} verdict",
        "replica", "trigger", "bytes", "KMS key"
    );
    for o in &objects {
        let verdict = verify(&world, o).await;
        let head = world
            .dst
            .head_object()
            .bucket(&world.destination_bucket)
            .key(o.key)
            .send()
            .await
            .ok();
        let kms = head.as_ref().and_then(|h| h.ssekms_key_id()).unwrap_or("-");
        let short_kms = kms.rsplit('/').next().unwrap_or(kms);
        match &verdict {
            Ok(()) => println!(
                "{:<34} {:<28} {:>9}  key/{:<36} PASS",
                o.key,
                o.trigger,
                o.body.len(),
                short_kms
            ),
            Err(why) => {
                failures += 1;
                println!(
                    "{:<34} {:<28} {:>9}  key/{:<36} FAIL: {why}",
                    o.key,
                    o.trigger,
                    o.body.len(),
                    short_kms
                )
            }
        }
    }
    let mut legacy_ok = 0;
    for (key, body) in &legacy {
        let ok = match world.replica_bytes(key).await {
            Some(got) => {
                let head = world.replica_head(key).await;
                sha256(&got) == sha256(body)
                    && head.ssekms_key_id() == Some(world.destination_key_arn.as_str())
            }
            None => false,
        };
        legacy_ok += usize::from(ok);
    }
    if legacy_ok == legacy.len() {
        println!(
            "{:<34} {:<28} {:>9}  {:<40} PASS",
            "legacy/* (50 objects)", "scheduled sync", "", "byte-identical, destination key"
        );
    } else {
        failures += 1;
        println!(
            "{:<34} {:<28} {:>9}  {:<40} FAIL: {} of {} replicated",
            "legacy/*",
            "scheduled sync",
            "",
            "",
            legacy_ok,
            legacy.len()
        );
    }
    let versions = world.replica_versions(objects[0].key).await.len();
    if versions == 1 {
        println!("\nreplayed event wrote nothing: 1 replica version            PASS");
    } else {
        failures += 1;
        println!("\nreplayed event: {versions} replica versions                FAIL");
    }
    failures += native.check(&world).await;
    failures += two::run(&emulator.endpoint(), dir.path()).await;
    println!("\n$ replicator doctor --copier-queue-arn …   (healthy setup)");
    let code = doctor(&world, &native.queue_arn).await;
    if code != 0 {
        failures += 1;
    }
    println!("\n$ replicator doctor   (after `aws kms disable-key` on the replica key)");
    aws_sdk_kms::Client::new(&world.destination_sdk)
        .disable_key()
        .key_id(&world.destination_key_id)
        .send()
        .await
        .expect("disable key");
    if doctor(&world, &native.queue_arn).await != 1 {
        failures += 1;
    }

    if failures == 0 {
        println!(
            "\nPASS: every object replicated, byte-identical, encrypted with the destination key; \
             a native replica left alone, a native failure healed; a rule set reaches two destination accounts; \
             doctor passes, then names the disabled key"
        );
        ExitCode::SUCCESS
    } else {
        println!("\nFAIL: {failures} problem(s)");
        ExitCode::FAILURE
    }
}

async fn verify(world: &World, o: &Object) -> Result<(), String> {
    let got = world.replica_bytes(o.key).await.ok_or("no replica")?;
    if sha256(&got) != sha256(&o.body) {
        return Err(format!("bytes differ ({} vs {})", got.len(), o.body.len()));
    }
    let head = world.replica_head(o.key).await;
    if head.ssekms_key_id() != Some(world.destination_key_arn.as_str()) {
        return Err(format!("KMS key {:?}", head.ssekms_key_id()));
    }
    if head
        .metadata()
        .and_then(|m| m.get("demo"))
        .map(String::as_str)
        != Some("yes")
    {
        return Err("user metadata lost".into());
    }
    Ok(())
}

/// Two objects beside native replication: one native replication COMPLETED (its replica
/// carries x-amz-replication-status REPLICA and the source's version id), one it FAILED (its
/// failure event goes to the copier through SQS).
struct NativeDemo {
    /// The copier's queue, which the source sends native failure events to.
    queue_arn: String,
    replicated: (&'static str, String),
    failed: (&'static str, String, Vec<u8>),
    failure_event: Value,
}

impl NativeDemo {
    async fn start(world: &World) -> NativeDemo {
        let replicated = "native/replicated by S3.csv";
        let failed = "native/failed by S3.csv";
        let replicated_version = world.put(replicated, bytes(900, 40)).await;
        let body = bytes(800, 41);
        let failed_version = world.put(failed, body.clone()).await;
        world.native_replication(replicated, &replicated_version, "COMPLETED", "");
        let failure_event = world.native_replication(
            failed,
            &failed_version,
            "FAILED",
            "DstPutObjectNotPermitted",
        )["event"]
            .clone();
        let queue_arn = native_configuration(world).await;
        println!(
            "  s3://{}: native rule demo-native to s3://{} with replication metrics; failure events to {queue_arn}",
            world.source_bucket, world.destination_bucket
        );
        println!(
            "  s3://{}/{replicated}: native replication COMPLETED",
            world.source_bucket
        );
        println!(
            "  s3://{}/{failed}: native replication FAILED (DstPutObjectNotPermitted)",
            world.source_bucket
        );
        NativeDemo {
            queue_arn,
            replicated: (replicated, replicated_version),
            failed: (failed, failed_version, body),
            failure_event,
        }
    }

    /// The completed object's ObjectCreated notification, and the failure event in SQS.
    fn events(&self, world: &World, dir: &Path) -> Vec<(&'static str, std::path::PathBuf)> {
        let mut created = world.fixture("s3-object-created.json");
        set_s3_object(&mut created, self.replicated.0, &self.replicated.1, 900);
        let mut sqs = world.fixture("sqs-s3-notification.json");
        let mut record = sqs["Records"][0].clone();
        record["body"] = self.failure_event.to_string().into();
        sqs["Records"] = Value::Array(vec![record]);
        vec![
            (
                "ObjectCreated of the natively replicated object",
                write(dir, "native-created.json", &created),
            ),
            (
                "OperationFailedReplication through SQS",
                write(dir, "native-failed.json", &sqs),
            ),
        ]
    }

    /// Prints a verdict for each object; the number of FAILs.
    async fn check(&self, world: &World) -> usize {
        let mut failures = 0;
        let key = self.replicated.0;
        let versions = world.replica_versions(key).await;
        let head = world.replica_head(key).await;
        let left_alone = versions.len() == 1
            && head.replication_status().map(|s| s.as_str()) == Some("REPLICA")
            && head.version_id() == Some(self.replicated.1.as_str());
        failures += usize::from(!left_alone);
        println!(
            "{:<34} {:<28} {:>9}  {:<40} {}",
            key,
            "native replica (REPLICA)",
            900,
            "left alone: 1 version, never rewritten",
            if left_alone { "PASS" } else { "FAIL" }
        );
        let (key, _, body) = &self.failed;
        let healed = match world.replica_bytes(key).await {
            Some(got) => {
                sha256(&got) == sha256(body)
                    && world.replica_head(key).await.ssekms_key_id()
                        == Some(world.destination_key_arn.as_str())
            }
            None => false,
        };
        failures += usize::from(!healed);
        println!(
            "{:<34} {:<28} {:>9}  {:<40} {}",
            key,
            "native failure event",
            body.len(),
            "healed: byte-identical, destination key",
            if healed { "PASS" } else { "FAIL" }
        );
        failures
    }
}

/// A native replication rule to the destination with replication metrics on, and the
/// source's failure events sent to a queue standing for the copier's; the queue's ARN.
async fn native_configuration(world: &World) -> String {
    use replicator_tests::native::rule;
    world
        .put_native_rules(vec![rule(
            "demo-native",
            1,
            "native/",
            &world.destination_bucket,
            true,
        )])
        .await;
    let url = aws_sdk_sqs::Client::new(&world.source_sdk)
        .create_queue()
        .queue_name("demo-copier")
        .send()
        .await
        .expect("create the queue")
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let arn = world.queue_arn(&url).await;
    world.send_failure_events_to(Some(&arn)).await;
    arn
}

/// Runs `replicator doctor` with this world's configuration and prints its output.
async fn doctor(world: &World, queue_arn: &str) -> i32 {
    let argv = world.cli_args(&[
        "doctor",
        "--function-role-arn",
        replicator_tests::FUNCTION_ROLE,
        "--copier-queue-arn",
        queue_arn,
    ]);
    let mut out = Vec::new();
    let code = replicator_cli::run(argv, Some(world.source_sdk.clone()), &mut out).await;
    print!("{}", String::from_utf8_lossy(&out));
    println!("exit code {code}");
    code
}
