//! A destination inventory, merge-joined with the source's rows so that replicas need no
//! HEAD where the inventory tells: a key it lacks is missing, a native replica of the same
//! version is up to date. The join needs both sides in key order; S3 does not document
//! that its data files are sorted, so the order is checked as the rows go by, and the first
//! key out of order ends the join: from there on every replica is checked with a HEAD.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tracing::warn;

use super::rows::{Entry, Row};
use crate::error::ReplicationError;
use crate::facts::NativeStatus;

type Rows = Pin<Box<dyn Stream<Item = Result<Entry, ReplicationError>> + Send>>;

/// What the destination inventory says of a replica key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No current replica.
    Missing,
    /// A native replica of this version id.
    NativeReplica(Option<String>),
    /// A current object: only a HEAD can tell whose and of what.
    Present,
    /// The inventory cannot tell (it is out of key order, or failed to read).
    Unknown,
}

pub struct DestinationIndex {
    rows: Rows,
    prefix: String,
    head: Option<Row>,
    last_row: Option<String>,
    last_asked: Option<String>,
    joined: bool,
}

impl DestinationIndex {
    /// Over the destination inventory's current rows, replica keys under `prefix`.
    pub fn new(rows: Rows, prefix: String) -> Self {
        Self {
            rows,
            prefix,
            head: None,
            last_row: None,
            last_asked: None,
            joined: true,
        }
    }

    fn stop(&mut self, why: &str) -> Found {
        if self.joined {
            warn!("{why}; replicas are checked with a HEAD from here on");
            self.joined = false;
        }
        Found::Unknown
    }

    /// The replica of `source_key`, as the destination inventory has it. Keys must be asked
    /// for in ascending order.
    pub async fn find(&mut self, source_key: &str) -> Found {
        if !self.joined {
            return Found::Unknown;
        }
        if self
            .last_asked
            .as_deref()
            .is_some_and(|last| last > source_key)
        {
            return self.stop("the source inventory is not in key order");
        }
        self.last_asked = Some(source_key.to_owned());
        let wanted = format!("{}{source_key}", self.prefix);
        loop {
            if self.head.is_none() {
                match self.rows.next().await {
                    None => return Found::Missing,
                    Some(Err(e)) => {
                        warn!(error = %e, "the destination inventory could not be read");
                        return self.stop("the destination inventory failed");
                    }
                    // A key this replicator refuses is no replica it could have written.
                    Some(Ok(Entry::Refused { .. })) => continue,
                    Some(Ok(Entry::Row(row))) => {
                        if self
                            .last_row
                            .as_deref()
                            .is_some_and(|last| last > row.key.as_str())
                        {
                            return self.stop("the destination inventory is not in key order");
                        }
                        self.last_row = Some(row.key.clone());
                        if row.latest {
                            self.head = Some(row);
                        }
                        continue;
                    }
                }
            }
            let head = self.head.as_ref().expect("read above");
            match head.key.as_str().cmp(wanted.as_str()) {
                std::cmp::Ordering::Less => self.head = None,
                std::cmp::Ordering::Greater => return Found::Missing,
                std::cmp::Ordering::Equal => {
                    let head = self.head.take().expect("read above");
                    return if head.delete_marker {
                        Found::Missing
                    } else if head.native == Some(NativeStatus::Replica) {
                        Found::NativeReplica(head.version_id)
                    } else {
                        Found::Present
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, native: bool) -> Result<Entry, ReplicationError> {
        Ok(Entry::Row(Row {
            key: key.into(),
            version_id: Some(format!("v-{key}")),
            latest: true,
            delete_marker: false,
            size: 1,
            last_modified: 1,
            etag: String::new(),
            native: native.then_some(NativeStatus::Replica),
        }))
    }

    fn index(rows: Vec<Result<Entry, ReplicationError>>) -> DestinationIndex {
        DestinationIndex::new(Box::pin(futures::stream::iter(rows)), "p/".into())
    }

    #[tokio::test]
    async fn a_sorted_inventory_tells_missing_present_and_native() {
        let mut i = index(vec![row("p/a", false), row("p/c", true), row("p/d", false)]);
        assert_eq!(i.find("a").await, Found::Present);
        assert_eq!(i.find("b").await, Found::Missing);
        assert_eq!(
            i.find("c").await,
            Found::NativeReplica(Some("v-p/c".into()))
        );
        assert_eq!(i.find("e").await, Found::Missing);
    }

    #[tokio::test]
    async fn rows_out_of_order_end_the_join() {
        let mut i = index(vec![
            row("p/b", false),
            row("p/a", false),
            row("p/c", false),
        ]);
        assert_eq!(i.find("c").await, Found::Unknown);
        assert_eq!(i.find("d").await, Found::Unknown);
        let mut i = index(vec![row("p/a", false), row("p/b", false)]);
        assert_eq!(i.find("b").await, Found::Present);
        assert_eq!(i.find("a").await, Found::Unknown, "asked out of order");
    }
}
