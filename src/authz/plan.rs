//! What the active controller writes for CreateAcls and DeleteAcls (Kafka's
//! `AclControlManager`): an AccessControlEntryRecord with a fresh id per new ACL (none for an
//! ACL that already exists), a RemoveAccessControlEntryRecord per ACL a filter selects. Every
//! node replays them into its image's ACL table.
//!
//! Pure planning against an image: no I/O.

use std::collections::HashSet;

use uuid::Uuid;

use super::acl::{Acl, AclError, AclFilter};
use super::table::{AclTable, MAX_ACLS};
use crate::metadata::MetadataRecord;

/// One DeleteAcls filter's outcome: the ACLs it removed, or why it was refused.
pub(crate) type Deleted = Result<Vec<Acl>, AclError>;

/// The records creating `acls` (in request order, each checked alone) and each one's outcome.
pub(crate) fn plan_create_acls(
    table: &AclTable,
    acls: &[Acl],
    mut new_id: impl FnMut() -> Uuid,
) -> (Vec<MetadataRecord>, Vec<Result<(), AclError>>) {
    let mut records = Vec::new();
    let mut results = Vec::new();
    let mut planned: HashSet<&Acl> = HashSet::new();
    for acl in acls {
        let outcome = acl.validate().and_then(|()| {
            if table.id_of(acl).is_some() || planned.contains(acl) {
                return Ok(());
            }
            if table.len() + planned.len() >= MAX_ACLS {
                return Err(AclError::TooMany(MAX_ACLS));
            }
            planned.insert(acl);
            records.push(MetadataRecord::AccessControlEntry {
                id: new_id(),
                acl: acl.clone(),
            });
            Ok(())
        });
        results.push(outcome);
    }
    (records, results)
}

/// The records removing every ACL each filter selects, and each filter's outcome (an ACL two
/// filters select is removed once and reported by both, as in Kafka).
pub(crate) fn plan_delete_acls(table: &AclTable, filters: &[AclFilter]) -> (Vec<MetadataRecord>, Vec<Deleted>) {
    let mut removed: HashSet<Uuid> = HashSet::new();
    let mut records = Vec::new();
    let mut results = Vec::new();
    for filter in filters {
        let outcome = filter.validate().map(|()| {
            let mut deleted = Vec::new();
            for (id, acl) in table.matching(filter) {
                if removed.insert(*id) {
                    records.push(MetadataRecord::RemoveAccessControlEntry { id: *id });
                }
                deleted.push(acl.clone());
            }
            deleted
        });
        results.push(outcome);
    }
    (records, results)
}

/// DescribeAcls' answer from the local image.
pub(crate) fn describe_acls(table: &AclTable, filter: &AclFilter) -> Vec<Acl> {
    table.matching(filter).map(|(_, acl)| acl.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::acl::{Operation, PatternType, Permission, ResourceType};
    use super::*;

    fn acl(name: &str, op: Operation) -> Acl {
        Acl {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: PatternType::Literal,
            principal: "User:bob".into(),
            host: "*".into(),
            operation: op,
            permission: Permission::Allow,
        }
    }

    fn apply(table: &mut AclTable, records: &[MetadataRecord]) {
        for r in records {
            match r {
                MetadataRecord::AccessControlEntry { id, acl } => assert!(table.insert(*id, acl.clone())),
                MetadataRecord::RemoveAccessControlEntry { id } => assert!(table.remove(id).is_some()),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn ids() -> impl FnMut() -> Uuid {
        let mut n = 0u128;
        move || {
            n += 1;
            Uuid::from_u128(n)
        }
    }

    #[test]
    fn creating_an_existing_or_repeated_acl_writes_it_once_and_succeeds() {
        let mut table = AclTable::default();
        let a = acl("t", Operation::Read);
        let (records, results) = plan_create_acls(&table, &[a.clone(), a.clone()], ids());
        assert_eq!(records.len(), 1);
        assert!(results.iter().all(Result::is_ok));
        apply(&mut table, &records);
        let (records, results) = plan_create_acls(&table, &[a], ids());
        assert!(records.is_empty() && results[0].is_ok());
    }

    #[test]
    fn an_invalid_acl_is_refused_alone() {
        let bad = Acl {
            resource_name: String::new(),
            ..acl("t", Operation::Read)
        };
        let (records, results) = plan_create_acls(&AclTable::default(), &[bad, acl("t", Operation::Write)], ids());
        assert_eq!(records.len(), 1);
        assert!(results[0].is_err() && results[1].is_ok());
    }

    #[test]
    fn delete_removes_what_each_filter_selects_once() {
        let mut table = AclTable::default();
        let (records, _) = plan_create_acls(&table, &[acl("t", Operation::Read), acl("u", Operation::Read)], ids());
        apply(&mut table, &records);
        let every = AclFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        };
        let only_t = AclFilter {
            resource_name: Some("t".into()),
            ..every.clone()
        };
        let (records, results) = plan_delete_acls(&table, &[only_t, every]);
        assert_eq!(records.len(), 2);
        assert_eq!(results[0].as_ref().unwrap().len(), 1);
        assert_eq!(results[1].as_ref().unwrap().len(), 2);
        apply(&mut table, &records);
        assert!(table.is_empty());
    }

    #[test]
    fn acl_records_round_trip_through_json_with_kafka_codes() {
        let r = MetadataRecord::AccessControlEntry {
            id: Uuid::from_u128(1),
            acl: acl("t", Operation::Read),
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains("\"operation\":3") && json.contains("\"permission_type\":3"),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<MetadataRecord>(&json).unwrap(), r);
    }
}
