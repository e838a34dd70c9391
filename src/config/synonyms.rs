//! Kafka's broker-setting synonyms: the settings behind one value, and how DescribeConfigs
//! lists them. Some values can be set in more than one unit (`log.retention.ms`, `.minutes`,
//! `.hours`), the most specific set one winning; every setting's synonyms list what is set for
//! every broker at run time (the cluster defaults of the metadata log), then what is set
//! statically (the file, an `--override`), then the defaults, as Kafka's broker lists them
//! (`DynamicBrokerConfig.brokerConfigSynonyms` and `ConfigHelper.configSynonyms`).
//!
//! Pure functions over the settings and the cluster defaults; the API layer turns them into
//! DescribeConfigs' synonyms, and topic configs use them for the broker default behind their
//! own.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Setting, Settings, Source};

/// Settings that set one value in different units, most specific first, each with its factor
/// to the first one's unit.
const UNIT_GROUPS: &[&[(&str, i64)]] = &[
    &[
        ("log.retention.ms", 1),
        ("log.retention.minutes", 60_000),
        ("log.retention.hours", 3_600_000),
    ],
    &[("log.roll.ms", 1), ("log.roll.hours", 3_600_000)],
];

/// One entry of a synonym list: a setting and a value it has, statically or by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synonym {
    pub name: &'static str,
    pub value: String,
    /// `File` or `Override` for a value set statically, `Default` for the default.
    pub source: Source,
}

/// The unit group `name` is in, or `name` alone.
fn unit_group(name: &str) -> Vec<(&str, i64)> {
    UNIT_GROUPS
        .iter()
        .find(|g| g.iter().any(|(n, _)| *n == name))
        .map_or_else(|| vec![(name, 1)], |g| g.to_vec())
}

/// Broker settings set for every broker at run time (Kafka's dynamic cluster-wide defaults,
/// `kafka-configs --entity-type brokers --entity-default`), by name, as the metadata log has
/// them. They win over the file.
pub type ClusterDefaults = BTreeMap<String, String>;

/// Every setting by name, for answering about several (a topic's configs, a DescribeConfigs).
#[derive(Debug, Clone)]
pub struct Catalog {
    entries: BTreeMap<&'static str, Setting>,
}

impl Settings {
    /// The settings by name, with their values, defaults and sources (built once: topic
    /// configs ask for it for every partition).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog_cell()
            .get_or_init(|| {
                Arc::new(Catalog {
                    entries: self.entries().into_iter().map(|s| (s.name, s)).collect(),
                })
            })
            .clone()
    }
}

impl Catalog {
    /// Kafka's synonyms of the setting `name`: the cluster defaults of its unit group, then
    /// their static values, then their defaults, dropping those before the first entry named
    /// `name` (so `log.retention.ms` unset lists nothing, not `log.retention.hours`' default).
    /// Empty for an unknown name.
    pub fn synonyms(&self, name: &str, cluster: &ClusterDefaults) -> Vec<Synonym> {
        let entries = &self.entries;
        let group = unit_group(name);
        let dynamic = group.iter().filter_map(|(n, _)| {
            Some(Synonym {
                name: entries.get(n)?.name,
                value: cluster.get(*n)?.clone(),
                source: Source::ClusterDefault,
            })
        });
        let statics = group.iter().filter_map(|(n, _)| {
            let s = entries.get(n)?;
            let value = s.value.clone().filter(|_| s.source != Source::Default)?;
            Some(Synonym {
                name: s.name,
                value,
                source: s.source,
            })
        });
        let defaults = group.iter().filter_map(|(n, _)| {
            let s = entries.get(n)?;
            Some(Synonym {
                name: s.name,
                value: s.default.clone()?,
                source: Source::Default,
            })
        });
        dynamic
            .chain(statics)
            .chain(defaults)
            .skip_while(|s| s.name != name)
            .collect()
    }

    /// The value in force for `name`, in its own unit: its value (a cluster default over the
    /// static one), or else the first of its unit group that has one, converted (a negative
    /// time means forever: -1, as in Kafka). None when nothing in the group has a value.
    pub fn resolved(&self, name: &str, cluster: &ClusterDefaults) -> Option<String> {
        let entries = &self.entries;
        let group = unit_group(name);
        let own = group.iter().find(|(n, _)| *n == name).map_or(1, |(_, f)| *f);
        let in_force = |n: &str| cluster.get(n).cloned().or_else(|| entries.get(n)?.value.clone());
        group.iter().find_map(|(n, factor)| {
            let value = in_force(n)?;
            if factor == &own {
                return Some(value);
            }
            let n: i64 = value.trim().parse().ok()?;
            let converted = n.saturating_mul(*factor) / own;
            Some(if converted < 0 { -1 } else { converted }.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;

    fn listed(s: &Settings, name: &str) -> Vec<(&'static str, String, Source)> {
        s.catalog()
            .synonyms(name, &ClusterDefaults::new())
            .into_iter()
            .map(|y| (y.name, y.value, y.source))
            .collect()
    }

    /// As Kafka 4.4 lists them: a static value, then the default if the setting has one.
    #[test]
    fn a_static_setting_lists_its_value_then_its_default() {
        let s = load(
            None,
            &["group.initial.rebalance.delay.ms=0".into(), "log.dirs=/d".into()],
        )
        .unwrap();
        assert_eq!(
            listed(&s, "group.initial.rebalance.delay.ms"),
            [
                ("group.initial.rebalance.delay.ms", "0".to_string(), Source::Override),
                ("group.initial.rebalance.delay.ms", "3000".to_string(), Source::Default),
            ]
        );
        // log.dirs has no default (log.dir does).
        assert_eq!(
            listed(&s, "log.dirs"),
            [("log.dirs", "/d".to_string(), Source::Override)]
        );
        assert_eq!(
            listed(&s, "num.partitions"),
            [("num.partitions", "1".to_string(), Source::Default)]
        );
    }

    /// Kafka: log.retention.ms unset is null with no synonyms (log.retention.hours is what is
    /// defaulted), and a set one is followed by the hours' default.
    #[test]
    fn retention_in_ms_minutes_or_hours_lists_and_resolves_as_kafka() {
        let unset = Settings::defaults();
        assert_eq!(listed(&unset, "log.retention.ms"), []);
        assert_eq!(
            listed(&unset, "log.retention.hours"),
            [("log.retention.hours", "168".to_string(), Source::Default)]
        );
        assert_eq!(
            unset
                .catalog()
                .resolved("log.retention.ms", &ClusterDefaults::new())
                .as_deref(),
            Some("604800000")
        );
        assert_eq!(
            unset
                .catalog()
                .resolved("log.roll.ms", &ClusterDefaults::new())
                .as_deref(),
            Some("604800000")
        );
        assert_eq!(
            unset
                .catalog()
                .resolved("log.flush.interval.ms", &ClusterDefaults::new()),
            None
        );

        let set = load(None, &["log.retention.ms=5000".into()]).unwrap();
        assert_eq!(
            listed(&set, "log.retention.ms"),
            [
                ("log.retention.ms", "5000".to_string(), Source::Override),
                ("log.retention.hours", "168".to_string(), Source::Default),
            ]
        );
        assert_eq!(
            set.catalog()
                .resolved("log.retention.ms", &ClusterDefaults::new())
                .as_deref(),
            Some("5000")
        );

        let minutes = load(None, &["log.retention.minutes=2".into()]).unwrap();
        assert_eq!(
            minutes
                .catalog()
                .resolved("log.retention.ms", &ClusterDefaults::new())
                .as_deref(),
            Some("120000")
        );
        let forever = load(None, &["log.retention.hours=-1".into()]).unwrap();
        assert_eq!(
            forever
                .catalog()
                .resolved("log.retention.ms", &ClusterDefaults::new())
                .as_deref(),
            Some("-1")
        );
    }
}
