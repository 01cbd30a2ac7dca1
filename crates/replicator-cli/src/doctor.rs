//! `replicator doctor`: every check a replication needs, in dependency order, each with the
//! cause and the exact fix when it fails.
//!
//! The order and the skip rules are data ([`PLAN`]): each check names the checks it needs,
//! and is skipped — with the first unmet need's reason — when one of them did not pass.
//! Each check is one function, in `doctor/` by what it looks at.

mod destination;
mod kms;
mod lock;
mod native;
mod probe;
mod report;
mod source;
mod trust;

use aws_config::SdkConfig;
use replicator_core::{Clients, Config};

pub use report::{Check, Status};

/// The checks, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Id {
    CallerIdentity,
    SourceBucket,
    SourceVersioning,
    SourceEncryption,
    SourceObject,
    SourceKey,
    NativeReplication,
    AssumeRole,
    DestinationTrust,
    DestinationBucket,
    DestinationVersioning,
    DestinationEncryption,
    DestinationObjectLock,
    DestinationKey,
    Probe,
}

struct Step {
    id: Id,
    name: &'static str,
    /// Checks that must have passed, each with the reason given when it did not.
    needs: &'static [(Id, &'static str)],
}

const NO_SOURCE: (Id, &str) = (Id::SourceBucket, "the source bucket is not reachable");
const NO_ROLE: (Id, &str) = (Id::AssumeRole, "the destination role cannot be assumed");
const NO_BUCKET: (Id, &str) = (
    Id::DestinationBucket,
    "the destination bucket is not reachable",
);
const NO_KEY: (Id, &str) = (Id::DestinationKey, "the key is not usable");
const NOT_USABLE: &str = "the bucket is not usable";

const PLAN: &[Step] = &[
    Step {
        id: Id::CallerIdentity,
        name: "caller identity",
        needs: &[],
    },
    Step {
        id: Id::SourceBucket,
        name: "source bucket reachable",
        needs: &[],
    },
    Step {
        id: Id::SourceVersioning,
        name: "source bucket versioning",
        needs: &[NO_SOURCE],
    },
    Step {
        id: Id::SourceEncryption,
        name: "source default encryption",
        needs: &[NO_SOURCE],
    },
    Step {
        id: Id::SourceObject,
        name: "source object readable",
        needs: &[NO_SOURCE],
    },
    Step {
        id: Id::SourceKey,
        name: "source KMS key usable",
        needs: &[NO_SOURCE],
    },
    Step {
        id: Id::NativeReplication,
        name: "native replication beside this replicator",
        needs: &[NO_SOURCE],
    },
    Step {
        id: Id::AssumeRole,
        name: "assume destination role",
        needs: &[],
    },
    Step {
        id: Id::DestinationTrust,
        name: "destination role trusts only the functions",
        needs: &[NO_ROLE],
    },
    Step {
        id: Id::DestinationBucket,
        name: "destination bucket owned by the expected account",
        needs: &[NO_ROLE],
    },
    Step {
        id: Id::DestinationVersioning,
        name: "destination bucket versioning",
        needs: &[NO_ROLE, NO_BUCKET],
    },
    Step {
        id: Id::DestinationEncryption,
        name: "destination default encryption",
        needs: &[NO_ROLE, NO_BUCKET],
    },
    Step {
        id: Id::DestinationObjectLock,
        name: "Object Lock on both buckets",
        needs: &[NO_ROLE, NO_BUCKET],
    },
    Step {
        id: Id::DestinationKey,
        name: "destination KMS key",
        needs: &[NO_ROLE],
    },
    // Also what proves the role may use the key: its grant is through S3 only.
    Step {
        id: Id::Probe,
        name: "probe write with the destination key",
        needs: &[NO_ROLE, NO_KEY, (Id::DestinationBucket, NOT_USABLE)],
    },
];

/// What the checks share, and what earlier checks learnt for later ones.
pub(crate) struct Context<'a> {
    pub sdk: &'a SdkConfig,
    pub config: &'a Config,
    pub clients: Clients,
    pub sts: aws_sdk_sts::Client,
    /// `arn:PARTITION:s3:::SOURCE_BUCKET` and the same for the destination.
    pub src_arn: String,
    pub dst_arn: String,
    /// The caller's ARN (caller identity).
    pub caller: Option<String>,
    /// The source bucket's default KMS key (source default encryption).
    pub source_key: Option<String>,
    /// The destination key's ARN (destination KMS key).
    pub key_arn: Option<String>,
    /// The region of the destination key, for its `kms:ViaService` condition.
    pub destination_region: String,
    /// The functions' role, when given (`--function-role-arn`): the one principal the
    /// destination role should trust besides the doctor.
    pub function_role_arn: Option<String>,
    /// The copier's queue, when given (`--copier-queue-arn`): where native replication's
    /// failure events should go.
    pub copier_queue_arn: Option<String>,
}

/// What the operator tells the doctor beyond the configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The functions' role: the one principal besides the doctor the destination role
    /// should trust.
    pub function_role_arn: Option<String>,
    /// The copier's queue, which native replication's failure events should reach.
    pub copier_queue_arn: Option<String>,
}

/// Runs every check; later ones are skipped when what they need failed.
pub async fn run(sdk: &SdkConfig, config: &Config, options: Options) -> Vec<Check> {
    let partition = config
        .destination
        .role_arn
        .split(':')
        .nth(1)
        .unwrap_or("aws")
        .to_owned();
    let mut cx = Context {
        sdk,
        config,
        clients: Clients::new(sdk, config).await,
        sts: aws_sdk_sts::Client::new(sdk),
        src_arn: format!("arn:{partition}:s3:::{}", config.source.bucket),
        dst_arn: format!("arn:{partition}:s3:::{}", config.destination.bucket),
        caller: None,
        source_key: None,
        key_arn: None,
        destination_region: config
            .destination
            .kms_key_id
            .split(':')
            .nth(3)
            .map(str::to_owned)
            .or_else(|| config.destination.region.clone())
            .or_else(|| sdk.region().map(|r| r.to_string()))
            .unwrap_or_default(),
        function_role_arn: options.function_role_arn,
        copier_queue_arn: options.copier_queue_arn,
    };
    let mut passed = Vec::new();
    let mut checks = Vec::new();
    for step in PLAN {
        let check = match step.needs.iter().find(|(need, _)| !passed.contains(need)) {
            Some((_, because)) => Check::skipped(step.name, because),
            None => Check::from_verdict(step.name, one(step.id, &mut cx).await),
        };
        if matches!(check.status, Status::Pass | Status::Warn) {
            passed.push(step.id);
        }
        checks.push(check);
    }
    checks
}

async fn one(id: Id, cx: &mut Context<'_>) -> report::Verdict {
    match id {
        Id::CallerIdentity => source::caller_identity(cx).await,
        Id::SourceBucket => source::bucket(cx).await,
        Id::SourceVersioning => source::versioning(cx).await,
        Id::SourceEncryption => source::encryption(cx).await,
        Id::SourceObject => source::object(cx).await,
        Id::SourceKey => source::key(cx).await,
        Id::NativeReplication => native::replication(cx).await,
        Id::AssumeRole => destination::assume_role(cx).await,
        Id::DestinationTrust => trust::check(cx).await,
        Id::DestinationBucket => destination::bucket(cx).await,
        Id::DestinationVersioning => destination::versioning(cx).await,
        Id::DestinationEncryption => destination::encryption(cx).await,
        Id::DestinationObjectLock => lock::check(cx).await,
        Id::DestinationKey => kms::describe(cx).await,
        Id::Probe => probe::write_read_delete(cx).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_need_comes_earlier_in_the_plan() {
        for (i, step) in PLAN.iter().enumerate() {
            for (need, _) in step.needs {
                let at = PLAN.iter().position(|s| s.id == *need).unwrap();
                assert!(at < i, "{} needs a later check", step.name);
            }
        }
    }
}
