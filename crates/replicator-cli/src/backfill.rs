//! `replicator copy` and `replicator sync`: backfills from a laptop or a CI job with the
//! Lambdas' exact semantics — a progress bar on a terminal, plain lines otherwise, a summary
//! table at the end.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use clap::ArgMatches;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use replicator_core::sync::{SyncConfig, SyncRequest, Syncer};
use replicator_core::{Clients, Config, ObjectRequest, Outcome, Replicator};

use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

/// A progress bar on a terminal, nothing otherwise (plain lines are printed per object).
fn progress(len: Option<u64>) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

pub(crate) async fn copy(
    sdk: &SdkConfig,
    config: Config,
    sub: &ArgMatches,
    out: &mut dyn Write,
) -> i32 {
    let mut keys: Vec<String> = sub
        .get_many::<String>("keys")
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if let Some(file) = sub.get_one::<String>("keys-file") {
        let read: Box<dyn BufRead> = if file == "-" {
            Box::new(std::io::BufReader::new(std::io::stdin()))
        } else {
            match std::fs::File::open(file) {
                Ok(f) => Box::new(std::io::BufReader::new(f)),
                Err(e) => {
                    let _ = writeln!(out, "cannot read --keys-file {file}: {e}");
                    return EXIT_USAGE;
                }
            }
        };
        keys.extend(read.lines().map_while(Result::ok).filter(|l| !l.is_empty()));
    }
    if keys.is_empty() {
        let _ = writeln!(out, "nothing to copy: give keys, or --keys-file");
        return EXIT_USAGE;
    }
    let version = sub.get_one::<String>("version-id").cloned();
    if version.is_some() && keys.len() != 1 {
        let _ = writeln!(out, "--version-id goes with exactly one key");
        return EXIT_USAGE;
    }
    let concurrency = config.transfer.copy_concurrency;
    let bucket = config.source.bucket.clone();
    let replicator = Replicator::new(config.clone(), Clients::new(sdk, &config).await);
    let bar = progress(Some(keys.len() as u64));
    let started = Instant::now();
    let results: Vec<(String, Result<Outcome, replicator_core::ReplicationError>)> =
        futures::stream::iter(keys)
            .map(|key| {
                let request = ObjectRequest::created(bucket.clone(), key.clone())
                    .with_version(version.clone());
                let replicator = &replicator;
                let bar = bar.clone();
                async move {
                    let result = replicator.replicate(&request).await;
                    if let Some(b) = &bar {
                        b.inc(1);
                    }
                    (key, result)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let (mut copied, mut skipped, mut failed, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    for (key, result) in &results {
        let line = match result {
            Ok(Outcome::Copied {
                bytes: b, method, ..
            }) => {
                copied += 1;
                bytes += b;
                format!("copied   {key} ({b} bytes, {method:?})")
            }
            Ok(Outcome::Skipped { reason }) => {
                skipped += 1;
                format!("skipped  {key} ({reason:?})")
            }
            Ok(Outcome::DeleteMarkerCreated { .. }) => format!("deleted  {key}"),
            Ok(Outcome::TagsReplicated { tags, .. }) => format!("tagged   {key} ({tags} tags)"),
            Ok(Outcome::LockReplicated { .. }) => {
                format!("locked   {key} (Object Lock as the source's)")
            }
            Ok(Outcome::RestoreRequested { tier, days, .. }) => {
                skipped += 1;
                format!("restore  {key} (archived; {tier} restore for {days} days requested, copied when it completes)")
            }
            Err(e) => {
                failed += 1;
                format!("FAILED   {key}: {e}")
            }
        };
        let _ = writeln!(out, "{line}");
    }
    summary(
        out,
        &[
            ("copied", copied),
            ("skipped", skipped),
            ("failed", failed),
            ("bytes", bytes),
        ],
        started,
    );
    if failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

pub(crate) fn summary(out: &mut dyn Write, rows: &[(&str, u64)], started: Instant) {
    let _ = writeln!(out, "\n+------------------+---------------+");
    for (name, value) in rows {
        let _ = writeln!(out, "| {name:<16} | {value:>13} |");
    }
    let _ = writeln!(
        out,
        "| {:<16} | {:>12.1}s |",
        "elapsed",
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(out, "+------------------+---------------+");
}

pub(crate) async fn sync(
    sdk: &SdkConfig,
    config: Config,
    sync_config: SyncConfig,
    sub: &ArgMatches,
    out: &mut dyn Write,
) -> i32 {
    let sqs = sync_config
        .queue_url
        .as_ref()
        .map(|_| aws_sdk_sqs_client(sdk));
    let replicator = Replicator::new(config.clone(), Clients::new(sdk, &config).await);
    let region = sdk.region().map(|r| r.to_string());
    let bar = progress(None);
    let mut syncer = Syncer::new(replicator, sqs, sync_config, region);
    if let Some(b) = bar.clone() {
        syncer = syncer.with_progress(Arc::new(move |key: &str| {
            b.inc(1);
            b.set_message(key.to_owned());
        }));
    }
    let started = Instant::now();
    let report = syncer
        .run(SyncRequest {
            prefix: sub.get_one::<String>("prefix").cloned(),
            dry_run: sub.get_flag("dry-run"),
            max_objects: sub.get_one::<u64>("max-objects").copied(),
            // A laptop or CI job has no Lambda deadline: a day.
            deadline: Some(Instant::now() + Duration::from_secs(24 * 3600)),
            run_id: format!("cli-{}", std::process::id()),
            // INVENTORY_MANIFEST (`--inventory-manifest`) makes it a pass from S3 Inventory.
            inventory: None,
        })
        .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(out, "sync failed: {e}");
            return EXIT_FAILED;
        }
    };
    for f in &report.failed_keys {
        let _ = writeln!(out, "FAILED   {}: {}", f.key, f.error);
    }
    if report.dry_run {
        for k in &report.would_copy {
            let _ = writeln!(out, "would copy {k}");
        }
    }
    for k in &report.destination_only_keys {
        let _ = writeln!(out, "destination only {k}");
    }
    let _ = writeln!(out, "delete phase: {}", report.delete_phase);
    if let Some(manifest) = &report.inventory_manifest {
        let _ = writeln!(
            out,
            "inventory {manifest}: {} rows read, {} selected",
            report.inventory_rows, report.inventory_selected
        );
    }
    summary(
        out,
        &[
            ("copied", report.copied),
            ("skipped", report.skipped),
            ("would copy", report.would_copy_count),
            ("failed", report.failed),
            ("destination only", report.destination_only),
            ("enqueued", report.enqueued),
            ("bytes", report.bytes),
            ("complete", u64::from(report.complete)),
        ],
        started,
    );
    if report.failed > 0 || report.busy {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

fn aws_sdk_sqs_client(sdk: &SdkConfig) -> replicator_core::sync::SqsClient {
    replicator_core::sync::SqsClient::new(sdk)
}
