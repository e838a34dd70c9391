//! The decision: may this principal, from this host, do this operation on this resource?
//! Kafka's `StandardAuthorizer` semantics: super users may do anything; otherwise the ACLs
//! whose pattern covers the resource are consulted, a matching DENY wins over any ALLOW, an
//! ALLOW may imply the operation (READ implies DESCRIBE, …), and a resource no ACL covers at
//! all is allowed only with `allow.everyone.if.no.acl.found`. With no authorizer configured
//! every request is allowed, as in Kafka.
//!
//! Pure: the settings are fixed at start, the ACLs come from the metadata image the caller
//! holds. Never does I/O; never counts metrics (the API layer does).

use std::collections::HashSet;

use super::acl::{Acl, Operation, PatternType, Permission, ResourceType, WILDCARD, WILDCARD_PRINCIPAL};
use super::table::AclTable;

/// What users write in `authorizer.class.name` for Kafka's KRaft authorizer.
pub(crate) const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// Who is asking: the connection's principal (`User:alice`) and client address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Requester<'a> {
    pub(crate) principal: &'a str,
    pub(crate) host: &'a str,
}

/// The authorizer's settings: `authorizer.class.name`, `super.users`,
/// `allow.everyone.if.no.acl.found`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Authorizer {
    enabled: bool,
    super_users: HashSet<String>,
    allow_if_no_acl: bool,
}

impl Authorizer {
    /// An empty class name means no authorizer; any other than Kafka's StandardAuthorizer is
    /// refused (Sluice has no plug-ins).
    pub(crate) fn new(class_name: &str, super_users: &str, allow_if_no_acl: bool) -> Result<Authorizer, String> {
        let enabled = match class_name.trim() {
            "" => false,
            STANDARD_AUTHORIZER => true,
            other => {
                return Err(format!(
                    "unsupported authorizer {other:?}: only {STANDARD_AUTHORIZER} is built in"
                ))
            }
        };
        Ok(Authorizer {
            enabled,
            super_users: parse_super_users(super_users)?,
            allow_if_no_acl,
        })
    }

    /// Whether an authorizer is configured (else CreateAcls & co. answer SECURITY_DISABLED).
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn is_super_user(&self, principal: &str) -> bool {
        self.super_users.contains(principal)
    }

    /// May `who` do `op` on the resource `name` of `resource_type`?
    pub(crate) fn authorize(
        &self,
        acls: &AclTable,
        who: Requester<'_>,
        op: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled || self.is_super_user(who.principal) {
            return true;
        }
        let applying = acls.applying_to(resource_type, name);
        if applying.is_empty() {
            return self.allow_if_no_acl;
        }
        let mut allowed = false;
        for acl in applying {
            match entry_result(acl, who, op) {
                Some(Permission::Deny) => return false,
                Some(Permission::Allow) => allowed = true,
                _ => {}
            }
        }
        allowed
    }

    /// May `who` do `op` on some resource of `resource_type`? Kafka's
    /// `Authorizer.authorizeByResourceType`: an ALLOW on a literal or prefix that no DENY of
    /// the same principal covers (an idempotent producer with WRITE on any topic).
    pub(crate) fn authorize_any(
        &self,
        acls: &AclTable,
        who: Requester<'_>,
        op: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if self.authorize(acls, who, op, resource_type, "hardcode") {
            return true;
        }
        let mut deny_literal = HashSet::new();
        let mut deny_prefixed = HashSet::new();
        let mut allows: Vec<&Acl> = Vec::new();
        for acl in acls.of_type(resource_type) {
            let applies = (acl.host == who.host || acl.host == WILDCARD)
                && (acl.principal == who.principal || acl.principal == WILDCARD_PRINCIPAL)
                && (acl.operation == op || acl.operation == Operation::All);
            if !applies {
                continue;
            }
            match (acl.permission, acl.pattern_type) {
                (Permission::Deny, PatternType::Literal) if acl.resource_name == WILDCARD => return false,
                (Permission::Deny, PatternType::Literal) => {
                    deny_literal.insert(acl.resource_name.as_str());
                }
                (Permission::Deny, PatternType::Prefixed) => {
                    deny_prefixed.insert(acl.resource_name.as_str());
                }
                (Permission::Allow, PatternType::Literal) if acl.resource_name == WILDCARD => return true,
                (Permission::Allow, _) => allows.push(acl),
                _ => {}
            }
        }
        allows.into_iter().any(|acl| {
            let literal_denied =
                acl.pattern_type == PatternType::Literal && deny_literal.contains(acl.resource_name.as_str());
            let name = acl.resource_name.as_str();
            let ends = name.char_indices().map(|(i, _)| i).skip(1).chain([name.len()]);
            let prefix_denied = ends.into_iter().any(|end| deny_prefixed.contains(&name[..end]));
            !literal_denied && !prefix_denied
        })
    }

    /// The operations `who` may do on a resource, as an authorized-operations bit field
    /// (bit n set: AclOperation code n allowed), over the operations the type supports.
    pub(crate) fn authorized_operations(
        &self,
        acls: &AclTable,
        who: Requester<'_>,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        Operation::supported_by(resource_type)
            .iter()
            .filter(|op| self.authorize(acls, who, **op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }
}

/// `super.users`: principals separated by semicolons (`User:alice;User:admin`).
fn parse_super_users(list: &str) -> Result<HashSet<String>, String> {
    let mut users = HashSet::new();
    for p in list.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        if !p.split_once(':').is_some_and(|(t, n)| !t.is_empty() && !n.is_empty()) {
            return Err(format!("super.users: {p:?} is not a principal of the form Type:name"));
        }
        users.insert(p.to_string());
    }
    Ok(users)
}

/// What one ACL that covers the resource says about `who` doing `op`: None when it is not
/// about them (another principal, host or operation). Kafka's `StandardAuthorizerData.findResult`.
fn entry_result(acl: &Acl, who: Requester<'_>, op: Operation) -> Option<Permission> {
    if acl.principal != who.principal && acl.principal != WILDCARD_PRINCIPAL {
        return None;
    }
    if acl.host != WILDCARD && acl.host != who.host {
        return None;
    }
    let applies = match acl.permission {
        Permission::Allow => acl.operation.allow_implies(op),
        _ => acl.operation == Operation::All || acl.operation == op,
    };
    applies.then_some(acl.permission)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::super::acl::acl;
    use super::*;
    use Operation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::*;

    const BOB: Requester<'static> = Requester {
        principal: "User:bob",
        host: "10.0.0.1",
    };

    fn table(acls: &[Acl]) -> AclTable {
        let mut t = AclTable::default();
        for (i, a) in acls.iter().enumerate() {
            t.insert(Uuid::from_u128(i as u128 + 1), a.clone());
        }
        t
    }

    fn standard(super_users: &str, allow_if_no_acl: bool) -> Authorizer {
        Authorizer::new(STANDARD_AUTHORIZER, super_users, allow_if_no_acl).unwrap()
    }

    #[test]
    fn no_authorizer_allows_everything() {
        let a = Authorizer::new("", "", false).unwrap();
        assert!(!a.enabled());
        assert!(a.authorize(&AclTable::default(), BOB, Write, Topic, "t"));
    }

    #[test]
    fn unknown_authorizer_classes_and_malformed_super_users_are_refused() {
        assert!(Authorizer::new("com.example.MyAuthorizer", "", false).is_err());
        assert!(Authorizer::new(STANDARD_AUTHORIZER, "alice", false).is_err());
    }

    #[test]
    fn without_acls_access_is_denied_unless_allow_everyone_if_no_acl_found() {
        let empty = AclTable::default();
        assert!(!standard("", false).authorize(&empty, BOB, Read, Topic, "t"));
        assert!(standard("", true).authorize(&empty, BOB, Read, Topic, "t"));
    }

    #[test]
    fn allow_everyone_if_no_acl_found_does_not_apply_once_the_resource_has_any_acl() {
        let t = table(&[acl(Topic, "t", Literal, "User:alice", Read, Allow)]);
        let a = standard("", true);
        assert!(
            !a.authorize(&t, BOB, Read, Topic, "t"),
            "an ACL for someone else covers t"
        );
        assert!(a.authorize(&t, BOB, Read, Topic, "other"));
    }

    #[test]
    fn super_users_are_allowed_even_when_denied() {
        let t = table(&[acl(Topic, "*", Literal, "User:*", All, Deny)]);
        let a = standard("User:alice; User:bob", false);
        assert!(a.authorize(&t, BOB, Write, Topic, "t"));
        assert!(!a.authorize(
            &t,
            Requester {
                principal: "User:carol",
                host: "h"
            },
            Write,
            Topic,
            "t"
        ));
    }

    #[test]
    fn deny_wins_over_allow() {
        let t = table(&[
            acl(Topic, "t", Literal, "User:bob", Read, Allow),
            acl(Topic, "t", Prefixed, "User:bob", Read, Deny),
        ]);
        assert!(!standard("", false).authorize(&t, BOB, Read, Topic, "t"));
    }

    #[test]
    fn prefixed_acls_cover_names_that_start_with_the_prefix_literal_only_the_name() {
        let t = table(&[
            acl(Topic, "orders-", Prefixed, "User:bob", Write, Allow),
            acl(Topic, "audit", Literal, "User:bob", Write, Allow),
        ]);
        let a = standard("", false);
        assert!(a.authorize(&t, BOB, Write, Topic, "orders-eu"));
        assert!(a.authorize(&t, BOB, Write, Topic, "audit"));
        assert!(!a.authorize(&t, BOB, Write, Topic, "audit-2"));
        assert!(!a.authorize(&t, BOB, Write, Topic, "orders"));
    }

    #[test]
    fn wildcard_resource_and_wildcard_principal_match_everything() {
        let t = table(&[acl(Group, "*", Literal, "User:*", Read, Allow)]);
        assert!(standard("", false).authorize(&t, BOB, Read, Group, "any-group"));
    }

    #[test]
    fn allow_implies_describe_but_deny_of_read_does_not_deny_describe() {
        let a = standard("", false);
        let t = table(&[acl(Topic, "t", Literal, "User:bob", Write, Allow)]);
        assert!(a.authorize(&t, BOB, Describe, Topic, "t"));
        assert!(!a.authorize(&t, BOB, Read, Topic, "t"));
        let t = table(&[
            acl(Topic, "t", Literal, "User:bob", Describe, Allow),
            acl(Topic, "t", Literal, "User:bob", Read, Deny),
        ]);
        assert!(a.authorize(&t, BOB, Describe, Topic, "t"));
        let t = table(&[acl(Topic, "t", Literal, "User:bob", AlterConfigs, Allow)]);
        assert!(a.authorize(&t, BOB, DescribeConfigs, Topic, "t"));
        assert!(!a.authorize(&t, BOB, Describe, Topic, "t"));
    }

    #[test]
    fn deny_all_denies_every_operation_and_allow_all_allows_every_operation() {
        let a = standard("", false);
        let t = table(&[acl(Topic, "t", Literal, "User:bob", All, Allow)]);
        assert!(a.authorize(&t, BOB, Delete, Topic, "t"));
        let t = table(&[
            acl(Topic, "t", Literal, "User:bob", All, Allow),
            acl(Topic, "t", Literal, "User:*", All, Deny),
        ]);
        assert!(!a.authorize(&t, BOB, Describe, Topic, "t"));
    }

    #[test]
    fn host_must_match_unless_the_acl_says_any_host() {
        let a = standard("", false);
        let mut entry = acl(Topic, "t", Literal, "User:bob", Read, Allow);
        entry.host = "10.0.0.2".into();
        let t = table(&[entry]);
        assert!(!a.authorize(&t, BOB, Read, Topic, "t"));
        assert!(a.authorize(
            &t,
            Requester {
                host: "10.0.0.2",
                ..BOB
            },
            Read,
            Topic,
            "t"
        ));
    }

    #[test]
    fn authorize_any_finds_an_allowed_resource_not_covered_by_a_deny() {
        let a = standard("", false);
        let t = table(&[acl(Topic, "orders", Prefixed, "User:bob", Write, Allow)]);
        assert!(a.authorize_any(&t, BOB, Write, Topic));
        let t = table(&[
            acl(Topic, "orders", Prefixed, "User:bob", Write, Allow),
            acl(Topic, "ord", Prefixed, "User:bob", Write, Deny),
        ]);
        assert!(!a.authorize_any(&t, BOB, Write, Topic));
        let t = table(&[
            acl(Topic, "a", Literal, "User:bob", Write, Allow),
            acl(Topic, "*", Literal, "User:bob", Write, Deny),
        ]);
        assert!(!a.authorize_any(&t, BOB, Write, Topic));
        assert!(!a.authorize_any(&AclTable::default(), BOB, Write, Topic));
    }

    #[test]
    fn authorized_operations_lists_allowed_and_implied_operations() {
        let a = standard("", false);
        let t = table(&[acl(Topic, "t", Literal, "User:bob", Read, Allow)]);
        let bits = a.authorized_operations(&t, BOB, Topic, "t");
        assert_eq!(bits, (1 << Read.code()) | (1 << Describe.code()));
        let all = standard("User:bob", false).authorized_operations(&t, BOB, Cluster, "kafka-cluster");
        assert_eq!(all.count_ones() as usize, Operation::supported_by(Cluster).len());
    }
}
