//! DESTINATION_STORAGE_CLASS=SOURCE: each replica in its source version's class, on the
//! streaming and the server-side path, single part and multipart; a fixed class for every
//! replica otherwise.

use aws_sdk_s3::types::StorageClass;
use replicator_tests::{bytes, World};

/// The replica's class as HEAD names it (S3 names none for STANDARD).
async fn replica_class(world: &World, key: &str) -> StorageClass {
    world
        .replica_head(key)
        .await
        .storage_class()
        .cloned()
        .unwrap_or(StorageClass::Standard)
}

#[tokio::test]
async fn source_keeps_each_objects_class_on_every_path() {
    let classes = [
        StorageClass::Standard,
        StorageClass::StandardIa,
        StorageClass::OnezoneIa,
        StorageClass::IntelligentTiering,
        StorageClass::GlacierIr,
    ];
    for mode in ["off", "auto"] {
        let mut world = World::new().await;
        world.set("DESTINATION_STORAGE_CLASS", "SOURCE");
        world.set("SERVER_SIDE_COPY", mode);
        world.set("MULTIPART_THRESHOLD", "5MiB");
        world.set("PART_SIZE", "5MiB");
        world.set("SERVER_SIDE_SINGLE_COPY_MAX", "16MiB");
        let replicator = world.replicator().await;
        for (i, class) in classes.iter().enumerate() {
            // Every other one above the multipart threshold.
            let size = if i % 2 == 0 { 700 } else { 17 * 1024 * 1024 };
            let key = format!("classes/{mode}/{}", class.as_str());
            let body = bytes(size, i as u64);
            world
                .put_with(&key, body.clone(), |p| p.storage_class(class.clone()))
                .await;
            replicator
                .replicate(&world.request(&key))
                .await
                .unwrap_or_else(|e| panic!("{mode} {class:?}: {e}"));
            world.assert_replica(&key, &body).await;
            assert_eq!(&replica_class(&world, &key).await, class, "{mode} {size}");
        }
    }
}

#[tokio::test]
async fn a_fixed_class_applies_to_every_replica_whatever_the_sources() {
    let mut world = World::new().await;
    world.set("DESTINATION_STORAGE_CLASS", "STANDARD_IA");
    world
        .put_with("fixed/a", bytes(100, 1), |p| {
            p.storage_class(StorageClass::OnezoneIa)
        })
        .await;
    world.put("fixed/b", bytes(100, 2)).await;
    let replicator = world.replicator().await;
    for key in ["fixed/a", "fixed/b"] {
        replicator.replicate(&world.request(key)).await.unwrap();
        assert_eq!(replica_class(&world, key).await, StorageClass::StandardIa);
    }
}
