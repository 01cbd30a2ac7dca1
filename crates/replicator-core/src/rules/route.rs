//! Where one object goes (pure): for each destination bucket, the highest-priority enabled
//! rule whose filter matches the object's key and tags.
//!
//! Native semantics (Amazon S3 API Reference, "ReplicationRule", `Priority`): "Amazon S3
//! will attempt to replicate objects according to all replication rules. However, if there
//! are two or more rules with the same destination bucket, then objects will be replicated
//! according to the rule with the highest priority. The higher the number, the higher the
//! priority." Validation refuses equal priorities that could both match
//! ([`super::validate`]), so the choice never depends on document order; should it ever
//! come to that, the earlier rule wins.
//!
//! Tags cost a GetObjectTagging per object: [`RuleSet::needs_tags`] says whether any rule
//! that could apply to a key filters on tags, so a caller fetches them once, and only then.

use super::{ObjectTags, Rule, RuleSet};

impl super::Filter {
    /// Whether an object with this key and these tags is one the filter selects.
    pub fn matches(&self, key: &str, tags: &ObjectTags) -> bool {
        key.starts_with(self.prefix.as_str())
            && self.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
    }
}

impl RuleSet {
    /// Whether the tags of an object with this key can change where it goes: some enabled
    /// rule whose prefix takes the key filters on tags.
    pub fn needs_tags(&self, key: &str) -> bool {
        self.rules.iter().any(|r| {
            r.enabled && !r.filter.tags.is_empty() && key.starts_with(r.filter.prefix.as_str())
        })
    }

    /// The rule chosen for each destination bucket the object goes to, in the order the
    /// buckets first appear in the document. Pass empty tags when
    /// [`needs_tags`](Self::needs_tags) is false: they cannot matter.
    pub fn route(&self, key: &str, tags: &ObjectTags) -> Vec<&Rule> {
        let mut chosen: Vec<&Rule> = Vec::new();
        for rule in self
            .rules
            .iter()
            .filter(|r| r.enabled && r.filter.matches(key, tags))
        {
            match chosen
                .iter_mut()
                .find(|c| c.destination.bucket == rule.destination.bucket)
            {
                Some(current) if rule.priority > current.priority => *current = rule,
                Some(_) => {}
                None => chosen.push(rule),
            }
        }
        let order = self.destination_buckets();
        chosen.sort_by_key(|r| order.iter().position(|b| *b == r.destination.bucket));
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Destination, Filter, ReplicaStorageClass, RuleSet, ServerSideCopy};
    use super::*;
    use proptest::prelude::*;

    fn destination(bucket: &str) -> Destination {
        Destination {
            bucket: bucket.to_owned(),
            account_id: "222222222222".into(),
            kms_key_id: "arn:aws:kms:us-east-1:222222222222:key/k".into(),
            storage_class: ReplicaStorageClass::BucketDefault,
            role_arn: "arn:aws:iam::222222222222:role/r".into(),
            external_id: None,
            region: None,
            key_prefix: String::new(),
            server_side_copy: ServerSideCopy::Auto,
        }
    }

    const PREFIXES: &[&str] = &["", "a", "a/", "a/b/", "ab", "b/"];
    const KEYS: &[&str] = &["a/b/c", "a/x", "ab", "abc", "b/1", "c", "a"];
    const BUCKETS: &[&str] = &["dst-one", "dst-two", "dst-three"];

    fn tags_strategy() -> impl Strategy<Value = ObjectTags> {
        prop::collection::btree_map(
            prop::sample::select(vec!["team", "class", "env"]).prop_map(str::to_owned),
            prop::sample::select(vec!["red", "blue"]).prop_map(str::to_owned),
            0..3,
        )
    }

    fn filter_strategy() -> impl Strategy<Value = Filter> {
        (prop::sample::select(PREFIXES), tags_strategy()).prop_map(|(p, tags)| Filter {
            prefix: p.to_owned(),
            tags,
        })
    }

    fn rules_strategy() -> impl Strategy<Value = Vec<Rule>> {
        prop::collection::vec(
            (
                0u32..4,
                any::<bool>(),
                filter_strategy(),
                prop::sample::select(BUCKETS),
            ),
            0..7,
        )
        .prop_map(|specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (priority, enabled, filter, bucket))| Rule {
                    id: format!("r{i}"),
                    priority,
                    enabled,
                    filter,
                    delete_markers: false,
                    destination: destination(bucket),
                })
                .collect()
        })
    }

    fn object_strategy() -> impl Strategy<Value = (String, ObjectTags)> {
        (
            prop::sample::select(KEYS).prop_map(str::to_owned),
            tags_strategy(),
        )
    }

    proptest! {
        #[test]
        fn a_disabled_rule_never_routes(rules in rules_strategy(), (key, tags) in object_strategy()) {
            let set = RuleSet { rules };
            for r in set.route(&key, &tags) {
                prop_assert!(r.enabled);
            }
        }

        #[test]
        fn each_destination_gets_at_most_one_rule(rules in rules_strategy(), (key, tags) in object_strategy()) {
            let set = RuleSet { rules };
            let routes = set.route(&key, &tags);
            let mut buckets: Vec<&str> = routes.iter().map(|r| r.destination.bucket.as_str()).collect();
            let n = buckets.len();
            buckets.sort_unstable();
            buckets.dedup();
            prop_assert_eq!(buckets.len(), n);
        }

        #[test]
        fn the_chosen_rule_matches_and_none_for_its_bucket_outranks_it(
            rules in rules_strategy(), (key, tags) in object_strategy()
        ) {
            let set = RuleSet { rules };
            let routes = set.route(&key, &tags);
            for chosen in &routes {
                prop_assert!(chosen.filter.matches(&key, &tags));
                for other in set.rules() {
                    if other.enabled
                        && other.destination.bucket == chosen.destination.bucket
                        && other.filter.matches(&key, &tags)
                    {
                        prop_assert!(other.priority <= chosen.priority, "{} outranks {}", other.id, chosen.id);
                    }
                }
            }
            // And every bucket with a matching enabled rule is routed to.
            for r in set.rules().iter().filter(|r| r.enabled && r.filter.matches(&key, &tags)) {
                prop_assert!(routes.iter().any(|c| c.destination.bucket == r.destination.bucket));
            }
        }

        #[test]
        fn a_key_under_no_rule_prefix_goes_nowhere(rules in rules_strategy(), tags in tags_strategy()) {
            let set = RuleSet { rules };
            let key = "zzz/outside";
            prop_assume!(set.rules().iter().all(|r| !key.starts_with(r.filter.prefix.as_str())));
            prop_assert!(set.route(key, &tags).is_empty());
            prop_assert!(!set.needs_tags(key));
        }

        #[test]
        fn tags_are_irrelevant_when_not_needed(
            rules in rules_strategy(), (key, tags) in object_strategy(), other in tags_strategy()
        ) {
            let set = RuleSet { rules };
            prop_assume!(!set.needs_tags(&key));
            prop_assert_eq!(set.route(&key, &tags), set.route(&key, &other));
            prop_assert_eq!(set.route(&key, &tags), set.route(&key, &ObjectTags::new()));
        }

        #[test]
        fn overlap_is_exact(a in filter_strategy(), b in filter_strategy(), (key, tags) in object_strategy()) {
            // Whenever one object matches both, the filters overlap ...
            if a.matches(&key, &tags) && b.matches(&key, &tags) {
                prop_assert!(a.overlap(&b).is_some());
            }
            // ... and whenever they overlap, some object matches both: the longer prefix as
            // its key, carrying the tags of both.
            if a.overlap(&b).is_some() {
                let witness_key = if a.prefix.len() >= b.prefix.len() { &a.prefix } else { &b.prefix };
                let mut witness_tags = a.tags.clone();
                witness_tags.extend(b.tags.clone());
                prop_assert!(a.matches(witness_key, &witness_tags) && b.matches(witness_key, &witness_tags));
            }
            prop_assert_eq!(a.overlap(&b).is_some(), b.overlap(&a).is_some());
        }

        #[test]
        fn accepted_rule_sets_route_the_same_whatever_the_rule_order(
            rules in rules_strategy(), (key, tags) in object_strategy()
        ) {
            prop_assume!(super::super::validate::check_overlaps(&rules).is_ok());
            let forward = RuleSet { rules: rules.clone() };
            let mut reversed = rules;
            reversed.reverse();
            let backward = RuleSet { rules: reversed };
            let ids = |set: &RuleSet| {
                let mut ids: Vec<String> = set.route(&key, &tags).iter().map(|r| r.id.clone()).collect();
                ids.sort();
                ids
            };
            prop_assert_eq!(ids(&forward), ids(&backward));
        }
    }

    #[test]
    fn the_higher_priority_wins_per_destination_and_each_destination_is_independent() {
        let rule = |id: &str, priority, prefix: &str, bucket: &str| Rule {
            id: id.into(),
            priority,
            enabled: true,
            filter: Filter {
                prefix: prefix.into(),
                tags: ObjectTags::new(),
            },
            delete_markers: false,
            destination: destination(bucket),
        };
        let set = RuleSet {
            rules: vec![
                rule("all", 1, "", "dst-one"),
                rule("logs", 5, "logs/", "dst-one"),
                rule("archive", 0, "", "dst-two"),
            ],
        };
        let ids: Vec<&str> = set
            .route("logs/x", &ObjectTags::new())
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(ids, ["logs", "archive"]);
        let ids: Vec<&str> = set
            .route("data/x", &ObjectTags::new())
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(ids, ["all", "archive"]);
    }
}
