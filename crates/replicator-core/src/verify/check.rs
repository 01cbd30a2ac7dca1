//! One key of the merge-join, checked: what the listings already prove (a missing replica
//! needs no request), otherwise a HEAD of each side with checksum mode on — at once — and,
//! when asked, both sides' tags and a deep comparison; then the pure classifier, and with
//! `--repair` a copy by the engine and a second check of what it left.

use tracing::warn;

use super::classify::{classify, Expected, TagPair, Verdict};
use super::deep::{self, Side};
use super::facts::ObjectFacts;
use super::{Checked, Class, Finding, Options, Verifier};
use crate::error::ReplicationError;
use crate::outcome::Outcome;
use crate::request::ObjectRequest;
use crate::sync::plan::SyncAction;

/// What one check read and concluded.
struct Seen {
    verdict: Verdict,
    source: Option<ObjectFacts>,
    replica: Option<ObjectFacts>,
}

impl Verifier {
    pub(super) async fn check(&self, action: SyncAction, options: Options) -> Checked {
        let (key, seen) = match action {
            SyncAction::Missing(o) => {
                let verdict = classify(
                    Some(&ObjectFacts {
                        size: o.size,
                        ..Default::default()
                    }),
                    None,
                    None,
                    None,
                    &self.expected(&o.key),
                );
                let seen = Seen {
                    verdict,
                    source: Some(ObjectFacts {
                        size: o.size,
                        etag: o.etag.clone(),
                        last_modified: o.last_modified,
                        ..Default::default()
                    }),
                    replica: None,
                };
                (o.key, Ok(seen))
            }
            SyncAction::DestinationOnly(o) => {
                let seen = self.check_replica_only(&o.key).await;
                (o.key, seen)
            }
            SyncAction::Changed(o) | SyncAction::Check(o) => {
                let seen = self.check_pair(&o.key, options).await;
                (o.key, seen)
            }
        };
        let seen = match seen {
            Ok(seen) => seen,
            Err(e) => return unchecked(key, &e),
        };
        if options.repair && seen.verdict.class.is_repairable() {
            return self.repair(key, seen, options).await;
        }
        row(key, seen)
    }

    fn expected(&self, key: &str) -> Expected {
        Expected {
            source: format!("{}/{key}", self.replicator.config().source.bucket),
            kms_key_arn: self.kms_key_arn.clone(),
        }
    }

    async fn check_replica_only(&self, key: &str) -> Result<Seen, ReplicationError> {
        let r = &self.replicator;
        let dest_key = r.config().destination_key(key);
        let replica = r
            .destination()
            .head_with_checksums(&dest_key, None)
            .await?
            .map(|h| ObjectFacts::from_head(&h));
        let Some(replica) = replica else {
            // Gone since the listing: nothing at either side any more.
            return Ok(Seen {
                verdict: classify(None, None, None, None, &self.expected(key)),
                source: None,
                replica: None,
            });
        };
        // The source may have appeared since the listing.
        if r.source().head(key, None).await?.is_some() {
            return self.check_pair(key, Options::default()).await;
        }
        Ok(Seen {
            verdict: classify(None, Some(&replica), None, None, &self.expected(key)),
            source: None,
            replica: Some(replica),
        })
    }

    async fn check_pair(&self, key: &str, options: Options) -> Result<Seen, ReplicationError> {
        let r = &self.replicator;
        let dest_key = r.config().destination_key(key);
        let (source, replica) = futures::join!(
            r.source().head_with_checksums(key, None),
            r.destination().head_with_checksums(&dest_key, None)
        );
        let source = source?.map(|h| ObjectFacts::from_head(&h));
        let replica = replica?.map(|h| ObjectFacts::from_head(&h));
        let (Some(s), Some(rep)) = (&source, &replica) else {
            let verdict = classify(
                source.as_ref(),
                replica.as_ref(),
                None,
                None,
                &self.expected(key),
            );
            return Ok(Seen {
                verdict,
                source,
                replica,
            });
        };
        let tags = if options.tags() && (s.tag_count > 0 || rep.tag_count > 0) {
            let (a, b) = futures::join!(
                r.source().tags(key, s.version_id.as_deref()),
                r.destination().tags(&dest_key, rep.version_id.as_deref())
            );
            let (mut source, mut replica) = (a?, b?);
            source.sort();
            replica.sort();
            Some(TagPair { source, replica })
        } else {
            None
        };
        // A replica under another key is wrong-key already, and reading it whole would need
        // that key, which the destination role is not granted.
        let readable = super::classify::wrong_key(rep, &self.kms_key_arn).is_none();
        let deep = if options.deep && s.size == rep.size && readable {
            let source_side = Side {
                bucket: r.source(),
                key,
                version_id: s.version_id.as_deref(),
                etag: &s.etag,
            };
            let replica_side = Side {
                bucket: r.destination(),
                key: &dest_key,
                version_id: rep.version_id.as_deref(),
                etag: &rep.etag,
            };
            Some(deep::compare(source_side, replica_side, s.size, &self.deep_in_flight).await?)
        } else {
            None
        };
        let verdict = classify(
            Some(s),
            Some(rep),
            tags.as_ref(),
            deep.as_ref(),
            &self.expected(key),
        );
        Ok(Seen {
            verdict,
            source,
            replica,
        })
    }

    /// Copies the object again with the engine (replacing a corrupt or wrong-key replica
    /// whatever its provenance says), then checks what is there now.
    async fn repair(&self, key: String, seen: Seen, options: Options) -> Checked {
        let r = &self.replicator;
        let found = seen.verdict.class;
        let request = ObjectRequest::created(r.config().source.bucket.clone(), key.clone());
        let result = match (&seen.replica, found) {
            (Some(replica), Class::Corrupt | Class::WrongKey) => {
                r.replace_bad(&request, &replica.etag).await
            }
            _ => r.replicate(&request).await,
        };
        let repair = match result {
            Ok(Outcome::Copied { bytes, .. }) => format!("copied {bytes} bytes"),
            Ok(Outcome::LockReplicated { .. }) => "Object Lock set as the source's".to_owned(),
            Ok(other) => format!("not copied: {other:?}"),
            Err(e) => {
                warn!(key = %key, error = %e, "repair failed");
                format!("failed: {e}")
            }
        };
        let mut checked = match self.check_pair(&key, options).await {
            Ok(again) => row(key, again),
            Err(e) => unchecked(key, &e),
        };
        checked.found = Some(found);
        checked.repair = Some(repair);
        checked
    }
}

fn row(key: String, seen: Seen) -> Checked {
    let Seen {
        verdict,
        source,
        replica,
    } = seen;
    let current = matches!(
        verdict.class,
        Class::Ok
            | Class::Corrupt
            | Class::WrongKey
            | Class::LockDrift
            | Class::MetadataDrift
            | Class::TagDrift
            | Class::Unverifiable
    );
    let lag_seconds = match (&source, &replica) {
        (Some(s), Some(r)) if current => Some(r.last_modified - s.last_modified),
        _ => None,
    };
    Checked {
        key,
        class: verdict.class,
        found: None,
        repair: None,
        findings: verdict.findings,
        checksum: verdict.proof,
        size: source.as_ref().or(replica.as_ref()).map_or(0, |f| f.size),
        source_version: source.and_then(|s| s.version_id),
        replica_version: replica.and_then(|r| r.version_id),
        lag_seconds,
    }
}

/// A key whose check failed (access denied, a 5xx after retries): nothing proves it.
fn unchecked(key: String, e: &ReplicationError) -> Checked {
    warn!(key = %key, error = %e, "could not verify");
    Checked {
        key,
        class: Class::Unverifiable,
        found: None,
        repair: None,
        findings: vec![Finding {
            class: Class::Unverifiable,
            detail: format!("could not check: {e}"),
        }],
        checksum: None,
        size: 0,
        source_version: None,
        replica_version: None,
        lag_seconds: None,
    }
}
