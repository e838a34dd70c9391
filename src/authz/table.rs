//! The ACLs of the cluster as replaying the metadata log leaves them: each under the id its
//! AccessControlEntryRecord gave it, indexed by resource type and pattern so a decision looks
//! at the entries that can apply to one resource only (the exact name, the `*` literal, and
//! the prefixes of the name), as Kafka's `StandardAuthorizerData` does with its sorted set.
//!
//! Pure data; lives in the metadata image (copied on write: a change builds a new table).

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::acl::{Acl, AclFilter, PatternType, ResourceType, WILDCARD};

/// The most ACLs the image holds; CreateAcls beyond it is refused (a bound on what clients
/// can make every node keep in memory).
pub(crate) const MAX_ACLS: usize = 100_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AclTable {
    by_id: BTreeMap<Uuid, Acl>,
    /// (resource type, name) → ids of the LITERAL entries on that exact name.
    literal: HashMap<(ResourceType, String), Vec<Uuid>>,
    /// resource type → prefix → ids of the PREFIXED entries with that prefix.
    prefixed: HashMap<ResourceType, BTreeMap<String, Vec<Uuid>>>,
}

impl AclTable {
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Every ACL with its id, in id order (a snapshot writes them in this order).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Uuid, &Acl)> {
        self.by_id.iter()
    }

    /// The id of an ACL equal to `acl`, if the table has one (CreateAcls of an existing ACL
    /// changes nothing, as in Kafka).
    pub(crate) fn id_of(&self, acl: &Acl) -> Option<Uuid> {
        let ids = match acl.pattern_type {
            PatternType::Literal => self.literal.get(&(acl.resource_type, acl.resource_name.clone())),
            _ => self
                .prefixed
                .get(&acl.resource_type)
                .and_then(|m| m.get(&acl.resource_name)),
        }?;
        ids.iter().copied().find(|id| self.by_id.get(id) == Some(acl))
    }

    /// The ACLs `filter` selects, with their ids.
    pub(crate) fn matching<'a>(&'a self, filter: &'a AclFilter) -> impl Iterator<Item = (&'a Uuid, &'a Acl)> + 'a {
        self.by_id.iter().filter(|(_, acl)| filter.matches(acl))
    }

    /// Adds an ACL under `id`; false when the id is taken (a record that does not apply).
    pub(crate) fn insert(&mut self, id: Uuid, acl: Acl) -> bool {
        if self.by_id.contains_key(&id) {
            return false;
        }
        match acl.pattern_type {
            PatternType::Literal => self
                .literal
                .entry((acl.resource_type, acl.resource_name.clone()))
                .or_default()
                .push(id),
            _ => self
                .prefixed
                .entry(acl.resource_type)
                .or_default()
                .entry(acl.resource_name.clone())
                .or_default()
                .push(id),
        }
        self.by_id.insert(id, acl);
        true
    }

    /// Removes the ACL with `id`; None when there is none.
    pub(crate) fn remove(&mut self, id: &Uuid) -> Option<Acl> {
        let acl = self.by_id.remove(id)?;
        match acl.pattern_type {
            PatternType::Literal => {
                let key = (acl.resource_type, acl.resource_name.clone());
                if let Some(ids) = self.literal.get_mut(&key) {
                    ids.retain(|i| i != id);
                    if ids.is_empty() {
                        self.literal.remove(&key);
                    }
                }
            }
            _ => {
                if let Some(by_prefix) = self.prefixed.get_mut(&acl.resource_type) {
                    if let Some(ids) = by_prefix.get_mut(&acl.resource_name) {
                        ids.retain(|i| i != id);
                        if ids.is_empty() {
                            by_prefix.remove(&acl.resource_name);
                        }
                    }
                    if by_prefix.is_empty() {
                        self.prefixed.remove(&acl.resource_type);
                    }
                }
            }
        }
        Some(acl)
    }

    /// Every ACL whose pattern covers the resource `name` of `resource_type`: LITERAL on the
    /// name, LITERAL `*`, and PREFIXED on any prefix of the name.
    pub(crate) fn applying_to<'a>(&'a self, resource_type: ResourceType, name: &str) -> Vec<&'a Acl> {
        let mut ids: Vec<&Uuid> = Vec::new();
        for key in [name, WILDCARD] {
            if let Some(found) = self.literal.get(&(resource_type, key.to_string())) {
                ids.extend(found);
            }
            if name == WILDCARD {
                break;
            }
        }
        if let Some(by_prefix) = self.prefixed.get(&resource_type) {
            // Only the prefixes of `name` can apply: walk its char boundaries.
            let ends = name.char_indices().map(|(i, _)| i).skip(1).chain([name.len()]);
            for end in ends {
                if let Some(found) = by_prefix.get(&name[..end]) {
                    ids.extend(found);
                }
            }
        }
        ids.into_iter().filter_map(|id| self.by_id.get(id)).collect()
    }

    /// Every ACL on `resource_type` (for decisions on any resource of a type).
    pub(crate) fn of_type(&self, resource_type: ResourceType) -> impl Iterator<Item = &Acl> {
        self.by_id.values().filter(move |a| a.resource_type == resource_type)
    }
}

#[cfg(test)]
mod tests {
    use super::super::acl::{Operation, Permission};
    use super::*;

    fn topic(name: &str, pt: PatternType) -> Acl {
        Acl {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: pt,
            principal: "User:bob".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn applying_to_finds_exact_wildcard_and_prefix_entries_only() {
        let mut t = AclTable::default();
        let entries = [
            topic("orders", PatternType::Literal),
            topic("*", PatternType::Literal),
            topic("ord", PatternType::Prefixed),
            topic("orders", PatternType::Prefixed),
            topic("orders-x", PatternType::Prefixed),
            topic("ord", PatternType::Literal),
        ];
        for (i, a) in entries.iter().enumerate() {
            assert!(t.insert(Uuid::from_u128(i as u128 + 1), a.clone()));
        }
        let mut got: Vec<(String, PatternType)> = t
            .applying_to(ResourceType::Topic, "orders")
            .into_iter()
            .map(|a| (a.resource_name.clone(), a.pattern_type))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("*".into(), PatternType::Literal),
                ("ord".into(), PatternType::Prefixed),
                ("orders".into(), PatternType::Literal),
                ("orders".into(), PatternType::Prefixed),
            ]
        );
        assert!(t.applying_to(ResourceType::Group, "orders").is_empty());
    }

    #[test]
    fn remove_drops_the_entry_from_every_index() {
        let mut t = AclTable::default();
        let id = Uuid::from_u128(7);
        t.insert(id, topic("pre", PatternType::Prefixed));
        assert!(!t.insert(id, topic("other", PatternType::Literal)), "ids are unique");
        assert_eq!(t.id_of(&topic("pre", PatternType::Prefixed)), Some(id));
        assert!(t.remove(&id).is_some());
        assert!(t.applying_to(ResourceType::Topic, "prefix").is_empty());
        assert!(t.is_empty());
        assert_eq!(t, AclTable::default());
    }
}
