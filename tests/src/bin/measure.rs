//! Measurements through the emulator, reported with wall time and the process's peak
//! resident memory during the measured work alone (the kernel's counter is reset first):
//!
//! - `measure object 256` — replicate one 256 MiB object (multipart);
//! - `measure sync 1000` — a scheduled-sync run over 1,000 small objects.
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
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    let emulator = start_emulator();
    let world = World::on(&emulator.endpoint()).await;
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
}
