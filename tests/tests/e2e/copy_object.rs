//! The copy itself, driven through direct S3 notifications.

use aws_sdk_s3::types::ChecksumMode;
use replicator_tests::{bytes, World};

use crate::common::{deliver, s3_event};

#[tokio::test]
async fn small_object_is_replicated_with_the_destination_key() {
    let world = World::new().await;
    let body = bytes(1000, 1);
    let version = world.put("plain.txt", body.clone()).await;
    let handler = world.handler().await;
    let out = handler
        .handle(s3_event(&world, "plain.txt", &version, body.len()))
        .await
        .unwrap();
    assert_eq!(out["copied"], 1, "{out}");
    assert_eq!(out["failed"], 0, "{out}");
    world.assert_replica("plain.txt", &body).await;
    // The replica was written with the source's own checksum (the SDK's CRC32), which S3
    // checked against the bytes.
    let head = world
        .dst
        .head_object()
        .bucket(&world.destination_bucket)
        .key("plain.txt")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    let source = world
        .src
        .head_object()
        .bucket(&world.source_bucket)
        .key("plain.txt")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert!(source.checksum_crc32().is_some());
    assert_eq!(head.checksum_crc32(), source.checksum_crc32());
    assert_eq!(head.checksum_crc32_c(), None);
    assert_eq!(head.bucket_key_enabled(), Some(true));
}

#[tokio::test]
async fn zero_byte_object() {
    let world = World::new().await;
    let version = world.put("empty", Vec::new()).await;
    let out = deliver(&world, "empty", &version, 0).await.unwrap();
    assert_eq!(out["copied"], 1, "{out}");
    world.assert_replica("empty", b"").await;
}

async fn put_rich(world: &World, key: &str, body: Vec<u8>) -> String {
    world
        .put_with(key, body, |p| {
            p.content_type("text/csv; charset=utf-8")
                .content_encoding("gzip")
                .content_disposition("attachment; filename=\"r.csv\"")
                .content_language("de-DE")
                .cache_control("max-age=60")
                .expires(aws_sdk_s3::primitives::DateTime::from_secs(1_900_000_000))
                .metadata("owner", "data team")
                .metadata("pipeline", "nightly")
                .tagging("classification=internal&cost%20center=42%2B1")
        })
        .await
}

async fn assert_rich_replica(world: &World, key: &str) {
    let head = world.replica_head(key).await;
    assert_eq!(head.content_type(), Some("text/csv; charset=utf-8"));
    assert_eq!(head.content_encoding(), Some("gzip"));
    assert_eq!(
        head.content_disposition(),
        Some("attachment; filename=\"r.csv\"")
    );
    assert_eq!(head.content_language(), Some("de-DE"));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    let expires = head.expires_string().and_then(|s| {
        aws_sdk_s3::primitives::DateTime::from_str(
            s,
            aws_sdk_s3::primitives::DateTimeFormat::HttpDate,
        )
        .ok()
    });
    assert_eq!(
        expires.map(|d| d.secs()),
        Some(1_900_000_000),
        "Expires kept"
    );
    let meta = head.metadata().unwrap();
    assert_eq!(meta["owner"], "data team");
    assert_eq!(meta["pipeline"], "nightly");
    assert!(
        meta.contains_key("replicator-source-version-id"),
        "provenance: {meta:?}"
    );
    assert_eq!(
        world.replica_tags(key).await,
        vec![
            ("classification".to_owned(), "internal".to_owned()),
            ("cost center".to_owned(), "42+1".to_owned())
        ]
    );
}

#[tokio::test]
async fn metadata_headers_and_tags_are_kept() {
    let world = World::new().await;
    let body = bytes(4096, 2);
    let version = put_rich(&world, "rich.csv", body.clone()).await;
    let out = deliver(&world, "rich.csv", &version, body.len())
        .await
        .unwrap();
    assert_eq!(out["copied"], 1, "{out}");
    world.assert_replica("rich.csv", &body).await;
    assert_rich_replica(&world, "rich.csv").await;
}

#[tokio::test]
async fn large_object_goes_multipart_and_keeps_metadata_and_tags() {
    let world = World::new().await;
    let body = bytes(17 * 1024 * 1024 + 123, 3);
    let version = put_rich(&world, "big/file.bin", body.clone()).await;
    let replicator = world.replicator().await;
    let request =
        replicator_core::ObjectRequest::created(world.source_bucket.clone(), "big/file.bin")
            .with_version(Some(version.clone()));
    let outcome = replicator.replicate(&request).await.unwrap();
    assert!(
        matches!(outcome, replicator_core::Outcome::Copied { method: replicator_core::Method::Multipart, bytes, .. } if bytes == body.len() as u64),
        "{outcome:?}"
    );
    world.assert_replica("big/file.bin", &body).await;
    assert_rich_replica(&world, "big/file.bin").await;
    // A multipart ETag ends with the part count: 17 MiB in 8 MiB parts is 3 parts.
    let etag = world
        .replica_head("big/file.bin")
        .await
        .e_tag()
        .unwrap()
        .to_owned();
    assert!(etag.trim_matches('"').ends_with("-3"), "{etag}");
    let uploads = world
        .dst
        .list_multipart_uploads()
        .bucket(&world.destination_bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "no upload left open");
}

#[tokio::test]
async fn awkward_keys_round_trip() {
    let world = World::new().await;
    let long = format!("long/{}", "k".repeat(1024 - 5));
    let keys = [
        "with space.txt",
        "plus+sign.txt",
        "percent%41literal.txt",
        "equals=and:colon.txt",
        "unicode/résumé ✓ 日本.txt",
        "ünïcødé+and space%2B.bin",
        "dots.../..hidden/.x./a..b",
        long.as_str(),
    ];
    let handler = world.handler().await;
    for (i, key) in keys.iter().enumerate() {
        let body = bytes(100 + i, 10 + i as u64);
        let version = world.put(key, body.clone()).await;
        let out = handler
            .handle(s3_event(&world, key, &version, body.len()))
            .await;
        let out = out.unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert_eq!(out["copied"], 1, "{key:?}: {out}");
        world.assert_replica(key, &body).await;
    }
}

#[tokio::test]
async fn replaying_an_event_writes_nothing() {
    let world = World::new().await;
    let body = bytes(10, 4);
    let version = world.put("idem", body.clone()).await;
    let handler = world.handler().await;
    let event = s3_event(&world, "idem", &version, body.len());
    assert_eq!(handler.handle(event.clone()).await.unwrap()["copied"], 1);
    for _ in 0..3 {
        let out = handler.handle(event.clone()).await.unwrap();
        assert_eq!(out["skipped"], 1, "{out}");
    }
    assert_eq!(world.replica_versions("idem").await.len(), 1);
}

#[tokio::test]
async fn an_older_version_arriving_late_never_replaces_a_newer_replica() {
    let world = World::new().await;
    let v1 = world.put("order", b"version one".to_vec()).await;
    // S3's Last-Modified has one-second resolution: make the two versions distinct in time
    // on one run, and equal on the other, so both decision paths are exercised.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let v2 = world.put("order", b"version two".to_vec()).await;
    let handler = world.handler().await;
    handler
        .handle(s3_event(&world, "order", &v2, 11))
        .await
        .unwrap();
    let out = handler
        .handle(s3_event(&world, "order", &v1, 11))
        .await
        .unwrap();
    assert_eq!(out["skipped"], 1, "{out}");
    world.assert_replica("order", b"version two").await;
    assert_eq!(world.replica_versions("order").await.len(), 1);

    // Same second: the source's own version order decides.
    let w1 = world.put("same-second", b"first".to_vec()).await;
    let w2 = world.put("same-second", b"second".to_vec()).await;
    let mut late = s3_event(&world, "same-second", &w1, 5);
    let mut early = s3_event(&world, "same-second", &w2, 6);
    // Without sequencers, so the version listing is what decides.
    late["Records"][0]["s3"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("sequencer");
    early["Records"][0]["s3"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("sequencer");
    handler.handle(early).await.unwrap();
    handler.handle(late).await.unwrap();
    world.assert_replica("same-second", b"second").await;
    assert_eq!(world.replica_versions("same-second").await.len(), 1);
}

#[tokio::test]
async fn a_newer_version_replaces_the_replica() {
    let world = World::new().await;
    let handler = world.handler().await;
    let v1 = world.put("update", b"old".to_vec()).await;
    handler
        .handle(s3_event(&world, "update", &v1, 3))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let v2 = world.put("update", b"new!".to_vec()).await;
    assert_eq!(
        handler
            .handle(s3_event(&world, "update", &v2, 4))
            .await
            .unwrap()["copied"],
        1
    );
    world.assert_replica("update", b"new!").await;
    assert_eq!(world.replica_versions("update").await.len(), 2);
}

#[tokio::test]
async fn a_foreign_bucket_is_refused_and_nothing_is_written() {
    let world = World::new().await;
    let version = world.put("secret", b"x".to_vec()).await;
    let mut event = s3_event(&world, "secret", &version, 1);
    event["Records"][0]["s3"]["bucket"]["name"] = "someone-elses-bucket".into();
    let err = world.handler().await.handle(event).await.unwrap_err();
    assert!(err.to_string().contains("someone-elses-bucket"), "{err}");
    assert!(err.to_string().contains("SOURCE_BUCKET"), "{err}");
    assert!(world.replica_bytes("secret").await.is_none());
}

#[tokio::test]
async fn a_vanished_source_is_skipped_not_failed() {
    let world = World::new().await;
    let version = world.put("gone", b"x".to_vec()).await;
    world
        .src
        .delete_object()
        .bucket(&world.source_bucket)
        .key("gone")
        .version_id(&version)
        .send()
        .await
        .unwrap();
    let out = deliver(&world, "gone", &version, 1).await.unwrap();
    assert_eq!(out["skipped"], 1, "{out}");
    assert!(world.replica_bytes("gone").await.is_none());
}

#[tokio::test]
async fn prefixes_scope_and_place_replicas() {
    let mut world = World::new().await;
    world.set("KEY_PREFIX", "in/");
    world.set("DESTINATION_PREFIX", "replica/");
    world.set("DESTINATION_STORAGE_CLASS", "STANDARD_IA");
    let handler = world.handler().await;
    let v_in = world.put("in/a", b"a".to_vec()).await;
    let v_out = world.put("out/b", b"b".to_vec()).await;
    assert_eq!(
        handler
            .handle(s3_event(&world, "in/a", &v_in, 1))
            .await
            .unwrap()["copied"],
        1
    );
    assert_eq!(
        handler
            .handle(s3_event(&world, "out/b", &v_out, 1))
            .await
            .unwrap()["skipped"],
        1
    );
    world.assert_replica("replica/in/a", b"a").await;
    assert!(world.replica_bytes("replica/out/b").await.is_none());
    assert!(world.replica_bytes("in/a").await.is_none());
    let head = world.replica_head("replica/in/a").await;
    assert_eq!(
        head.storage_class().map(|c| c.as_str()),
        Some("STANDARD_IA")
    );
}

#[tokio::test]
async fn tag_free_objects_need_no_tagging_request_and_get_no_tags() {
    let world = World::new().await;
    let version = world.put("untagged", b"u".to_vec()).await;
    deliver(&world, "untagged", &version, 1).await.unwrap();
    assert!(world.replica_tags("untagged").await.is_empty());
}
