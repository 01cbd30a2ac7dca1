//! Restoring an archived object version on a [`Bucket`] (RestoreObject).

use aws_sdk_s3::types::{GlacierJobParameters, RestoreRequest, Tier};

use super::Bucket;
use crate::config::{Restore, RestoreTier};
use crate::error::{error_code, ReplicationError};

/// What RestoreObject answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restoring {
    /// Started (202), or a restored copy is there already (200).
    Started,
    /// 409 RestoreAlreadyInProgress: someone started it before.
    AlreadyInProgress,
}

impl Bucket {
    /// Starts a restore of one version (`days` readable, retrieved in `tier`).
    pub async fn restore(
        &self,
        key: &str,
        version_id: Option<&str>,
        restore: Restore,
    ) -> Result<Restoring, ReplicationError> {
        let tier = match restore.tier {
            RestoreTier::Bulk => Tier::Bulk,
            RestoreTier::Standard => Tier::Standard,
            RestoreTier::Expedited => Tier::Expedited,
        };
        let request = RestoreRequest::builder()
            .days(restore.days)
            .glacier_job_parameters(
                GlacierJobParameters::builder()
                    .tier(tier)
                    .build()
                    .expect("the tier is set"),
            )
            .build();
        let answer = self
            .client
            .restore_object()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .restore_request(request)
            .send()
            .await;
        match answer {
            Ok(_) => Ok(Restoring::Started),
            Err(e) if error_code(&e) == Some("RestoreAlreadyInProgress") => {
                Ok(Restoring::AlreadyInProgress)
            }
            Err(e) => Err(self.fail("s3:RestoreObject", key, e)),
        }
    }
}
