//! Client quotas as the metadata log holds them (Kafka's ClientQuotaRecord, replayed on every
//! node): per user, per client id, per (user, client id), each also as a default; the pure
//! planning of AlterClientQuotas and answering of DescribeClientQuotas with Kafka's rules and
//! messages (`ClientQuotaControlManager`, `ClientQuotasImage.describe`), and the lookup of the
//! quota that applies to a connection, in Kafka's order of precedence.
//!
//! Pure data and functions: no I/O. Enforcement (windows, throttling) is `crate::quota`'s.
//! IP entities (connection_creation_rate) are refused: Sluice does not enforce them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::image::ApplyError;
use super::records::MetadataRecord;

pub(crate) const USER: &str = "user";
pub(crate) const CLIENT_ID: &str = "client-id";
pub(crate) const IP: &str = "ip";

pub(crate) const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub(crate) const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub(crate) const REQUEST_PERCENTAGE: &str = "request_percentage";
pub(crate) const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";

/// Most entities with quotas: AlterClientQuotas may not grow the image without bound.
pub(crate) const MAX_QUOTA_ENTITIES: usize = 100_000;

/// The quota keys of user and client-id entities, and whether each is a whole number (Kafka's
/// LONG) or a DOUBLE.
const KEYS: &[(&str, bool)] = &[
    (PRODUCER_BYTE_RATE, true),
    (CONSUMER_BYTE_RATE, true),
    (REQUEST_PERCENTAGE, false),
    (CONTROLLER_MUTATION_RATE, false),
];

/// A quota entity: entity type ("user", "client-id") to name, `None` being the default.
pub(crate) type QuotaEntity = BTreeMap<String, Option<String>>;

/// A quota value; compared bit for bit so images stay `Eq`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct QuotaValue(pub(crate) f64);

impl PartialEq for QuotaValue {
    fn eq(&self, other: &QuotaValue) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for QuotaValue {}

/// One part of an entity to look up: its type and name (`None`: the default).
type EntityRef<'a> = (&'a str, Option<&'a str>);

/// Every entity's quotas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClientQuotas {
    by_entity: BTreeMap<QuotaEntity, BTreeMap<String, QuotaValue>>,
}

impl ClientQuotas {
    pub(crate) fn is_empty(&self) -> bool {
        self.by_entity.is_empty()
    }

    pub(crate) fn apply(&mut self, record: &MetadataRecord) -> Result<(), ApplyError> {
        let MetadataRecord::ClientQuota {
            entity,
            key,
            value,
            remove,
        } = record
        else {
            return Err(ApplyError(format!("not a client quota record: {record:?}")));
        };
        let entity: QuotaEntity = entity.iter().cloned().collect();
        if *remove {
            if let Some(quotas) = self.by_entity.get_mut(&entity) {
                quotas.remove(key);
                if quotas.is_empty() {
                    self.by_entity.remove(&entity);
                }
            }
        } else {
            self.by_entity.entry(entity).or_default().insert(key.clone(), *value);
        }
        Ok(())
    }

    pub(crate) fn to_records(&self) -> impl Iterator<Item = MetadataRecord> + '_ {
        self.by_entity.iter().flat_map(|(entity, quotas)| {
            quotas.iter().map(move |(key, value)| MetadataRecord::ClientQuota {
                entity: entity.iter().map(|(t, n)| (t.clone(), n.clone())).collect(),
                key: key.clone(),
                value: *value,
                remove: false,
            })
        })
    }

    fn get(&self, entity: &[EntityRef], key: &str) -> Option<f64> {
        let entity: QuotaEntity = entity
            .iter()
            .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
            .collect();
        self.by_entity.get(&entity)?.get(key).map(|v| v.0)
    }

    /// The quota `key` of a connection of `user` (None: not authenticated, Kafka's ANONYMOUS
    /// has no user quotas of its own but the defaults) with `client_id`, as Kafka's
    /// `DefaultQuotaCallback` finds it: user and client id, user and default client, user,
    /// default user and client id, default user and default client, default user, client id,
    /// default client. Returns the quota and the (user, client id) it is shared by.
    pub(crate) fn quota_for(&self, user: &str, client_id: &str, key: &str) -> Option<(f64, QuotaSharer)> {
        let u = Some(user);
        let c = Some(client_id);
        let levels: [(Vec<EntityRef>, QuotaSharer); 8] = [
            (vec![(USER, u), (CLIENT_ID, c)], QuotaSharer::both(user, client_id)),
            (vec![(USER, u), (CLIENT_ID, None)], QuotaSharer::both(user, client_id)),
            (vec![(USER, u)], QuotaSharer::user(user)),
            (vec![(USER, None), (CLIENT_ID, c)], QuotaSharer::both(user, client_id)),
            (
                vec![(USER, None), (CLIENT_ID, None)],
                QuotaSharer::both(user, client_id),
            ),
            (vec![(USER, None)], QuotaSharer::user(user)),
            (vec![(CLIENT_ID, c)], QuotaSharer::client(client_id)),
            (vec![(CLIENT_ID, None)], QuotaSharer::client(client_id)),
        ];
        levels
            .into_iter()
            .find_map(|(entity, sharer)| self.get(&entity, key).map(|q| (q, sharer)))
    }
}

/// Who shares one quota's window (Kafka's quota metric tags): the connections of this user
/// with this client id, of this user, or with this client id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct QuotaSharer {
    pub(crate) user: String,
    pub(crate) client_id: String,
}

impl QuotaSharer {
    fn both(user: &str, client_id: &str) -> QuotaSharer {
        QuotaSharer {
            user: user.into(),
            client_id: client_id.into(),
        }
    }

    fn user(user: &str) -> QuotaSharer {
        QuotaSharer::both(user, "")
    }

    fn client(client_id: &str) -> QuotaSharer {
        QuotaSharer::both("", client_id)
    }
}

/// Why an entity's change or a describe filter was refused: Kafka's INVALID_REQUEST (or
/// UNSUPPORTED_VERSION for an unknown entity type in a filter), with its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub(crate) enum QuotaError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    UnsupportedEntityType(String),
}

fn invalid(s: impl Into<String>) -> QuotaError {
    QuotaError::Invalid(s.into())
}

/// One entity's requested changes: key to new value, `None` removing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct QuotaAlteration {
    pub(crate) entity: Vec<(String, Option<String>)>,
    pub(crate) ops: Vec<(String, Option<f64>)>,
}

/// Kafka's checks of an entity: not empty, known types each once, names not empty.
fn check_entity(entity: &[(String, Option<String>)]) -> Result<QuotaEntity, QuotaError> {
    if entity.is_empty() {
        return Err(invalid("Invalid empty client quota entity"));
    }
    let mut out = QuotaEntity::new();
    for (entity_type, name) in entity {
        if out.contains_key(entity_type) {
            return Err(invalid(format!(
                "Invalid client quota entity, duplicate entity entry {entity_type}"
            )));
        }
        if entity_type == IP {
            return Err(invalid(
                "IP quotas (connection_creation_rate) are not supported by this broker",
            ));
        }
        if entity_type != USER && entity_type != CLIENT_ID {
            return Err(invalid(format!("Unhandled client quota entity type: {entity_type}")));
        }
        if name.as_deref() == Some("") {
            return Err(invalid(format!("Empty {entity_type} not supported")));
        }
        out.insert(entity_type.clone(), name.clone());
    }
    Ok(out)
}

/// Kafka's check of one key's value (`validateQuotaKeyValue`).
fn check_value(key: &str, value: f64) -> Result<(), QuotaError> {
    let Some(&(_, whole)) = KEYS.iter().find(|(k, _)| *k == key) else {
        return Err(invalid(format!("Invalid configuration key {key}")));
    };
    if value.is_nan() || value <= 0.0 {
        return Err(invalid(format!("Quota {key} must be greater than 0")));
    }
    // Kafka takes an infinite DOUBLE; the metadata log's JSON cannot hold one (it would
    // become null and stop every node's replay), so it is refused.
    if value.is_infinite() {
        return Err(invalid(format!("Quota {key} must be a finite number")));
    }
    if whole && value > i64::MAX as f64 {
        return Err(invalid(format!("Proposed value for {key} is too large for a LONG.")));
    }
    if whole && (value % 1.0).abs() > 1e-6 {
        return Err(invalid(format!("{key} cannot be a fractional value.")));
    }
    Ok(())
}

/// AlterClientQuotas: the records to commit and each alteration's outcome, in request order.
/// An entity's changes are all or nothing; the same entity twice is refused the second time.
pub(crate) fn plan_alter(
    quotas: &ClientQuotas,
    alterations: &[QuotaAlteration],
) -> (Vec<MetadataRecord>, Vec<Result<(), QuotaError>>) {
    let mut records = Vec::new();
    let mut results = Vec::new();
    let mut seen: Vec<QuotaEntity> = Vec::new();
    let mut entities = quotas.by_entity.len();
    for a in alterations {
        let planned = plan_entity(quotas, a, &seen, entities);
        if let Ok(entity) = check_entity(&a.entity) {
            seen.push(entity);
        }
        match planned {
            Ok((new, grows)) => {
                entities += usize::from(grows);
                records.extend(new);
                results.push(Ok(()));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    (records, results)
}

/// One entity's records, and whether it is a new entity.
fn plan_entity(
    quotas: &ClientQuotas,
    a: &QuotaAlteration,
    seen: &[QuotaEntity],
    entities: usize,
) -> Result<(Vec<MetadataRecord>, bool), QuotaError> {
    let entity = check_entity(&a.entity)?;
    if seen.contains(&entity) {
        return Err(invalid(format!("Ignoring duplicate entity {:?}", a.entity)));
    }
    let mut ops: BTreeMap<&str, Option<f64>> = BTreeMap::new();
    for (key, value) in &a.ops {
        if ops.insert(key.as_str(), *value).is_some() {
            return Err(invalid(format!(
                "Duplicate quota key {key} not updating quota for this entity {:?}",
                a.entity
            )));
        }
    }
    let empty = BTreeMap::new();
    let current = quotas.by_entity.get(&entity).unwrap_or(&empty);
    let mut records = Vec::new();
    for (key, value) in ops {
        let record = |value: f64, remove: bool| MetadataRecord::ClientQuota {
            entity: entity.iter().map(|(t, n)| (t.clone(), n.clone())).collect(),
            key: key.to_string(),
            value: QuotaValue(value),
            remove,
        };
        match value {
            None if current.contains_key(key) => records.push(record(0.0, true)),
            None => {}
            Some(v) => {
                check_value(key, v)?;
                if current.get(key) != Some(&QuotaValue(v)) {
                    records.push(record(v, false));
                }
            }
        }
    }
    let grows = current.is_empty()
        && records
            .iter()
            .any(|r| matches!(r, MetadataRecord::ClientQuota { remove: false, .. }));
    if grows && entities >= MAX_QUOTA_ENTITIES {
        return Err(invalid(format!(
            "The cluster holds quotas for at most {MAX_QUOTA_ENTITIES} entities"
        )));
    }
    Ok((records, grows))
}

/// How a describe filter component matches (Kafka's MATCH_TYPE_*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Match {
    /// This name (`Some`) or the default (`None`).
    Exact(Option<String>),
    /// Any named entity of the type (Kafka's MATCH_TYPE_SPECIFIED).
    Specified,
}

/// One entity and its quotas.
pub(crate) type Described = (Vec<(String, Option<String>)>, Vec<(String, f64)>);

/// DescribeClientQuotas: the entities the filter matches (`strict`: no other entity types).
pub(crate) fn describe(
    quotas: &ClientQuotas,
    components: &[(String, i8, Option<String>)],
    strict: bool,
) -> Result<Vec<Described>, QuotaError> {
    let mut filter: BTreeMap<&str, Match> = BTreeMap::new();
    for (entity_type, match_type, name) in components {
        if entity_type.is_empty() {
            return Err(invalid("Invalid empty entity type."));
        }
        if filter.contains_key(entity_type.as_str()) {
            return Err(invalid(format!(
                "Entity type {entity_type} cannot appear more than once in the filter."
            )));
        }
        if ![USER, CLIENT_ID, IP].contains(&entity_type.as_str()) {
            return Err(QuotaError::UnsupportedEntityType(format!(
                "Unsupported entity type {entity_type}"
            )));
        }
        let m = match (match_type, name) {
            (0, Some(n)) => Match::Exact(Some(n.clone())),
            (0, None) => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_EXACT, but set match string to null.",
                ))
            }
            (1, None) => Match::Exact(None),
            (1, Some(_)) => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.",
                ))
            }
            (2, None) => Match::Specified,
            (2, Some(_)) => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.",
                ))
            }
            (other, _) => return Err(invalid(format!("Unknown match type {other}"))),
        };
        filter.insert(entity_type.as_str(), m);
    }
    if filter.contains_key(IP) && (filter.contains_key(USER) || filter.contains_key(CLIENT_ID)) {
        return Err(invalid(
            "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.",
        ));
    }
    let matches = |entity: &QuotaEntity| {
        (!strict || entity.len() == filter.len())
            && filter.iter().all(|(t, m)| match (entity.get(*t), m) {
                (Some(name), Match::Exact(want)) => name == want,
                (Some(_), Match::Specified) => true,
                (None, _) => false,
            })
    };
    Ok(quotas
        .by_entity
        .iter()
        .filter(|(entity, _)| matches(entity))
        .map(|(entity, values)| {
            (
                entity.iter().map(|(t, n)| (t.clone(), n.clone())).collect(),
                values.iter().map(|(k, v)| (k.clone(), v.0)).collect(),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(parts: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        parts
            .iter()
            .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
            .collect()
    }

    fn set(parts: &[(&str, Option<&str>)], key: &str, value: f64) -> QuotaAlteration {
        QuotaAlteration {
            entity: entity(parts),
            ops: vec![(key.into(), Some(value))],
        }
    }

    fn applied(alterations: &[QuotaAlteration]) -> ClientQuotas {
        let mut q = ClientQuotas::default();
        let (records, results) = plan_alter(&q, alterations);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        for r in &records {
            q.apply(r).unwrap();
        }
        q
    }

    #[test]
    fn precedence_follows_kafkas_default_quota_callback() {
        let q = applied(&[
            set(&[(CLIENT_ID, None)], PRODUCER_BYTE_RATE, 8.0),
            set(&[(CLIENT_ID, Some("app"))], PRODUCER_BYTE_RATE, 7.0),
            set(&[(USER, None)], PRODUCER_BYTE_RATE, 6.0),
            set(&[(USER, Some("alice"))], PRODUCER_BYTE_RATE, 3.0),
            set(
                &[(USER, Some("alice")), (CLIENT_ID, Some("app"))],
                PRODUCER_BYTE_RATE,
                1.0,
            ),
        ]);
        let rate = |u: &str, c: &str| q.quota_for(u, c, PRODUCER_BYTE_RATE).unwrap();
        assert_eq!(rate("alice", "app"), (1.0, QuotaSharer::both("alice", "app")));
        assert_eq!(rate("alice", "other"), (3.0, QuotaSharer::user("alice")));
        assert_eq!(rate("bob", "app"), (6.0, QuotaSharer::user("bob")));
        let no_user_default = applied(&[
            set(&[(CLIENT_ID, None)], PRODUCER_BYTE_RATE, 8.0),
            set(&[(CLIENT_ID, Some("app"))], PRODUCER_BYTE_RATE, 7.0),
        ]);
        assert_eq!(
            no_user_default.quota_for("", "app", PRODUCER_BYTE_RATE),
            Some((7.0, QuotaSharer::client("app")))
        );
        assert_eq!(
            no_user_default.quota_for("bob", "x", PRODUCER_BYTE_RATE),
            Some((8.0, QuotaSharer::client("x")))
        );
        assert_eq!(no_user_default.quota_for("bob", "x", CONSUMER_BYTE_RATE), None);
    }

    #[test]
    fn kafkas_refusals_of_an_alteration() {
        let q = ClientQuotas::default();
        let refused = |a: QuotaAlteration| match plan_alter(&q, &[a]).1.remove(0) {
            Err(QuotaError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(set(&[], PRODUCER_BYTE_RATE, 1.0)),
            "Invalid empty client quota entity"
        );
        assert_eq!(
            refused(set(&[(USER, Some(""))], PRODUCER_BYTE_RATE, 1.0)),
            "Empty user not supported"
        );
        assert_eq!(
            refused(set(&[(USER, None)], "bogus", 1.0)),
            "Invalid configuration key bogus"
        );
        assert_eq!(
            refused(set(&[(USER, None)], PRODUCER_BYTE_RATE, 0.0)),
            "Quota producer_byte_rate must be greater than 0"
        );
        assert_eq!(
            refused(set(&[(USER, None)], CONSUMER_BYTE_RATE, 1.5)),
            "consumer_byte_rate cannot be a fractional value."
        );
        assert!(refused(set(&[("group", None)], PRODUCER_BYTE_RATE, 1.0)).starts_with("Unhandled"));
        assert_eq!(
            refused(set(&[(USER, None)], REQUEST_PERCENTAGE, f64::INFINITY)),
            "Quota request_percentage must be a finite number"
        );
        assert!(refused(set(&[(USER, None)], REQUEST_PERCENTAGE, f64::NAN)).contains("greater than 0"));
        assert!(plan_alter(&q, &[set(&[(USER, None)], REQUEST_PERCENTAGE, 12.5)]).1[0].is_ok());
        // The same entity twice: the second is refused.
        let twice = set(&[(USER, Some("a"))], PRODUCER_BYTE_RATE, 1.0);
        let (records, results) = plan_alter(&q, &[twice.clone(), twice]);
        assert_eq!(records.len(), 1);
        assert!(results[0].is_ok() && results[1].is_err());
    }

    #[test]
    fn removing_and_setting_the_same_value_write_only_changes() {
        let q = applied(&[set(&[(USER, Some("a"))], PRODUCER_BYTE_RATE, 100.0)]);
        assert!(plan_alter(&q, &[set(&[(USER, Some("a"))], PRODUCER_BYTE_RATE, 100.0)])
            .0
            .is_empty());
        let remove = QuotaAlteration {
            entity: entity(&[(USER, Some("a"))]),
            ops: vec![(PRODUCER_BYTE_RATE.into(), None), (CONSUMER_BYTE_RATE.into(), None)],
        };
        let (records, _) = plan_alter(&q, &[remove]);
        assert_eq!(records.len(), 1);
        let mut after = q.clone();
        after.apply(&records[0]).unwrap();
        assert!(after.is_empty());
        let round = {
            let mut r = ClientQuotas::default();
            for rec in q.to_records() {
                r.apply(&rec).unwrap();
            }
            r
        };
        assert_eq!(round, q);
    }

    #[test]
    fn quota_records_survive_the_logs_json() {
        let q = applied(&[set(&[(USER, None), (CLIENT_ID, Some("c"))], REQUEST_PERCENTAGE, 12.5)]);
        for record in q.to_records() {
            let json = serde_json::to_string(&record).unwrap();
            assert_eq!(serde_json::from_str::<MetadataRecord>(&json).unwrap(), record, "{json}");
        }
    }

    #[test]
    fn describe_filters_as_kafka() {
        let q = applied(&[
            set(&[(USER, Some("a"))], PRODUCER_BYTE_RATE, 1.0),
            set(&[(USER, None)], PRODUCER_BYTE_RATE, 2.0),
            set(&[(USER, Some("a")), (CLIENT_ID, Some("c"))], PRODUCER_BYTE_RATE, 3.0),
            set(&[(CLIENT_ID, Some("c"))], CONSUMER_BYTE_RATE, 4.0),
        ]);
        let d = |c: &[(&str, i8, Option<&str>)], strict| {
            let c: Vec<_> = c
                .iter()
                .map(|(t, m, n)| (t.to_string(), *m, n.map(str::to_string)))
                .collect();
            describe(&q, &c, strict).map(|v| v.len())
        };
        assert_eq!(d(&[(USER, 0, Some("a"))], false), Ok(2));
        assert_eq!(d(&[(USER, 0, Some("a"))], true), Ok(1));
        assert_eq!(d(&[(USER, 1, None)], true), Ok(1));
        assert_eq!(d(&[(USER, 2, None)], false), Ok(3));
        assert_eq!(d(&[(CLIENT_ID, 2, None)], true), Ok(1));
        assert_eq!(d(&[], false), Ok(4));
        assert!(matches!(d(&[(USER, 0, None)], false), Err(QuotaError::Invalid(_))));
        assert!(matches!(
            d(&[(USER, 2, None), (USER, 2, None)], false),
            Err(QuotaError::Invalid(_))
        ));
        assert!(matches!(
            d(&[("group", 2, None)], false),
            Err(QuotaError::UnsupportedEntityType(_))
        ));
        assert!(matches!(
            d(&[(IP, 2, None), (USER, 2, None)], false),
            Err(QuotaError::Invalid(_))
        ));
    }
}
