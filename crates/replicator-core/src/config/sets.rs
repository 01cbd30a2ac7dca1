//! Configurations read from a rule set: one per enabled rule (what the functions run), one
//! per destination (what `replicator policies` prints), and how `REPLICATION_RULES` is read.

use super::env::Env;
use super::{Config, ConfigError, SourceConfig};
use crate::rules::load::Source as RulesSource;
use crate::rules::{RuleSet, SINGLE_DESTINATION_VARIABLES};

impl Config {
    /// One configuration per destination bucket (see [`RuleSet::by_destination`]), each
    /// with that destination's rules alone, from settings read through `lookup`, with
    /// `REPLICATION_RULES` read from where it says (`sdk` for `ssm:` and `s3://`). What
    /// `replicator policies` prints per destination: its source and replica prefixes are
    /// what its enabled rules' have in common ([`RuleSet::common_prefixes`]), so the grants
    /// cover every rule; its rules must share one role and one replica key.
    pub async fn per_destination(
        lookup: impl Fn(&str) -> Option<String>,
        sdk: Option<&aws_config::SdkConfig>,
    ) -> Result<Vec<Self>, ConfigError> {
        let env = Env::new(lookup);
        let source = SourceConfig::read(&env)?;
        let rules = fetch_rules(&env, sdk).await?;
        let destinations = rules.by_destination();
        if destinations.is_empty() {
            // No rule is enabled: the same error as for one destination.
            return Self::build(&env, source, rules).map(|c| vec![c]);
        }
        destinations
            .into_iter()
            .map(|one| {
                let (key_prefix, replica_prefix) = one.common_prefixes()?;
                let mut config = Self::of_rule(&env, source.clone(), one)?;
                config.source.key_prefix = key_prefix;
                config.destination.prefix = replica_prefix;
                // Deletes are granted when any of the destination's rules replicates them.
                config.destination.replicate_deletes = config
                    .rules
                    .rules()
                    .iter()
                    .any(|r| r.enabled && r.delete_markers);
                Ok(config)
            })
            .collect()
    }

    /// The rule set and one configuration per enabled rule, in document order: what the
    /// functions run, an engine per rule ([`crate::fleet::Fleet`]). `REPLICATION_RULES` is
    /// read from where it says (`sdk` for `ssm:` and `s3://`).
    pub async fn per_rule(
        lookup: impl Fn(&str) -> Option<String>,
        sdk: Option<&aws_config::SdkConfig>,
    ) -> Result<(RuleSet, Vec<Self>), ConfigError> {
        let env = Env::new(lookup);
        let source = SourceConfig::read(&env)?;
        let rules = fetch_rules(&env, sdk).await?;
        let configs = rules
            .rules()
            .iter()
            .filter(|r| r.enabled)
            .map(|rule| Self::of_rule(&env, source.clone(), RuleSet::only(rule.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        if configs.is_empty() {
            // No rule is enabled: the same error as for one engine.
            rules.single_rule()?;
        }
        Ok((rules, configs))
    }
}

/// The rule set, with `REPLICATION_RULES` fetched first when it names SSM or S3 and `sdk`
/// is given (without it such a document is an error that names where it is).
pub(super) async fn fetch_rules<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<RuleSet, ConfigError> {
    let fetched = match (env.get("REPLICATION_RULES"), sdk) {
        (Some(value), Some(sdk)) => match RulesSource::parse(&value)? {
            remote if remote.is_remote() => Some(
                remote
                    .fetch(sdk, env.flag("S3_FORCE_PATH_STYLE", false)?)
                    .await?,
            ),
            _ => None,
        },
        _ => None,
    };
    read_rules(env, fetched)
}

/// The rule set: the document `REPLICATION_RULES` holds (inline, or as `fetched`), or the
/// single-destination variables' one rule. Never both.
pub(super) fn read_rules<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    fetched: Option<String>,
) -> Result<RuleSet, ConfigError> {
    let Some(value) = env.get("REPLICATION_RULES") else {
        return RuleSet::from_variables(env);
    };
    if let Some(variable) = SINGLE_DESTINATION_VARIABLES
        .iter()
        .find(|v| env.get(v).is_some())
    {
        return Err(ConfigError::WithRules { variable });
    }
    let text = match (fetched, RulesSource::parse(&value)?) {
        (Some(text), _) => text,
        (None, RulesSource::Inline(text)) => text,
        (None, remote) => {
            return Err(ConfigError::RulesNotRead {
                location: remote.location(),
            })
        }
    };
    Ok(RuleSet::from_json(&text)?)
}
