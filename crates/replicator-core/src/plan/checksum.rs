//! Which checksum a replica is written with. Pure.
//!
//! A replica carries its source version's own full-object checksum when the source has one,
//! so that S3 checks the replica's bytes against the source's (a byte changed on the way is
//! refused, BadDigest) and a HEAD of each side with checksum mode on proves them equal
//! without a download ("Checking object integrity", S3 User Guide). A single PUT sends the
//! source's value with its algorithm; a multipart upload is created with that algorithm and
//! type FULL_OBJECT — possible for the CRCs only — and completed with the value; a
//! server-side CopyObject asks for the same algorithm. Where the source has none, or its
//! algorithm cannot be a multipart upload's full-object checksum, CHECKSUM_ALGORITHM.

use aws_sdk_s3::types::ChecksumAlgorithm;

use crate::facts::FullChecksum;

/// How one replica write is checksummed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaChecksum {
    /// The algorithm of the write (and of each part).
    pub algorithm: ChecksumAlgorithm,
    /// The source's full-object value S3 must find in the replica: sent with a PUT or a
    /// multipart completion (type FULL_OBJECT); `None` for CHECKSUM_ALGORITHM's own.
    pub full: Option<FullChecksum>,
}

/// The algorithms a multipart upload can carry as a full-object checksum.
pub fn full_object_multipart(algorithm: &ChecksumAlgorithm) -> bool {
    matches!(
        algorithm,
        ChecksumAlgorithm::Crc64Nvme | ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32C
    )
}

/// The checksum of a replica of a source version whose full-object checksum is `source`,
/// written in parts (`multipart`, streamed or copied) or in one request.
pub fn replica_checksum(
    source: Option<&FullChecksum>,
    multipart: bool,
    default: ChecksumAlgorithm,
) -> ReplicaChecksum {
    match source {
        Some(c) if !multipart || full_object_multipart(&c.algorithm) => ReplicaChecksum {
            algorithm: c.algorithm.clone(),
            full: Some(c.clone()),
        },
        _ => ReplicaChecksum {
            algorithm: default,
            full: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(algorithm: ChecksumAlgorithm) -> FullChecksum {
        FullChecksum {
            algorithm,
            value: "AAAAAAAAAAA=".into(),
        }
    }

    #[test]
    fn the_sources_own_checksum_when_it_has_one() {
        for multipart in [false, true] {
            let c = replica_checksum(
                Some(&full(ChecksumAlgorithm::Crc64Nvme)),
                multipart,
                ChecksumAlgorithm::Crc32C,
            );
            assert_eq!(c.algorithm, ChecksumAlgorithm::Crc64Nvme);
            assert_eq!(c.full, Some(full(ChecksumAlgorithm::Crc64Nvme)));
        }
    }

    #[test]
    fn a_sha_checksum_rides_a_single_put_but_not_a_multipart_upload() {
        let sha = full(ChecksumAlgorithm::Sha256);
        let single = replica_checksum(Some(&sha), false, ChecksumAlgorithm::Crc32C);
        assert_eq!(single.full, Some(sha.clone()));
        let parts = replica_checksum(Some(&sha), true, ChecksumAlgorithm::Crc32C);
        assert_eq!(
            (parts.algorithm, parts.full),
            (ChecksumAlgorithm::Crc32C, None)
        );
    }

    #[test]
    fn no_source_checksum_keeps_the_configured_algorithm() {
        let c = replica_checksum(None, true, ChecksumAlgorithm::Sha1);
        assert_eq!((c.algorithm, c.full), (ChecksumAlgorithm::Sha1, None));
    }

    #[test]
    fn composite_and_multipart_answers_are_not_full_object_checksums() {
        use aws_sdk_s3::types::ChecksumType;
        let none = [
            (ChecksumAlgorithm::Crc64Nvme, None),
            (ChecksumAlgorithm::Crc32C, Some("abc=-3")),
            (ChecksumAlgorithm::Crc32, None),
            (ChecksumAlgorithm::Sha256, None),
            (ChecksumAlgorithm::Sha1, None),
        ];
        assert_eq!(FullChecksum::from_answer(Some("\"e-3\""), None, none), None);
        let one = || {
            [
                (ChecksumAlgorithm::Crc64Nvme, Some("nv==")),
                (ChecksumAlgorithm::Crc32C, None),
                (ChecksumAlgorithm::Crc32, Some("c32=")),
                (ChecksumAlgorithm::Sha256, None),
                (ChecksumAlgorithm::Sha1, None),
            ]
        };
        let got =
            FullChecksum::from_answer(Some("\"e-2\""), Some(&ChecksumType::FullObject), one());
        assert_eq!(got.unwrap().algorithm, ChecksumAlgorithm::Crc64Nvme);
        assert_eq!(
            FullChecksum::from_answer(Some("\"e-2\""), Some(&ChecksumType::Composite), one()),
            None
        );
        assert_eq!(
            FullChecksum::from_answer(Some("\"e-2\""), None, one()),
            None
        );
        assert!(FullChecksum::from_answer(Some("\"e\""), None, one()).is_some());
    }
}
