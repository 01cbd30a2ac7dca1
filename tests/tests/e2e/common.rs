//! Helpers for driving the handler with the fixtures in `events/`.

use replicator_tests::{form_encode, World};
use serde_json::Value;

/// The direct S3 fixture, naming `key` at `version` with `size`.
pub fn s3_event(world: &World, key: &str, version: &str, size: usize) -> Value {
    let mut event = world.fixture("s3-object-created.json");
    let object = &mut event["Records"][0]["s3"]["object"];
    object["key"] = form_encode(key).into();
    object["versionId"] = version.into();
    object["size"] = size.into();
    event
}

/// The direct S3 event for `key` at `version` handled by a fresh copier: its answer, or the
/// invocation's failure.
pub async fn deliver(
    world: &World,
    key: &str,
    version: &str,
    size: usize,
) -> Result<Value, event_copier::InvocationFailed> {
    world
        .handler()
        .await
        .handle(s3_event(world, key, version, size))
        .await
}

/// The base64 CRC32C of `bytes`, as S3 reports it.
pub fn crc32c_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(crc32c::crc32c(bytes).to_be_bytes())
}
