//! The totals of a verification, in constant memory whatever the bucket's size: objects
//! and bytes per class, problems by top-level prefix (the first few hundred prefixes), the
//! replication lag as a histogram, repairs, and up to a fixed number of problem rows for a
//! report. The CLI's summary, the HTML report and the audit's summary all read one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Checked, Class};

/// Distinct top-level prefixes counted by name; the rest are counted together.
pub const MAX_PREFIXES: usize = 200;
/// The name problems under further prefixes are counted under.
pub const OTHER_PREFIXES: &str = "(other prefixes)";

/// Upper bounds (seconds, exclusive) of the lag histogram's buckets; the last is open.
pub const LAG_BUCKETS: [(i64, &str); 8] = [
    (1, "< 1 s"),
    (10, "1–10 s"),
    (60, "10 s–1 min"),
    (600, "1–10 min"),
    (3600, "10 min–1 h"),
    (86_400, "1 h–1 day"),
    (604_800, "1–7 days"),
    (i64::MAX, "≥ 7 days"),
];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Keys checked (source objects, extras and foreign objects).
    pub objects: u64,
    /// Bytes of the source objects checked.
    pub bytes: u64,
    pub classes: BTreeMap<Class, u64>,
    /// Problems (see [`Class::is_problem`]) by top-level prefix.
    pub problems_by_prefix: BTreeMap<String, u64>,
    /// Objects per [`LAG_BUCKETS`] bucket.
    pub lag: Vec<u64>,
    /// Objects `--repair` copied that are no longer problems, and those still problems.
    pub repaired: u64,
    pub repair_failed: u64,
    /// Rows of objects that are not ok (or were repaired) kept for a report, up to `keep`;
    /// how many more there were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Checked>,
    #[serde(default)]
    pub problems_not_kept: u64,
    #[serde(default)]
    pub keep: usize,
}

impl Tally {
    /// A tally that keeps up to `keep` problem rows (0 for counts only).
    pub fn keeping(keep: usize) -> Self {
        Self {
            keep,
            lag: vec![0; LAG_BUCKETS.len()],
            ..Self::default()
        }
    }

    pub fn add(&mut self, c: &Checked) {
        self.objects += 1;
        if !matches!(c.class, Class::Extra | Class::Foreign) {
            self.bytes += c.size;
        }
        *self.classes.entry(c.class).or_default() += 1;
        if let Some(lag) = c.lag_seconds {
            if self.lag.len() != LAG_BUCKETS.len() {
                self.lag = vec![0; LAG_BUCKETS.len()];
            }
            let bucket = LAG_BUCKETS
                .iter()
                .position(|(bound, _)| lag < *bound)
                .unwrap_or(LAG_BUCKETS.len() - 1);
            self.lag[bucket] += 1;
        }
        if c.found.is_some() {
            if c.class.is_problem() {
                self.repair_failed += 1;
            } else {
                self.repaired += 1;
            }
        }
        if c.class != Class::Ok || c.found.is_some() {
            if self.problems.len() < self.keep {
                self.problems.push(c.clone());
            } else {
                self.problems_not_kept += 1;
            }
        }
        if !c.class.is_problem() {
            return;
        }
        let top = top_level_prefix(&c.key);
        let name = if self.problems_by_prefix.contains_key(top)
            || self.problems_by_prefix.len() < MAX_PREFIXES
        {
            top
        } else {
            OTHER_PREFIXES
        };
        *self.problems_by_prefix.entry(name.to_owned()).or_default() += 1;
    }

    /// Adds another tally's counts (the audit's runs of one pass).
    pub fn merge(&mut self, other: &Tally) {
        self.objects += other.objects;
        self.bytes += other.bytes;
        for (class, n) in &other.classes {
            *self.classes.entry(*class).or_default() += n;
        }
        for (prefix, n) in &other.problems_by_prefix {
            *self.problems_by_prefix.entry(prefix.clone()).or_default() += n;
        }
        self.lag.resize(LAG_BUCKETS.len(), 0);
        for (i, n) in other.lag.iter().enumerate().take(LAG_BUCKETS.len()) {
            self.lag[i] += n;
        }
        self.repaired += other.repaired;
        self.repair_failed += other.repair_failed;
        self.problems_not_kept += other.problems_not_kept + other.problems.len() as u64;
    }

    pub fn count(&self, class: Class) -> u64 {
        self.classes.get(&class).copied().unwrap_or(0)
    }

    /// Source objects with a problem.
    pub fn problem_count(&self) -> u64 {
        self.classes
            .iter()
            .filter(|(c, _)| c.is_problem())
            .map(|(_, n)| n)
            .sum()
    }
}

/// `logs/2024/a` → `logs/`; a key without `/` → `(top level)`.
pub fn top_level_prefix(key: &str) -> &str {
    match key.find('/') {
        Some(i) => &key[..=i],
        None => "(top level)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(key: &str, class: Class, lag: Option<i64>) -> Checked {
        Checked {
            key: key.into(),
            class,
            found: None,
            repair: None,
            findings: vec![],
            checksum: None,
            size: 10,
            source_version: None,
            replica_version: None,
            lag_seconds: lag,
        }
    }

    #[test]
    fn counts_prefixes_lag_and_kept_rows() {
        let mut t = Tally::keeping(1);
        t.add(&checked("a/1", Class::Ok, Some(0)));
        t.add(&checked("a/2", Class::Missing, None));
        t.add(&checked("b", Class::Corrupt, Some(30)));
        t.add(&checked("x/e", Class::Extra, None));
        assert_eq!(t.objects, 4);
        assert_eq!(t.bytes, 30);
        assert_eq!(t.problem_count(), 2);
        assert_eq!(t.problems_by_prefix["a/"], 1);
        assert_eq!(t.problems_by_prefix["(top level)"], 1);
        assert_eq!((t.lag[0], t.lag[2]), (1, 1));
        assert_eq!((t.problems.len(), t.problems_not_kept), (1, 2));
        let mut all = Tally::keeping(0);
        all.merge(&t);
        all.merge(&t);
        assert_eq!(all.count(Class::Missing), 2);
        assert_eq!(all.problems_not_kept, 6);
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["classes"]["corrupt"], 1);
    }

    #[test]
    fn prefixes_are_capped() {
        let mut t = Tally::keeping(0);
        for i in 0..(MAX_PREFIXES + 5) {
            t.add(&checked(&format!("p{i}/k"), Class::Missing, None));
        }
        assert_eq!(t.problems_by_prefix.len(), MAX_PREFIXES + 1);
        assert_eq!(t.problems_by_prefix[OTHER_PREFIXES], 5);
    }
}
