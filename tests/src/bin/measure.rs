//! Measurements through the emulator, reported with wall time and the process's peak
//! resident memory during the measured work alone (the kernel's counter is reset first):
//!
//! - `measure object 256 [VAR=VALUE…]` — replicate one 256 MiB object (multipart), with
//!   the replicator's settings given (`PART_SIZE=64MiB MAX_IN_FLIGHT_BYTES=8MiB`);
//! - `measure burst 16 15 [VAR=VALUE…]` — one SQS batch naming 16 objects of 15 MiB, each
//!   notification claiming a size of 1 byte (a rewrite after the event, or a forged size),
//!   copied at once;
//! - `measure sync 1000` — a scheduled-sync run over 1,000 small objects;
//! - `measure inventory 200000 1` — a heal-mode pass over an S3 Inventory of 200,000 rows
//!   (gzip CSV, 100,000 rows a data file), 1% of them FAILED (selected: a HEAD of the replica
//!   and a copy attempt of an object that is gone), the rest COMPLETED;
//! - `measure init BINARY 15` — a function's cold start: exec to its first Runtime API poll;
//! - `measure raw get|put BUCKET COUNT SIZE` — the server's raw throughput (the benchmark).
//!
//! `cargo run --release -p replicator-tests --bin measure -- object 256`

use std::time::Instant;

use replicator_core::{ObjectRequest, Outcome};
use replicator_tests::{sha256, start_emulator, World};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets the kernel's peak-RSS counter for this process (Linux: clear_refs 5).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    let settings = |from: usize| -> Vec<(String, String)> {
        args.iter()
            .skip(from)
            .filter_map(|a| a.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    match args.first().map(String::as_str) {
        Some("object") => object(if n == 0 { 256 } else { n }, settings(2)).await,
        Some("burst") if args.len() >= 3 => {
            burst(n, args[2].parse().expect("MiB"), settings(3)).await
        }
        Some("sync") => sync(if n == 0 { 1000 } else { n }).await,
        Some("inventory") => {
            let percent = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
            inventory(if n == 0 { 200_000 } else { n }, percent, settings(3)).await
        }
        Some("raw") if args.len() == 5 => raw(&args[1..]).await,
        Some("init") if args.len() == 3 => init(&args[1], args[2].parse().expect("runs")),
        _ => {
            eprintln!("usage: measure object MIB [VAR=VALUE…] | measure burst COUNT MIB [VAR=VALUE…] | measure sync COUNT | measure inventory ROWS PERCENT_FAILED [VAR=VALUE…] | measure init BINARY RUNS | measure raw get|put BUCKET COUNT SIZE");
            std::process::exit(2);
        }
    }
}

/// A world on its own emulator, with the replicator's `settings` on top of the defaults.
async fn world_with(settings: &[(String, String)]) -> (replicator_tests::Emulator, World) {
    let emulator = start_emulator();
    let mut world = World::on(&emulator.endpoint()).await;
    for (k, v) in settings {
        let k: &'static str = Box::leak(k.clone().into_boxed_str());
        world.set(k, v.clone());
    }
    (emulator, world)
}

/// What tests read off the last line: the peak RSS the measured work added, and the most
/// object bytes the engine held.
fn report_memory(before_kib: u64, peak_kib: u64, replicator: &replicator_core::Replicator) {
    println!(
        "peak_rss_delta_kib={} bytes_held_peak={}",
        peak_kib.saturating_sub(before_kib),
        replicator.peak_bytes_held()
    );
}

/// Replicates one object of `mib` MiB (multipart) through the emulator.
async fn object(mib: usize, settings: Vec<(String, String)>) {
    let (_emulator, world) = world_with(&settings).await;
    let digest = {
        let body = replicator_tests::bytes(mib * 1024 * 1024, 42);
        let digest = sha256(&body);
        world.put("measure/object.bin", body).await;
        digest
    };
    let replicator = world.replicator().await;
    let request = ObjectRequest::created(world.source_bucket.clone(), "measure/object.bin");
    reset_peak_rss();
    let before = peak_rss_kib();
    let started = Instant::now();
    let outcome = replicator.replicate(&request).await.expect("replicate");
    let elapsed = started.elapsed();
    let peak = peak_rss_kib();
    let Outcome::Copied { bytes, method, .. } = outcome else {
        panic!("not copied: {outcome:?}")
    };
    let replica = world
        .replica_bytes("measure/object.bin")
        .await
        .expect("replica");
    assert_eq!(sha256(&replica), digest, "replica bytes differ");
    println!(
        "replicated {mib} MiB ({bytes} bytes, {method:?}) in {:.2} s = {:.1} MiB/s; peak RSS during the copy {} MiB (baseline before it {} MiB); replica verified",
        elapsed.as_secs_f64(),
        mib as f64 / elapsed.as_secs_f64(),
        peak / 1024,
        before / 1024,
    );
    report_memory(before, peak, &replicator);
}

/// One S3 event naming `count` objects of `mib` MiB, each record claiming 1 byte, handled
/// with every object copied at once.
async fn burst(count: usize, mib: usize, settings: Vec<(String, String)>) {
    let (_emulator, world) = world_with(&settings).await;
    let mut records = Vec::new();
    for i in 0..count {
        let key = format!("burst/{i:03}.bin");
        let version = world
            .put(&key, replicator_tests::bytes(mib * 1024 * 1024, i as u64))
            .await;
        let mut event = world.fixture("s3-object-created.json");
        let object = &mut event["Records"][0]["s3"]["object"];
        object["key"] = key.clone().into();
        object["versionId"] = version.into();
        object["size"] = 1.into();
        // One S3 notification per SQS message, as S3 sends them.
        let mut message = world.fixture("sqs-s3-notification.json")["Records"][0].clone();
        message["messageId"] = format!("m-{i}").into();
        message["body"] = event.to_string().into();
        records.push(message);
    }
    let handler = world.handler().await;
    reset_peak_rss();
    let before = peak_rss_kib();
    let started = Instant::now();
    let out = handler
        .handle(serde_json::json!({ "Records": records }))
        .await
        .expect("handled");
    let peak = peak_rss_kib();
    assert_eq!(out["batchItemFailures"], serde_json::json!([]), "{out}");
    println!(
        "copied {count} objects of {mib} MiB whose events claimed 1 byte in {:.2} s; peak RSS during the burst {} MiB above the {} MiB before it",
        started.elapsed().as_secs_f64(),
        peak.saturating_sub(before) / 1024,
        before / 1024,
    );
    report_memory(before, peak, handler.replicator());
}

async fn raw(args: &[String]) {
    let (op, bucket) = (args[0].as_str(), args[1].clone());
    let count: usize = args[2].parse().expect("count");
    let size: usize = args[3].parse().expect("size");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    if op == "put" {
        let _ = s3.create_bucket().bucket(&bucket).send().await;
    }
    let body = bytes::Bytes::from(replicator_tests::bytes(size, 7));
    let whole = raw_whole(&s3, op, &bucket, count, &body).await;
    let mut secs = whole;
    if count == 1 && size > 16 * 1024 * 1024 {
        let parallel = raw_parallel(&s3, op, &bucket, &body).await;
        println!("  one object: whole {whole:.2} s, in parallel 8 MiB parts {parallel:.2} s");
        secs = secs.min(parallel);
    }
    println!(
        "raw {op}: {count} x {size} bytes in {secs:.2} s = {:.1} MiB/s, {:.0} objects/s",
        (count * size) as f64 / 1048576.0 / secs,
        count as f64 / secs
    );
}

/// Seconds to GET or PUT every object whole, 64 at a time.
async fn raw_whole(
    s3: &aws_sdk_s3::Client,
    op: &str,
    bucket: &str,
    count: usize,
    body: &bytes::Bytes,
) -> f64 {
    use futures::StreamExt;
    let started = Instant::now();
    futures::stream::iter(0..count)
        .for_each_concurrent(64, |i| async move {
            let key = format!("data/{i:06}.bin");
            if op == "get" {
                let out = s3
                    .get_object()
                    .bucket(bucket)
                    .key(&key)
                    .send()
                    .await
                    .expect("get");
                let mut stream = out.body;
                while let Some(chunk) = stream.next().await {
                    chunk.expect("body");
                }
            } else {
                s3.put_object()
                    .bucket(bucket)
                    .key(&key)
                    .body(body.clone().into())
                    .send()
                    .await
                    .expect("put");
            }
        })
        .await;
    started.elapsed().as_secs_f64()
}

/// Seconds to GET object 0 with ranged GETs, or PUT it as a multipart upload, 8 MiB parts,
/// 16 at a time.
async fn raw_parallel(s3: &aws_sdk_s3::Client, op: &str, bucket: &str, body: &bytes::Bytes) -> f64 {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    use futures::StreamExt;
    const PART: usize = 8 * 1024 * 1024;
    let key = "data/000000.bin";
    let parts = body.len().div_ceil(PART);
    let started = Instant::now();
    if op == "get" {
        futures::stream::iter(0..parts)
            .for_each_concurrent(16, |n| async move {
                let end = ((n + 1) * PART).min(body.len()) - 1;
                let out = s3
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .range(format!("bytes={}-{end}", n * PART))
                    .send()
                    .await
                    .expect("ranged get");
                let mut stream = out.body;
                while let Some(chunk) = stream.next().await {
                    chunk.expect("body");
                }
            })
            .await;
    } else {
        let upload = s3
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("create upload");
        let id = upload.upload_id().expect("upload id");
        let done: Vec<CompletedPart> = futures::stream::iter(0..parts)
            .map(|n| async move {
                let part = body.slice(n * PART..((n + 1) * PART).min(body.len()));
                let out = s3
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(id)
                    .part_number(n as i32 + 1)
                    .body(part.into())
                    .send()
                    .await
                    .expect("upload part");
                CompletedPart::builder()
                    .part_number(n as i32 + 1)
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    .build()
            })
            .buffered(16)
            .collect()
            .await;
        s3.complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await
            .expect("complete upload");
    }
    started.elapsed().as_secs_f64()
}

/// A function's cold start, as Lambda's Init phase sees it: from exec until the binary,
/// configuration read and both clients built, first asks a stub Runtime API for an
/// invocation. `runs` fresh processes; prints the median and the range.
fn init(binary: &str, runs: usize) {
    use std::io::Read;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let runtime_api = listener.local_addr().unwrap().to_string();
        let started = Instant::now();
        let mut child = std::process::Command::new(binary)
            .env_clear()
            .envs([
                ("AWS_LAMBDA_RUNTIME_API", runtime_api.as_str()),
                ("AWS_LAMBDA_FUNCTION_NAME", "init-measure"),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", "init-measure"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
                ("SOURCE_BUCKET", "source-bucket"),
                ("DESTINATION_BUCKET", "destination-bucket"),
                (
                    "DESTINATION_ROLE_ARN",
                    "arn:aws:iam::222222222222:role/replicator-destination",
                ),
                (
                    "DESTINATION_KMS_KEY_ID",
                    "arn:aws:kms:us-east-1:222222222222:key/00000000-0000-0000-0000-000000000000",
                ),
                ("RUST_LOG", "warn"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        let (mut poll, _) = listener
            .accept()
            .expect("the function polls the Runtime API");
        let elapsed = started.elapsed();
        let mut head = [0u8; 256];
        let n = poll.read(&mut head).unwrap_or(0);
        let head = String::from_utf8_lossy(&head[..n]);
        assert!(head.contains("/runtime/invocation/next"), "{head}");
        let _ = child.kill();
        let _ = child.wait();
        times.push(elapsed.as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "init of {binary}: median {:.1} ms, range {:.1}-{:.1} ms, n = {runs}",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
}

/// One sync run over `count` small objects.
async fn sync(count: usize) {
    use futures::StreamExt;
    let emulator = start_emulator();
    let world = World::on(&emulator.endpoint()).await;
    futures::stream::iter(0..count)
        .for_each_concurrent(32, |i| {
            let world = &world;
            async move {
                world
                    .put(
                        &format!("small/{i:06}"),
                        replicator_tests::bytes(4096, i as u64),
                    )
                    .await;
            }
        })
        .await;
    let mut world = world;
    world.overrides.insert("SYNC_CONCURRENCY", "64".into());
    let syncer = world.syncer().await;
    reset_peak_rss();
    let started = Instant::now();
    let report = syncer
        .run(replicator_core::sync::SyncRequest {
            run_id: "measure".into(),
            ..Default::default()
        })
        .await
        .expect("sync");
    let elapsed = started.elapsed();
    let peak = peak_rss_kib();
    assert!(
        report.complete && report.copied == count as u64 && report.failed == 0,
        "{report:?}"
    );
    println!(
        "synced {count} objects of 4 KiB in {:.2} s = {:.0} objects/s (SYNC_CONCURRENCY=64, streaming); peak RSS during the run {} MiB",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        peak / 1024
    );
}

/// A heal-mode inventory pass over `rows` rows, `percent` of them FAILED.
async fn inventory(rows: usize, percent: usize, settings: Vec<(String, String)>) {
    use replicator_tests::inventory::{self, InventoryRow};
    let mut settings = settings;
    settings.push(("NATIVE_REPLICATION".into(), "heal".into()));
    let (_emulator, world) = world_with(&settings).await;
    let bucket = "measure-inventory";
    inventory::create_bucket(&world.src, bucket).await;
    let location = format!("inv/{}/daily/", world.source_bucket);
    let files: Vec<Vec<InventoryRow>> = (0..rows)
        .map(|i| {
            let status = if i % 100 < percent {
                "FAILED"
            } else {
                "COMPLETED"
            };
            InventoryRow::current(format!("rows/{i:09}"), format!("v{i}"), status)
        })
        .collect::<Vec<_>>()
        .chunks(100_000)
        .map(<[InventoryRow]>::to_vec)
        .collect();
    let count = files.len();
    inventory::publish(
        &world.src,
        bucket,
        &location,
        "2026-11-30T01-00Z",
        &world.source_bucket,
        &files,
        true,
    )
    .await;
    drop(files);
    let syncer = world.syncer().await;
    reset_peak_rss();
    let before = peak_rss_kib();
    let started = Instant::now();
    let report = syncer
        .run(replicator_core::sync::SyncRequest {
            run_id: "measure".into(),
            inventory: Some(replicator_core::sync::InventoryRequest {
                manifest: format!("s3://{bucket}/{location}"),
                destination_manifest: None,
            }),
            ..Default::default()
        })
        .await
        .expect("inventory pass");
    let elapsed = started.elapsed();
    let peak = peak_rss_kib();
    assert!(
        report.complete && report.inventory_rows == rows as u64 && report.failed == 0,
        "{report:?}"
    );
    println!(
        "inventory pass: {rows} rows in {count} data files ({} selected) in {:.2} s = {:.0} rows/s; peak RSS during the pass {} MiB above the {} MiB before it",
        report.inventory_selected,
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64(),
        peak.saturating_sub(before) / 1024,
        before / 1024,
    );
    report_memory(before, peak, syncer.replicator());
}
