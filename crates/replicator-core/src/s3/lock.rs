//! Object Lock on a [`Bucket`]: whether the bucket has it, and a version's retention and
//! legal hold set after it was written.

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{
    ObjectLockEnabled, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockRetention,
    ObjectLockRetentionMode,
};

use super::Bucket;
use crate::error::{classify, error_code, ReplicationError};
use crate::facts::LockSettings;

impl Bucket {
    /// Whether the bucket has Object Lock enabled (GetObjectLockConfiguration; a bucket
    /// without it answers ObjectLockConfigurationNotFoundError).
    pub async fn object_lock_enabled(&self) -> Result<bool, ReplicationError> {
        match self
            .client
            .get_object_lock_configuration()
            .bucket(&self.name)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .object_lock_configuration()
                .and_then(|c| c.object_lock_enabled())
                == Some(&ObjectLockEnabled::Enabled)),
            Err(e) if error_code(&e) == Some("ObjectLockConfigurationNotFoundError") => Ok(false),
            Err(e) => Err(classify(
                &self.request("s3:GetBucketObjectLockConfiguration", None),
                e,
            )),
        }
    }

    /// Sets one version's retention (PutObjectRetention) when `wanted` has one, never
    /// bypassing governance mode: S3 refuses to shorten or lift a retention without
    /// `s3:BypassGovernanceRetention`, which this replicator neither has nor asks for.
    pub async fn set_retention(
        &self,
        key: &str,
        version_id: Option<&str>,
        wanted: &LockSettings,
    ) -> Result<(), ReplicationError> {
        let (Some(mode), Some(until)) = (wanted.mode.as_deref(), wanted.retain_until_ms) else {
            return Ok(());
        };
        self.client
            .put_object_retention()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .retention(
                ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::from(mode))
                    .retain_until_date(DateTime::from_millis(until))
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(|e| self.fail("s3:PutObjectRetention", key, e))
    }

    /// Turns one version's legal hold on or off (PutObjectLegalHold).
    pub async fn set_legal_hold(
        &self,
        key: &str,
        version_id: Option<&str>,
        on: bool,
    ) -> Result<(), ReplicationError> {
        let status = if on {
            ObjectLockLegalHoldStatus::On
        } else {
            ObjectLockLegalHoldStatus::Off
        };
        self.client
            .put_object_legal_hold()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .send()
            .await
            .map(drop)
            .map_err(|e| self.fail("s3:PutObjectLegalHold", key, e))
    }
}
