//! Replays every input the fuzzers once crashed on (`scripts/fuzz` files them under
//! `tests/corpus/fuzz-regressions/<target>/`), and the hostile-event corpus, through the same
//! invariants the fuzz targets check.

use std::path::Path;

fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn fuzz_findings_and_hostile_events_keep_their_invariants() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let hostile = inputs(&root.join("hostile"));
    assert!(hostile.len() >= 30, "{} hostile events", hostile.len());
    for (name, data) in hostile
        .iter()
        .chain(&inputs(&root.join("fuzz-regressions/event_payload")))
    {
        if std::panic::catch_unwind(|| replicator_core::fuzz::event_payload(data)).is_err() {
            panic!("{name}: event decoding broke an invariant");
        }
    }
    for (name, data) in inputs(&root.join("fuzz-regressions/event_key")) {
        if std::panic::catch_unwind(|| replicator_core::fuzz::event_key(&data)).is_err() {
            panic!("{name}: key decoding broke an invariant");
        }
    }
}
