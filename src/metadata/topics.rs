//! Planning topic changes: a request plus the current image in, metadata records (or the
//! Kafka-shaped reason for refusing) out. Pure functions, so every rule is unit-tested without
//! disks or sockets; committing the records is the caller's job.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::image::MetadataImage;
use super::records::MetadataRecord;
use super::topic_config;
use super::MetadataError;

/// Kafka's limit on topic name length (Topic.MAX_NAME_LENGTH).
const TOPIC_NAME_MAX_LEN: usize = 249;
/// More partitions than this in one topic is refused: each is several open files and maps.
pub(crate) const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;

/// A CreateTopics entry, with -1 meaning "the broker's default" as in Kafka.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct NewTopic {
    pub(crate) name: String,
    pub(crate) num_partitions: i32,
    pub(crate) replication_factor: i16,
    /// Manual replica assignment by partition; when given, the two counts above must be -1.
    pub(crate) assignments: BTreeMap<i32, Vec<i32>>,
    pub(crate) configs: BTreeMap<String, String>,
}

/// What the planner needs to know about the cluster beyond the image.
#[derive(Debug, Clone)]
pub(crate) struct Placement<'a> {
    pub(crate) brokers: &'a [i32],
    pub(crate) default_partitions: i32,
    pub(crate) default_replication_factor: i32,
}

/// Kafka's topic name rule: 1..=249 chars of [a-zA-Z0-9._-], not "." or "..".
pub(crate) fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    let bad = |why: &str| Err(MetadataError::InvalidTopic(format!("topic name '{name}' {why}")));
    if name.is_empty() {
        return bad("is empty");
    }
    if name == "." || name == ".." {
        return bad("cannot be '.' or '..'");
    }
    if name.len() > TOPIC_NAME_MAX_LEN {
        return bad("is longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("contains a character other than ASCII alphanumerics, '.', '_' and '-'");
    }
    if name.starts_with("__cluster_metadata") {
        return bad("is reserved for the metadata log");
    }
    Ok(())
}

pub(crate) fn plan_create_topic(
    image: &MetadataImage,
    placement: &Placement<'_>,
    topic: &NewTopic,
) -> Result<Vec<MetadataRecord>, MetadataError> {
    validate_topic_name(&topic.name)?;
    if image.topic(&topic.name).is_some() {
        return Err(MetadataError::TopicAlreadyExists(topic.name.clone()));
    }
    // Kafka's rule: '.' and '_' collide in metric names, so names differing only there clash.
    let unified = |n: &str| n.replace('.', "_");
    if let Some(other) = image.topics().find(|t| unified(&t.name) == unified(&topic.name)) {
        return Err(MetadataError::InvalidTopic(format!(
            "topic '{}' collides with existing topic '{}' ('.' and '_' are treated alike)",
            topic.name, other.name
        )));
    }
    for (k, v) in &topic.configs {
        topic_config::validate(k, v).map_err(MetadataError::InvalidConfig)?;
    }
    topic_config::validate_combination(&topic.configs).map_err(MetadataError::InvalidConfig)?;
    let assignments = if topic.assignments.is_empty() {
        let partitions = match topic.num_partitions {
            -1 => placement.default_partitions,
            n => n,
        };
        let rf = match topic.replication_factor {
            -1 => placement.default_replication_factor,
            n => n as i32,
        };
        check_partition_count(partitions)?;
        place(placement.brokers, 0, partitions, rf)?
    } else {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(MetadataError::InvalidRequest(
                "both manual assignments and a partition count or replication factor were given".into(),
            ));
        }
        check_manual_assignments(placement.brokers, 0, &topic.assignments)?;
        topic.assignments.values().cloned().collect()
    };
    let topic_id = Uuid::new_v4();
    let mut records = vec![MetadataRecord::Topic {
        name: topic.name.clone(),
        topic_id,
        configs: topic.configs.clone(),
    }];
    records.extend(partition_records(topic_id, 0, assignments));
    Ok(records)
}

pub(crate) fn plan_delete_topic(image: &MetadataImage, name: &str) -> Result<Vec<MetadataRecord>, MetadataError> {
    let topic = image
        .topic(name)
        .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
    Ok(vec![MetadataRecord::RemoveTopic { topic_id: topic.id }])
}

/// CreatePartitions: grow `name` to `count` partitions, placed automatically or as assigned.
pub(crate) fn plan_create_partitions(
    image: &MetadataImage,
    brokers: &[i32],
    name: &str,
    count: i32,
    assignments: Option<&[Vec<i32>]>,
) -> Result<Vec<MetadataRecord>, MetadataError> {
    let topic = image
        .topic(name)
        .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
    let current = topic.partitions.len() as i32;
    if count < current {
        return Err(MetadataError::InvalidPartitions(format!(
            "topic currently has {current} partitions, which is higher than the requested {count}"
        )));
    }
    if count == current {
        return Err(MetadataError::InvalidPartitions(format!(
            "topic already has {current} partitions"
        )));
    }
    check_partition_count(count)?;
    let rf = topic.partitions.values().next().map_or(1, |p| p.replicas.len() as i32);
    let new = match assignments {
        None => place(brokers, current, count - current, rf)?,
        Some(a) => {
            if a.len() as i32 != count - current {
                return Err(MetadataError::InvalidReplicaAssignment(format!(
                    "{} assignments given for {} new partitions",
                    a.len(),
                    count - current
                )));
            }
            let by_index = (current..).zip(a.iter().cloned()).collect();
            check_manual_assignments(brokers, current, &by_index)?;
            a.to_vec()
        }
    };
    Ok(partition_records(topic.id, current, new))
}

/// One change to a topic config override (IncrementalAlterConfigs' operations).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum ConfigChange {
    Set(String),
    Delete,
    /// List configs (cleanup.policy): add these items if missing.
    Append(String),
    /// List configs: remove these items.
    Subtract(String),
}

/// IncrementalAlterConfigs / AlterConfigs on a topic: the overrides after `changes` (applied in
/// order to the current ones; `replace_all` drops every override not named, as the legacy
/// AlterConfigs does), as TopicConfig records. Every resulting value is validated.
pub(crate) fn plan_alter_configs(
    image: &MetadataImage,
    name: &str,
    changes: &[(String, ConfigChange)],
    replace_all: bool,
) -> Result<Vec<MetadataRecord>, MetadataError> {
    let topic = image
        .topic(name)
        .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
    let mut next = if replace_all {
        BTreeMap::new()
    } else {
        topic.configs.clone()
    };
    for (key, change) in changes {
        let value = match change {
            ConfigChange::Set(v) => Some(v.clone()),
            ConfigChange::Delete => None,
            ConfigChange::Append(v) => {
                let mut items = list_value(key, next.get(key), "APPEND")?;
                for item in list_items(v) {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                Some(items.join(","))
            }
            ConfigChange::Subtract(v) => {
                let gone = list_items(v);
                let mut items = list_value(key, next.get(key), "SUBTRACT")?;
                items.retain(|i| !gone.contains(i));
                Some(items.join(","))
            }
        };
        match value {
            Some(v) => {
                topic_config::validate(key, &v).map_err(MetadataError::InvalidConfig)?;
                next.insert(key.clone(), v);
            }
            None => {
                // Deleting an override of an unknown name is as wrong as setting it.
                if !topic_config::is_known(key) {
                    return Err(MetadataError::InvalidConfig(format!("unknown topic config '{key}'")));
                }
                next.remove(key);
            }
        }
    }
    topic_config::validate_combination(&next).map_err(MetadataError::InvalidConfig)?;
    let names: BTreeSet<&String> = topic.configs.keys().chain(next.keys()).collect();
    Ok(names
        .into_iter()
        .filter(|k| topic.configs.get(*k) != next.get(*k))
        .map(|k| MetadataRecord::TopicConfig {
            topic_id: topic.id,
            name: k.clone(),
            value: next.get(k).cloned(),
        })
        .collect())
}

/// The items APPEND and SUBTRACT start from: the topic's override, or else the config's own
/// default (so APPEND compact to a topic on the default gives `delete,compact`, as in Kafka).
/// That default is the topic config's, not the broker setting behind it: Kafka's controller
/// uses its config schema's default too, and it keeps the plan the same on every controller,
/// whatever its settings.
fn list_value(key: &str, current: Option<&String>, op: &str) -> Result<Vec<String>, MetadataError> {
    let def =
        topic_config::find(key).ok_or_else(|| MetadataError::InvalidConfig(format!("unknown topic config '{key}'")))?;
    if def.config_type != topic_config::ConfigType::List {
        return Err(MetadataError::InvalidConfig(format!(
            "cannot {op} to {key}: it is not a list config"
        )));
    }
    Ok(list_items(current.map_or(def.fixed_default, String::as_str)))
}

/// A list config's items, trimmed, empty ones dropped.
fn list_items(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn check_partition_count(n: i32) -> Result<(), MetadataError> {
    if n < 1 {
        return Err(MetadataError::InvalidPartitions(format!(
            "number of partitions must be at least 1, got {n}"
        )));
    }
    if n > PARTITIONS_PER_TOPIC_MAX {
        return Err(MetadataError::InvalidPartitions(format!(
            "number of partitions {n} is over the limit of {PARTITIONS_PER_TOPIC_MAX}"
        )));
    }
    Ok(())
}

/// Round-robin placement: partition p's replicas are consecutive brokers from `brokers`, which
/// the controller hands over already rotated by a random start and interleaved across racks.
fn place(brokers: &[i32], first: i32, count: i32, rf: i32) -> Result<Vec<Vec<i32>>, MetadataError> {
    if rf < 1 {
        return Err(MetadataError::InvalidReplicationFactor(format!(
            "replication factor must be at least 1, got {rf}"
        )));
    }
    if rf as usize > brokers.len() {
        return Err(MetadataError::InvalidReplicationFactor(format!(
            "replication factor: {rf} larger than available brokers: {}",
            brokers.len()
        )));
    }
    let n = brokers.len();
    Ok((first..first + count)
        .map(|p| (0..rf as usize).map(|r| brokers[(p as usize + r) % n]).collect())
        .collect())
}

fn check_manual_assignments(
    brokers: &[i32],
    first: i32,
    assignments: &BTreeMap<i32, Vec<i32>>,
) -> Result<(), MetadataError> {
    let bad = |why: String| Err(MetadataError::InvalidReplicaAssignment(why));
    let expected: Vec<i32> = (first..first + assignments.len() as i32).collect();
    if assignments.keys().copied().collect::<Vec<_>>() != expected {
        return bad("partitions in the assignment must be consecutive from the first new one".into());
    }
    check_partition_count(first + assignments.len() as i32)?;
    let rf = assignments.values().next().map_or(0, Vec::len);
    for (p, replicas) in assignments {
        let unique: BTreeSet<_> = replicas.iter().collect();
        if replicas.is_empty() || unique.len() != replicas.len() {
            return bad(format!("partition {p} has an empty or duplicate replica list"));
        }
        if replicas.len() != rf {
            return bad(format!("partition {p} has {} replicas, others {rf}", replicas.len()));
        }
        if let Some(b) = replicas.iter().find(|b| !brokers.contains(b)) {
            return bad(format!("partition {p} names unknown broker {b}"));
        }
    }
    Ok(())
}

fn partition_records(topic_id: Uuid, first: i32, assignments: Vec<Vec<i32>>) -> Vec<MetadataRecord> {
    (first..)
        .zip(assignments)
        .map(|(partition, replicas)| MetadataRecord::Partition {
            topic_id,
            partition,
            leader: replicas[0],
            // No replication yet: only the leader has the data, so only it is in sync.
            isr: vec![replicas[0]],
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROKERS: &[i32] = &[1];

    fn placement() -> Placement<'static> {
        Placement {
            brokers: BROKERS,
            default_partitions: 3,
            default_replication_factor: 1,
        }
    }

    fn new_topic(name: &str, partitions: i32, rf: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            ..Default::default()
        }
    }

    fn applied(records: &[MetadataRecord]) -> MetadataImage {
        let mut image = MetadataImage::default();
        records.iter().for_each(|r| image.apply(r).unwrap());
        image
    }

    #[test]
    fn create_uses_broker_defaults_for_minus_one() {
        let records = plan_create_topic(&MetadataImage::default(), &placement(), &new_topic("t", -1, -1)).unwrap();
        assert_eq!(applied(&records).topic("t").unwrap().partitions.len(), 3);
    }

    #[test]
    fn create_existing_topic_is_topic_already_exists() {
        let image =
            applied(&plan_create_topic(&MetadataImage::default(), &placement(), &new_topic("t", 1, 1)).unwrap());
        let err = plan_create_topic(&image, &placement(), &new_topic("t", 1, 1)).unwrap_err();
        assert!(matches!(err, MetadataError::TopicAlreadyExists(_)));
    }

    #[test]
    fn bad_names_are_invalid_topic() {
        for name in ["", ".", "..", "a b", "ä", &"x".repeat(250), "__cluster_metadata"] {
            let err = plan_create_topic(&MetadataImage::default(), &placement(), &new_topic(name, 1, 1)).unwrap_err();
            assert!(matches!(err, MetadataError::InvalidTopic(_)), "{name}");
        }
        validate_topic_name(&"x".repeat(249)).unwrap();
    }

    #[test]
    fn names_differing_only_by_dot_or_underscore_collide() {
        let image =
            applied(&plan_create_topic(&MetadataImage::default(), &placement(), &new_topic("a.b", 1, 1)).unwrap());
        let err = plan_create_topic(&image, &placement(), &new_topic("a_b", 1, 1)).unwrap_err();
        assert!(matches!(err, MetadataError::InvalidTopic(_)));
    }

    #[test]
    fn replication_factor_above_broker_count_is_refused() {
        let err = plan_create_topic(&MetadataImage::default(), &placement(), &new_topic("t", 1, 3)).unwrap_err();
        assert!(matches!(err, MetadataError::InvalidReplicationFactor(_)));
    }

    #[test]
    fn zero_or_huge_partition_count_is_invalid_partitions() {
        for n in [0, -5, PARTITIONS_PER_TOPIC_MAX + 1] {
            let err = plan_create_topic(&MetadataImage::default(), &placement(), &new_topic("t", n, 1)).unwrap_err();
            assert!(matches!(err, MetadataError::InvalidPartitions(_)), "{n}");
        }
    }

    #[test]
    fn unknown_topic_config_is_invalid_config() {
        let mut t = new_topic("t", 1, 1);
        t.configs.insert("retention.mz".into(), "1".into());
        let err = plan_create_topic(&MetadataImage::default(), &placement(), &t).unwrap_err();
        assert!(matches!(err, MetadataError::InvalidConfig(_)));
    }

    #[test]
    fn manual_assignment_must_name_known_brokers() {
        let mut t = new_topic("t", -1, -1);
        t.assignments.insert(0, vec![2]);
        let err = plan_create_topic(&MetadataImage::default(), &placement(), &t).unwrap_err();
        assert!(matches!(err, MetadataError::InvalidReplicaAssignment(_)));
        t.assignments.insert(0, vec![1]);
        plan_create_topic(&MetadataImage::default(), &placement(), &t).unwrap();
    }

    #[test]
    fn alter_configs_sets_deletes_and_appends_with_validation() {
        let image =
            applied(&plan_create_topic(&MetadataImage::default(), &placement(), &new_topic("t", 1, 1)).unwrap());
        let set = |k: &str, c: ConfigChange| (k.to_string(), c);
        let records = plan_alter_configs(
            &image,
            "t",
            &[
                set("retention.ms", ConfigChange::Set("1000".into())),
                set("cleanup.policy", ConfigChange::Append("compact".into())),
            ],
            false,
        )
        .unwrap();
        let mut image = image;
        records.iter().for_each(|r| image.apply(r).unwrap());
        let topic = image.topic("t").unwrap();
        assert_eq!(topic.configs["retention.ms"], "1000");
        // APPEND starts from the default (delete), as Kafka's does.
        assert_eq!(topic.configs["cleanup.policy"], "delete,compact");
        let records = plan_alter_configs(&image, "t", &[set("retention.ms", ConfigChange::Delete)], false).unwrap();
        assert_eq!(records.len(), 1);
        let err = plan_alter_configs(
            &image,
            "t",
            &[set("retention.ms", ConfigChange::Set("-7".into()))],
            false,
        )
        .unwrap_err();
        assert!(matches!(err, MetadataError::InvalidConfig(_)));
        let err = plan_alter_configs(&image, "t", &[set("bogus", ConfigChange::Set("1".into()))], false).unwrap_err();
        assert!(matches!(err, MetadataError::InvalidConfig(_)));
        // Legacy AlterConfigs replaces the whole set: overrides not named go.
        let records = plan_alter_configs(
            &image,
            "t",
            &[set("segment.ms", ConfigChange::Set("5000".into()))],
            true,
        )
        .unwrap();
        assert_eq!(records.len(), 3);
    }

    fn altered(image: &MetadataImage, changes: &[(&str, ConfigChange)]) -> Result<MetadataImage, MetadataError> {
        let changes: Vec<(String, ConfigChange)> = changes.iter().map(|(k, c)| (k.to_string(), c.clone())).collect();
        let mut next = image.clone();
        for r in plan_alter_configs(image, "t", &changes, false)? {
            next.apply(&r).unwrap();
        }
        Ok(next)
    }

    fn policy(image: &MetadataImage) -> Option<&str> {
        image
            .topic("t")
            .unwrap()
            .configs
            .get("cleanup.policy")
            .map(String::as_str)
    }

    /// Regression (issue 10): SUBTRACT of the last policy leaves the empty list, which Kafka 4
    /// accepts (confluent-kafka's admin relies on it); Sluice answered INVALID_CONFIG.
    #[test]
    fn subtract_starts_from_the_default_and_may_leave_an_empty_policy() {
        let image =
            applied(&plan_create_topic(&MetadataImage::default(), &placement(), &new_topic("t", 1, 1)).unwrap());
        let none = altered(&image, &[("cleanup.policy", ConfigChange::Subtract("delete".into()))]).unwrap();
        assert_eq!(policy(&none), Some(""));
        // An existing override, even the empty one, is where the next change starts.
        let compact = altered(&none, &[("cleanup.policy", ConfigChange::Append("compact".into()))]).unwrap();
        assert_eq!(policy(&compact), Some("compact"));
        let both = altered(
            &compact,
            &[("cleanup.policy", ConfigChange::Append("delete,compact".into()))],
        )
        .unwrap();
        assert_eq!(policy(&both), Some("compact,delete"));
        let kept = altered(&both, &[("cleanup.policy", ConfigChange::Subtract("bogus".into()))]).unwrap();
        assert_eq!(policy(&kept), Some("compact,delete"));
    }

    #[test]
    fn append_or_subtract_on_a_config_that_is_not_a_list_is_invalid_config() {
        let image =
            applied(&plan_create_topic(&MetadataImage::default(), &placement(), &new_topic("t", 1, 1)).unwrap());
        for change in [ConfigChange::Append("5".into()), ConfigChange::Subtract("5".into())] {
            let err = altered(&image, &[("retention.ms", change.clone())]).unwrap_err();
            assert!(matches!(err, MetadataError::InvalidConfig(_)), "{err}");
            let err = altered(&image, &[("no.such.config", change)]).unwrap_err();
            assert!(matches!(err, MetadataError::InvalidConfig(_)), "{err}");
        }
    }

    #[test]
    fn create_partitions_grows_but_never_shrinks() {
        let image =
            applied(&plan_create_topic(&MetadataImage::default(), &placement(), &new_topic("t", 2, 1)).unwrap());
        let err = plan_create_partitions(&image, BROKERS, "t", 1, None).unwrap_err();
        assert!(matches!(err, MetadataError::InvalidPartitions(_)));
        let records = plan_create_partitions(&image, BROKERS, "t", 5, None).unwrap();
        assert_eq!(records.len(), 3);
        let err = plan_create_partitions(&image, BROKERS, "nope", 5, None).unwrap_err();
        assert!(matches!(err, MetadataError::UnknownTopic(_)));
    }
}
