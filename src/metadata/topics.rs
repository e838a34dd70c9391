//! Planning topic changes: a request plus the current image in, metadata records (or the
//! Kafka-shaped reason for refusing) out. Pure functions, so every rule is unit-tested without
//! disks or sockets; committing the records is the caller's job.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::cluster_configs;
use super::image::MetadataImage;
use super::records::MetadataRecord;
use super::topic_config;
use super::{MetadataError, METADATA_TOPIC};
use crate::config::Settings;

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
    /// The broker settings behind topic configs' defaults, for checking configs together.
    pub(crate) settings: &'a Settings,
}

/// Kafka's topic name rule (`Topic.validate`), with its messages: 1..=249 chars of
/// [a-zA-Z0-9._-], not "." or "..".
pub(crate) fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    let why = if name.is_empty() {
        "the empty string is not allowed".to_string()
    } else if name == "." || name == ".." {
        format!("'{name}' is not allowed")
    } else if name.encode_utf16().count() > TOPIC_NAME_MAX_LEN {
        // Java counts UTF-16 units, and so does this.
        format!("the length of '{name}' is longer than the max allowed length {TOPIC_NAME_MAX_LEN}")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        format!("'{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'")
    } else {
        return Ok(());
    };
    Err(MetadataError::InvalidTopic(format!("Topic name is invalid: {why}")))
}

pub(crate) fn plan_create_topic(
    image: &MetadataImage,
    placement: &Placement<'_>,
    topic: &NewTopic,
) -> Result<Vec<MetadataRecord>, MetadataError> {
    validate_topic_name(&topic.name)?;
    // The metadata log's directory is `__cluster_metadata-0`: no topic may come near it.
    if topic.name.starts_with(METADATA_TOPIC) {
        return Err(MetadataError::InvalidRequest(format!(
            "Creation of internal topic {} is prohibited.",
            topic.name
        )));
    }
    if image.topic(&topic.name).is_some() {
        return Err(MetadataError::TopicAlreadyExists(topic.name.clone()));
    }
    // Kafka's rule: '.' and '_' collide in metric names, so names differing only there clash.
    let unified = |n: &str| n.replace('.', "_");
    if let Some(other) = image.topics().find(|t| unified(&t.name) == unified(&topic.name)) {
        return Err(MetadataError::InvalidTopic(format!(
            "Topic '{}' collides with existing topic: {}",
            topic.name, other.name
        )));
    }
    for (k, v) in &topic.configs {
        topic_config::validate(k, v).map_err(MetadataError::InvalidConfig)?;
    }
    topic_config::check_combination(placement.settings, image.cluster_configs(), &topic.configs)
        .map_err(MetadataError::InvalidConfig)?;
    let assignments = if topic.assignments.is_empty() {
        if topic.replication_factor < -1 || topic.replication_factor == 0 {
            return Err(MetadataError::InvalidReplicationFactor(
                "Replication factor must be larger than 0, or -1 to use the default value.".into(),
            ));
        }
        if topic.num_partitions < -1 || topic.num_partitions == 0 {
            return Err(MetadataError::InvalidPartitions(
                "Number of partitions was set to an invalid non-positive value.".into(),
            ));
        }
        let partitions = match topic.num_partitions {
            -1 => placement.default_partitions,
            n => n,
        };
        let rf = match topic.replication_factor {
            -1 => placement.default_replication_factor,
            n => n as i32,
        };
        check_partition_count(partitions)?;
        place(image, placement.brokers, 0, partitions, rf)?
    } else {
        if topic.replication_factor != -1 {
            return Err(MetadataError::InvalidRequest(
                "A manual partition assignment was specified, but replication factor was not set to -1.".into(),
            ));
        }
        if topic.num_partitions != -1 {
            return Err(MetadataError::InvalidRequest(
                "A manual partition assignment was specified, but numPartitions was not set to -1.".into(),
            ));
        }
        check_manual_assignments(image, placement.brokers, None, &topic.assignments)?;
        let consecutive = topic.assignments.keys().copied().eq(0..topic.assignments.len() as i32);
        if !consecutive {
            return Err(MetadataError::InvalidReplicaAssignment(
                "partitions should be a consecutive 0-based integer sequence".into(),
            ));
        }
        check_partition_count(topic.assignments.len() as i32)?;
        topic.assignments.values().cloned().collect()
    };
    let topic_id = Uuid::new_v4();
    let mut records = vec![MetadataRecord::Topic {
        name: topic.name.clone(),
        topic_id,
        configs: topic.configs.clone(),
    }];
    records.extend(partition_records(placement.brokers, topic_id, 0, assignments));
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
    if count == current {
        return Err(MetadataError::InvalidPartitions(format!(
            "Topic already has {current} partition(s)."
        )));
    }
    if count < current {
        return Err(MetadataError::InvalidPartitions(format!(
            "The topic {name} currently has {current} partition(s); {count} would not be an increase."
        )));
    }
    let additional = count - current;
    if let Some(a) = assignments.filter(|a| a.len() as i32 != additional) {
        return Err(MetadataError::InvalidReplicaAssignment(format!(
            "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
            a.len()
        )));
    }
    check_partition_count(count)?;
    let rf = topic.partitions.values().next().map_or(1, |p| p.replicas.len());
    let new = match assignments {
        None => place(image, brokers, current, additional, rf as i32)?,
        Some(a) => {
            let by_index = (current..).zip(a.iter().cloned()).collect();
            check_manual_assignments(image, brokers, Some(rf), &by_index)?;
            a.to_vec()
        }
    };
    Ok(partition_records(brokers, topic.id, current, new))
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
    settings: &Settings,
    name: &str,
    changes: &[(String, ConfigChange)],
    replace_all: bool,
) -> Result<Vec<MetadataRecord>, MetadataError> {
    if name.is_empty() {
        return Err(MetadataError::InvalidRequest(
            "Default topic resources are not allowed.".into(),
        ));
    }
    validate_topic_name(name)?;
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
            // As in Kafka, deleting what is not there (even under an unknown name) does nothing.
            None => {
                next.remove(key);
            }
        }
    }
    topic_config::check_combination(settings, image.cluster_configs(), &next).map_err(MetadataError::InvalidConfig)?;
    let names: BTreeSet<&String> = topic.configs.keys().chain(next.keys()).collect();
    let mut records: Vec<MetadataRecord> = names
        .into_iter()
        .filter(|k| topic.configs.get(*k) != next.get(*k))
        .map(|k| MetadataRecord::TopicConfig {
            topic_id: topic.id,
            name: k.clone(),
            value: next.get(k).cloned(),
        })
        .collect();
    if records.iter().any(cluster_configs::is_min_isr_change) {
        records.push(MetadataRecord::ClearElr {
            topic_id: Some(topic.id),
        });
    }
    Ok(records)
}

/// The items APPEND and SUBTRACT start from: the topic's override, or else the config's own
/// default (so APPEND compact to a topic on the default gives `delete,compact`, as in Kafka).
/// That default is the topic config's, not the broker setting behind it: Kafka's controller
/// uses its config schema's default too, and it keeps the plan the same on every controller,
/// whatever its settings.
fn list_value(key: &str, current: Option<&String>, op: &str) -> Result<Vec<String>, MetadataError> {
    match topic_config::find(key) {
        Some(def) if def.config_type == topic_config::ConfigType::List => {
            Ok(list_items(current.map_or(def.fixed_default, String::as_str)))
        }
        // Kafka's words, for an unknown name too.
        _ => Err(MetadataError::InvalidConfig(format!(
            "Can't {op} to key {key} because its type is not LIST."
        ))),
    }
}

/// A list config's items, trimmed, empty ones dropped.
fn list_items(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Sluice's own bound on a topic's partitions (Kafka has none short of its per-request limit).
fn check_partition_count(n: i32) -> Result<(), MetadataError> {
    if n > PARTITIONS_PER_TOPIC_MAX {
        return Err(MetadataError::InvalidPartitions(format!(
            "Number of partitions {n} is over Sluice's limit of {PARTITIONS_PER_TOPIC_MAX} per topic."
        )));
    }
    Ok(())
}

/// Round-robin placement: partition p's replicas are consecutive brokers from `live` (the
/// unfenced brokers), which the controller hands over already rotated by a random start and
/// interleaved across racks. The refusals are Kafka's (its replica placer's, prefixed by its
/// controller).
fn place(image: &MetadataImage, live: &[i32], first: i32, count: i32, rf: i32) -> Result<Vec<Vec<i32>>, MetadataError> {
    let registered = live.len() + image.brokers_fenced();
    let unable = |why: String| {
        Err(MetadataError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {rf} time(s): {why}"
        )))
    };
    if rf as usize > registered {
        return unable(format!(
            "The target replication factor of {rf} cannot be reached because only {registered} broker(s) are registered."
        ));
    }
    if live.is_empty() {
        return unable("All brokers are currently fenced.".into());
    }
    if rf as usize > live.len() {
        // Kafka would place replicas on fenced brokers too; Sluice places only on live ones.
        return unable(format!(
            "The target replication factor of {rf} cannot be reached because only {} of the {registered} registered broker(s) are unfenced.",
            live.len()
        ));
    }
    let n = live.len();
    Ok((first..first + count)
        .map(|p| (0..rf as usize).map(|r| live[(p as usize + r) % n]).collect())
        .collect())
}

/// Kafka's checks of a manual assignment (its controller's `validateManualPartitionAssignment`,
/// with its messages), partition by partition: replicas present, each a registered broker
/// named once, as many as the other partitions have (`rf`, or the first partition's), and at
/// least one of them live.
fn check_manual_assignments(
    image: &MetadataImage,
    live: &[i32],
    rf: Option<usize>,
    assignments: &BTreeMap<i32, Vec<i32>>,
) -> Result<(), MetadataError> {
    let bad = |why: String| Err(MetadataError::InvalidReplicaAssignment(why));
    let mut rf = rf;
    for (p, replicas) in assignments {
        if replicas.is_empty() {
            return bad("The manual partition assignment includes an empty replica list.".into());
        }
        let mut sorted = replicas.clone();
        sorted.sort_unstable();
        let mut previous = None;
        for &b in &sorted {
            if image.broker(b).is_none() {
                return bad(format!(
                    "The manual partition assignment includes broker {b}, but no such broker is registered."
                ));
            }
            if previous == Some(b) {
                return bad(format!(
                    "The manual partition assignment includes the broker {b} more than once."
                ));
            }
            previous = Some(b);
        }
        match rf {
            Some(n) if n != replicas.len() => {
                return bad(format!(
                    "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {n} replica(s).",
                    replicas.len()
                ))
            }
            _ => rf = Some(replicas.len()),
        }
        if !replicas.iter().any(|b| live.contains(b)) {
            return bad(format!(
                "All brokers specified in the manual partition assignment for partition {p} are fenced or in controlled shutdown."
            ));
        }
    }
    Ok(())
}

/// The records of new partitions. Each is led by its first live replica (a manual assignment
/// may name fenced brokers too), which is also its whole ISR: without replication only the
/// leader has the data.
fn partition_records(live: &[i32], topic_id: Uuid, first: i32, assignments: Vec<Vec<i32>>) -> Vec<MetadataRecord> {
    (first..)
        .zip(assignments)
        .map(|(partition, replicas)| {
            // Placement and the manual-assignment checks never give an empty replica list.
            let leader = replicas
                .iter()
                .copied()
                .find(|r| live.contains(r))
                .unwrap_or(replicas[0]);
            MetadataRecord::Partition {
                topic_id,
                partition,
                leader,
                isr: vec![leader],
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
                adding: Vec::new(),
                removing: Vec::new(),
                elr: Vec::new(),
                last_known_elr: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::brokers;

    const BROKERS: &[i32] = &[1];

    fn placement() -> Placement<'static> {
        static SETTINGS: std::sync::LazyLock<Settings> = std::sync::LazyLock::new(Settings::defaults);
        Placement {
            brokers: BROKERS,
            default_partitions: 3,
            default_replication_factor: 1,
            settings: &SETTINGS,
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

    /// Broker 1, registered and unfenced.
    fn cluster() -> MetadataImage {
        let mut image = MetadataImage::default();
        let registration = brokers::Registration {
            broker_id: 1,
            incarnation_id: Uuid::new_v4(),
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
            previous_incarnation: None,
            log_dirs: Vec::new(),
            listeners: Vec::new(),
        };
        for r in brokers::plan_register(&image, &registration, &|_| false) {
            image.apply(&r).unwrap();
        }
        for r in brokers::plan_unfence(&image, 1, &|_| false) {
            image.apply(&r).unwrap();
        }
        image
    }

    fn applied(records: &[MetadataRecord]) -> MetadataImage {
        let mut image = cluster();
        records.iter().for_each(|r| image.apply(r).unwrap());
        image
    }

    #[test]
    fn create_uses_broker_defaults_for_minus_one() {
        let records = plan_create_topic(&cluster(), &placement(), &new_topic("t", -1, -1)).unwrap();
        assert_eq!(applied(&records).topic("t").unwrap().partitions.len(), 3);
    }

    #[test]
    fn create_existing_topic_is_topic_already_exists() {
        let image = applied(&plan_create_topic(&cluster(), &placement(), &new_topic("t", 1, 1)).unwrap());
        let err = plan_create_topic(&image, &placement(), &new_topic("t", 1, 1)).unwrap_err();
        assert!(matches!(err, MetadataError::TopicAlreadyExists(_)));
    }

    #[test]
    fn bad_names_are_invalid_topic() {
        for name in ["", ".", "..", "a b", "ä", &"x".repeat(250)] {
            let err = plan_create_topic(&cluster(), &placement(), &new_topic(name, 1, 1)).unwrap_err();
            assert!(matches!(err, MetadataError::InvalidTopic(_)), "{name}");
        }
        validate_topic_name(&"x".repeat(249)).unwrap();
        let err = plan_create_topic(&cluster(), &placement(), &new_topic("__cluster_metadata", 1, 1)).unwrap_err();
        assert!(matches!(err, MetadataError::InvalidRequest(_)), "{err}");
    }

    /// Regression (issue 10): kafka-topics prints the broker's message, and Sluice's were its
    /// own words. These are Kafka 4.4's, for every way a name, a count or an assignment is bad.
    #[test]
    fn topic_refusals_are_worded_as_kafka_words_them() {
        let image = applied(&plan_create_topic(&cluster(), &placement(), &new_topic("two", 2, 1)).unwrap());
        let create = |t: &NewTopic| plan_create_topic(&image, &placement(), t).unwrap_err().to_string();
        let named = |name: &str| create(&new_topic(name, 1, 1));
        let with_rf_and_count = |rf: i16, n: i32| create(&new_topic("new", n, rf));
        let assigned = |a: &[(i32, &[i32])], n: i32, rf: i16| {
            let mut t = new_topic("new", n, rf);
            t.assignments = a.iter().map(|(p, r)| (*p, r.to_vec())).collect();
            create(&t)
        };
        let grown = |count: i32, a: Option<&[Vec<i32>]>| {
            plan_create_partitions(&image, BROKERS, "two", count, a)
                .unwrap_err()
                .to_string()
        };
        let long = "x".repeat(250);
        let cases = [
            (named("two"), "Topic 'two' already exists.".to_string()),
            (named(""), "Topic name is invalid: the empty string is not allowed".into()),
            (named("."), "Topic name is invalid: '.' is not allowed".into()),
            (named(".."), "Topic name is invalid: '..' is not allowed".into()),
            (
                named(&long),
                format!("Topic name is invalid: the length of '{long}' is longer than the max allowed length 249"),
            ),
            (
                named("bad!x"),
                "Topic name is invalid: 'bad!x' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'".into(),
            ),
            (
                named("__cluster_metadata"),
                "Creation of internal topic __cluster_metadata is prohibited.".into(),
            ),
            (
                with_rf_and_count(3, 1),
                "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 1 broker(s) are registered.".into(),
            ),
            (
                with_rf_and_count(0, 1),
                "Replication factor must be larger than 0, or -1 to use the default value.".into(),
            ),
            (
                with_rf_and_count(1, 0),
                "Number of partitions was set to an invalid non-positive value.".into(),
            ),
            (
                assigned(&[(0, &[2])], -1, -1),
                "The manual partition assignment includes broker 2, but no such broker is registered.".into(),
            ),
            (
                assigned(&[(0, &[1, 1])], -1, -1),
                "The manual partition assignment includes the broker 1 more than once.".into(),
            ),
            (
                assigned(&[(0, &[])], -1, -1),
                "The manual partition assignment includes an empty replica list.".into(),
            ),
            (
                assigned(&[(1, &[1])], -1, -1),
                "partitions should be a consecutive 0-based integer sequence".into(),
            ),
            (
                assigned(&[(0, &[1])], -1, 1),
                "A manual partition assignment was specified, but replication factor was not set to -1.".into(),
            ),
            (
                assigned(&[(0, &[1])], 1, -1),
                "A manual partition assignment was specified, but numPartitions was not set to -1.".into(),
            ),
            (grown(2, None), "Topic already has 2 partition(s).".into()),
            (
                grown(1, None),
                "The topic two currently has 2 partition(s); 1 would not be an increase.".into(),
            ),
            (
                grown(4, Some(&[vec![1]])),
                "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified.".into(),
            ),
            (
                grown(3, Some(&[vec![1, 1]])),
                "The manual partition assignment includes the broker 1 more than once.".into(),
            ),
        ];
        for (got, kafka) in cases {
            assert_eq!(got, kafka);
        }
        let missing = plan_create_partitions(&image, BROKERS, "nope", 3, None).unwrap_err();
        assert_eq!(missing.to_string(), "The topic 'nope' does not exist.");
    }

    #[test]
    fn a_manual_assignment_is_led_by_its_first_live_replica() {
        let mut image = cluster();
        let second = brokers::Registration {
            broker_id: 2,
            incarnation_id: Uuid::new_v4(),
            host: "127.0.0.1".into(),
            port: 9093,
            rack: None,
            previous_incarnation: None,
            log_dirs: Vec::new(),
            listeners: Vec::new(),
        };
        for r in brokers::plan_register(&image, &second, &|_| false) {
            image.apply(&r).unwrap();
        }
        // Broker 2 is registered but fenced: it may hold a replica, not lead.
        let mut t = new_topic("t", -1, -1);
        t.assignments.insert(0, vec![2, 1]);
        let records = plan_create_topic(&image, &placement(), &t).unwrap();
        records.iter().for_each(|r| image.apply(r).unwrap());
        let p = &image.topic("t").unwrap().partitions[&0];
        assert_eq!((p.leader, p.isr.clone(), p.replicas.clone()), (1, vec![1], vec![2, 1]));
        t.name = "u".into();
        t.assignments.insert(0, vec![2]);
        let err = plan_create_topic(&image, &placement(), &t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "All brokers specified in the manual partition assignment for partition 0 are fenced or in controlled shutdown."
        );
    }

    #[test]
    fn names_differing_only_by_dot_or_underscore_collide() {
        let image = applied(&plan_create_topic(&cluster(), &placement(), &new_topic("a.b", 1, 1)).unwrap());
        let err = plan_create_topic(&image, &placement(), &new_topic("a_b", 1, 1)).unwrap_err();
        assert!(matches!(err, MetadataError::InvalidTopic(_)));
    }

    #[test]
    fn replication_factor_above_broker_count_is_refused() {
        let err = plan_create_topic(&cluster(), &placement(), &new_topic("t", 1, 3)).unwrap_err();
        assert!(matches!(err, MetadataError::InvalidReplicationFactor(_)));
    }

    #[test]
    fn zero_or_huge_partition_count_is_invalid_partitions() {
        for n in [0, -5, PARTITIONS_PER_TOPIC_MAX + 1] {
            let err = plan_create_topic(&cluster(), &placement(), &new_topic("t", n, 1)).unwrap_err();
            assert!(matches!(err, MetadataError::InvalidPartitions(_)), "{n}");
        }
    }

    #[test]
    fn unknown_topic_config_is_invalid_config() {
        let mut t = new_topic("t", 1, 1);
        t.configs.insert("retention.mz".into(), "1".into());
        let err = plan_create_topic(&cluster(), &placement(), &t).unwrap_err();
        assert!(matches!(err, MetadataError::InvalidConfig(_)));
    }

    #[test]
    fn manual_assignment_must_name_known_brokers() {
        let mut t = new_topic("t", -1, -1);
        t.assignments.insert(0, vec![2]);
        let err = plan_create_topic(&cluster(), &placement(), &t).unwrap_err();
        assert!(matches!(err, MetadataError::InvalidReplicaAssignment(_)));
        t.assignments.insert(0, vec![1]);
        plan_create_topic(&cluster(), &placement(), &t).unwrap();
    }

    #[test]
    fn alter_configs_sets_deletes_and_appends_with_validation() {
        let image = applied(&plan_create_topic(&cluster(), &placement(), &new_topic("t", 1, 1)).unwrap());
        let set = |k: &str, c: ConfigChange| (k.to_string(), c);
        let records = plan_alter_configs(
            &image,
            placement().settings,
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
        let records = plan_alter_configs(
            &image,
            placement().settings,
            "t",
            &[set("retention.ms", ConfigChange::Delete)],
            false,
        )
        .unwrap();
        assert_eq!(records.len(), 1);
        let err = plan_alter_configs(
            &image,
            placement().settings,
            "t",
            &[set("retention.ms", ConfigChange::Set("-7".into()))],
            false,
        )
        .unwrap_err();
        assert!(matches!(err, MetadataError::InvalidConfig(_)));
        let err = plan_alter_configs(
            &image,
            placement().settings,
            "t",
            &[set("bogus", ConfigChange::Set("1".into()))],
            false,
        )
        .unwrap_err();
        assert!(matches!(err, MetadataError::InvalidConfig(_)));
        // Legacy AlterConfigs replaces the whole set: overrides not named go.
        let records = plan_alter_configs(
            &image,
            placement().settings,
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
        for r in plan_alter_configs(image, placement().settings, "t", &changes, false)? {
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
        let image = applied(&plan_create_topic(&cluster(), &placement(), &new_topic("t", 1, 1)).unwrap());
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
        let image = applied(&plan_create_topic(&cluster(), &placement(), &new_topic("t", 1, 1)).unwrap());
        for change in [ConfigChange::Append("5".into()), ConfigChange::Subtract("5".into())] {
            let err = altered(&image, &[("retention.ms", change.clone())]).unwrap_err();
            assert!(matches!(err, MetadataError::InvalidConfig(_)), "{err}");
            let err = altered(&image, &[("no.such.config", change)]).unwrap_err();
            assert!(matches!(err, MetadataError::InvalidConfig(_)), "{err}");
        }
    }

    /// Kafka checks configs together too: min.compaction.lag.ms may not pass the max, counting
    /// the broker's default for whichever is not overridden.
    #[test]
    fn compaction_lags_are_checked_together_with_the_defaults() {
        let image = applied(&plan_create_topic(&cluster(), &placement(), &new_topic("t", 1, 1)).unwrap());
        let err = altered(
            &image,
            &[
                ("min.compaction.lag.ms", ConfigChange::Set("100".into())),
                ("max.compaction.lag.ms", ConfigChange::Set("50".into())),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "conflict topic config setting min.compaction.lag.ms (100) > max.compaction.lag.ms (50)"
        );
        let mut t = new_topic("u", 1, 1);
        t.configs.insert("max.compaction.lag.ms".into(), "1".into());
        plan_create_topic(&image, &placement(), &t).unwrap();
        t.configs.insert("min.compaction.lag.ms".into(), "2".into());
        assert!(matches!(
            plan_create_topic(&image, &placement(), &t).unwrap_err(),
            MetadataError::InvalidConfig(_)
        ));
    }

    #[test]
    fn create_partitions_grows_but_never_shrinks() {
        let image = applied(&plan_create_topic(&cluster(), &placement(), &new_topic("t", 2, 1)).unwrap());
        let err = plan_create_partitions(&image, BROKERS, "t", 1, None).unwrap_err();
        assert!(matches!(err, MetadataError::InvalidPartitions(_)));
        let records = plan_create_partitions(&image, BROKERS, "t", 5, None).unwrap();
        assert_eq!(records.len(), 3);
        let err = plan_create_partitions(&image, BROKERS, "nope", 5, None).unwrap_err();
        assert!(matches!(err, MetadataError::UnknownTopic(_)));
    }
}
