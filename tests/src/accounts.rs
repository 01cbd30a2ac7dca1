//! A three-account world: the source account and two destination accounts, each with its
//! own role, KMS key and versioned bucket, and the event copier configured for both through
//! REPLICATION_RULES.
//!
//! The first destination is [`World`]'s own (account 222222222222); the second is account
//! [`SECOND_ACCOUNT`], reached through [`SECOND_ROLE`] with the same ExternalId. Its bucket's
//! name starts with `multi-dst-`: the policy proof does not evaluate it yet (it renders one
//! destination per world) and says so.

use std::collections::HashMap;

use aws_config::SdkConfig;
use event_copier::Handler;
use replicator_core::sync::{SyncConfig, Syncer};
use replicator_core::{Config, Fleet};
use serde_json::{json, Value};

use crate::world::{
    acting_as, create_bucket, create_destination_role, create_key, s3_client, unique,
};
use crate::{World, DESTINATION_ACCOUNT, DESTINATION_ROLE, EXTERNAL_ID, REGION};

pub const SECOND_ACCOUNT: &str = "333333333333";
pub const SECOND_ROLE: &str = "arn:aws:iam::333333333333:role/replicator-destination";

/// One destination account as the tests see it.
pub struct Destination {
    pub sdk: SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub account: &'static str,
    pub role: &'static str,
    pub key_id: String,
    pub key_arn: String,
}

pub struct ThreeAccounts {
    /// The source and the first destination.
    pub world: World,
    pub first: Destination,
    pub second: Destination,
}

impl ThreeAccounts {
    pub async fn new() -> Self {
        Self::on(&crate::emulator().endpoint()).await
    }

    /// The three accounts on the emulator at `endpoint`.
    pub async fn on(endpoint: &str) -> Self {
        let mut world = World::on(endpoint).await;
        // The policy proof evaluates the first destination's requests against this world's
        // single-destination policies: they must grant what a delete marker rule does.
        world.set("REPLICATE_DELETES", "true");
        let first = Destination {
            sdk: world.destination_sdk.clone(),
            s3: world.dst.clone(),
            bucket: world.destination_bucket.clone(),
            account: DESTINATION_ACCOUNT,
            role: DESTINATION_ROLE,
            key_id: world.destination_key_id.clone(),
            key_arn: world.destination_key_arn.clone(),
        };
        let sdk = acting_as(&world.source_sdk, SECOND_ROLE).await;
        create_destination_role(&sdk).await;
        let s3 = s3_client(&sdk);
        let (key_id, key_arn) = create_key(&sdk, "second replica key").await;
        let default_key = create_key(&sdk, "second destination bucket default key")
            .await
            .1;
        let bucket = unique("multi-dst");
        create_bucket(&s3, &bucket, &default_key).await;
        let second = Destination {
            sdk,
            s3,
            bucket,
            account: SECOND_ACCOUNT,
            role: SECOND_ROLE,
            key_id,
            key_arn,
        };
        Self {
            world,
            first,
            second,
        }
    }

    /// A rule to `to` (streaming copies; `delete_markers` as DeleteMarkerReplication).
    pub fn rule(
        &self,
        id: &str,
        priority: u32,
        to: &Destination,
        filter: Value,
        delete_markers: bool,
    ) -> Value {
        let status = if delete_markers {
            "Enabled"
        } else {
            "Disabled"
        };
        json!({
            "ID": id, "Priority": priority, "Status": "Enabled", "Filter": filter,
            "DeleteMarkerReplication": {"Status": status},
            "Destination": {
                "Bucket": format!("arn:aws:s3:::{}", to.bucket),
                "Account": to.account,
                "EncryptionConfiguration": {"ReplicaKmsKeyID": to.key_arn},
                "FallbackReplicator": {"RoleArn": to.role, "ExternalId": EXTERNAL_ID,
                                       "ServerSideCopy": "off"}
            }
        })
    }

    /// A deployment's settings for `rules`: no single-destination variable.
    pub fn vars(&self, rules: &[Value]) -> HashMap<&'static str, String> {
        HashMap::from([
            ("SOURCE_BUCKET", self.world.source_bucket.clone()),
            ("REPLICATION_RULES", json!({ "Rules": rules }).to_string()),
            ("S3_FORCE_PATH_STYLE", "true".to_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", "three-accounts-test".to_owned()),
        ])
    }

    /// `replicator ARGS…` for a deployment of `rules`: its exit code and output.
    pub async fn cli(&self, args: &[&str], rules: &[Value]) -> (i32, String) {
        self.world.register();
        let mut argv = vec!["replicator".to_owned()];
        argv.extend(args.iter().map(|a| a.to_string()));
        for (k, v) in self.vars(rules) {
            if k != "AWS_LAMBDA_FUNCTION_NAME" {
                argv.push(format!("--{}", k.to_ascii_lowercase().replace('_', "-")));
                argv.push(v);
            }
        }
        let mut out = Vec::new();
        let code = replicator_cli::run(argv, Some(self.world.source_sdk.clone()), &mut out).await;
        (code, String::from_utf8(out).unwrap())
    }

    /// The engines a cold start builds for `rules`: one per enabled rule.
    pub async fn fleet(&self, rules: &[Value]) -> Fleet {
        self.world.register();
        let vars = self.vars(rules);
        let (set, configs) =
            Config::per_rule(|k| vars.get(k).cloned(), Some(&self.world.source_sdk))
                .await
                .expect("valid rules");
        Fleet::new(set, configs, &self.world.source_sdk).await
    }

    /// The event copier as its cold start builds it for `rules`.
    pub async fn handler(&self, rules: &[Value]) -> Handler {
        let fleet = self.fleet(rules).await;
        Handler::for_fleet(fleet, Some(REGION.to_owned()), "three-accounts-test")
    }

    /// The scheduled sync's engines as its cold start builds them for `rules`: a pass per
    /// rule, each keeping to the keys the rules route to it.
    pub async fn syncers(&self, rules: &[Value]) -> Vec<Syncer> {
        self.syncers_fanning_out(rules, None).await
    }

    /// [`ThreeAccounts::syncers`], sending their copies to the copier queue `queue`.
    pub async fn syncers_fanning_out(&self, rules: &[Value], queue: Option<&str>) -> Vec<Syncer> {
        let fleet = self.fleet(rules).await;
        let queue = queue.map(str::to_owned);
        let sync = SyncConfig::from_lookup(|k| queue.clone().filter(|_| k == "SYNC_QUEUE_URL"))
            .expect("sync settings");
        let sqs = queue.map(|_| aws_sdk_sqs::Client::new(&self.world.source_sdk));
        fleet
            .engines()
            .iter()
            .map(|engine| {
                Syncer::new(
                    engine.clone(),
                    sqs.clone(),
                    sync.clone(),
                    Some(REGION.to_owned()),
                )
                .for_rule_of(fleet.rules().clone())
            })
            .collect()
    }
}

impl Destination {
    /// The replica's bytes, and the KMS key it is encrypted with, when there is one.
    pub async fn replica(&self, key: &str) -> Option<(Vec<u8>, Option<String>)> {
        let got = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let got = match got {
            Ok(got) => got,
            Err(e) if format!("{e:?}").contains("NoSuchKey") => return None,
            Err(e) => panic!("GET s3://{}/{key}: {e:?}", self.bucket),
        };
        let kms = got.ssekms_key_id().map(str::to_owned);
        let body = got.body.collect().await.unwrap().into_bytes().to_vec();
        Some((body, kms))
    }

    /// Every version under `key` (delete markers included): (version id, is delete marker).
    pub async fn versions(&self, key: &str) -> Vec<(String, bool)> {
        let out = self
            .s3
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .await
            .unwrap();
        let mut all: Vec<(String, bool)> = out
            .versions()
            .iter()
            .filter(|v| v.key() == Some(key))
            .map(|v| (v.version_id().unwrap_or("null").to_owned(), false))
            .collect();
        all.extend(
            out.delete_markers()
                .iter()
                .filter(|m| m.key() == Some(key))
                .map(|m| (m.version_id().unwrap_or("null").to_owned(), true)),
        );
        all
    }

    /// The replica's storage class, as HEAD names it (`None` for STANDARD).
    pub async fn storage_class(&self, key: &str) -> Option<String> {
        let head = self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        head.storage_class().map(|c| c.as_str().to_owned())
    }
}
