//! What an ACL is: Kafka's resource types, pattern types, operations and permission types
//! (with their wire codes), one access control entry bound to a resource pattern, and the
//! filters CreateAcls/DescribeAcls/DeleteAcls use to select entries (`ANY`, `MATCH`).
//!
//! Pure data and matching rules, after Kafka's `ResourcePattern`, `AccessControlEntry`,
//! `ResourcePatternFilter` and `AccessControlEntryFilter`. No I/O.

use serde::{Deserialize, Serialize};

/// The name of the one CLUSTER resource.
pub(crate) const CLUSTER_NAME: &str = "kafka-cluster";
/// A literal resource name or host that matches every name or host.
pub(crate) const WILDCARD: &str = "*";
/// A principal that matches every user.
pub(crate) const WILDCARD_PRINCIPAL: &str = "User:*";

/// Declares a Kafka enum with its wire codes and the names Kafka's tools print.
macro_rules! kafka_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$m])*
        /// Stored in the metadata log as its Kafka code (an int8, as Kafka's records hold it).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(into = "i8", try_from = "i8")]
        pub(crate) enum $name { $($variant),* }

        impl From<$name> for i8 {
            fn from(v: $name) -> i8 {
                v.code()
            }
        }

        impl TryFrom<i8> for $name {
            type Error = String;
            fn try_from(code: i8) -> Result<$name, String> {
                $name::from_code(code).ok_or_else(|| format!("unknown {} code {code}", stringify!($name)))
            }
        }

        impl $name {
            pub(crate) fn code(self) -> i8 {
                match self { $($name::$variant => $code),* }
            }
            /// None: a code Kafka does not define (its UNKNOWN).
            pub(crate) fn from_code(code: i8) -> Option<$name> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }
            #[allow(dead_code)] // Not every enum's name is printed.
            pub(crate) fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }
    };
}

kafka_enum!(
    /// Kafka's `ResourceType` (ANY only in filters).
    ResourceType {
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
);

kafka_enum!(
    /// Kafka's `PatternType` (ANY and MATCH only in filters).
    PatternType {
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
);

kafka_enum!(
    /// Kafka's `AclOperation` (ANY only in filters; ALL matches every operation).
    Operation {
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
);

kafka_enum!(
    /// Kafka's `AclPermissionType` (ANY only in filters).
    Permission {
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
);

impl Operation {
    /// Whether an ALLOW entry for `self` also allows `wanted` (Kafka's implications: READ,
    /// WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS; ALL
    /// implies everything). DENY entries deny only their own operation (or ALL).
    pub(crate) fn allow_implies(self, wanted: Operation) -> bool {
        use Operation::*;
        self == All
            || self == wanted
            || (wanted == Describe && matches!(self, Read | Write | Delete | Alter))
            || (wanted == DescribeConfigs && self == AlterConfigs)
    }

    /// The operations an authorized-operations field reports for a resource type (Kafka's
    /// `AclEntry.supportedOperations`).
    pub(crate) fn supported_by(resource_type: ResourceType) -> &'static [Operation] {
        use Operation::*;
        match resource_type {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Any => &[],
        }
    }
}

/// One ACL: an access control entry bound to a resource pattern (Kafka's `AclBinding`, the
/// content of an `AccessControlEntryRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Acl {
    pub(crate) resource_type: ResourceType,
    pub(crate) resource_name: String,
    pub(crate) pattern_type: PatternType,
    /// `Type:name`, e.g. `User:alice`, or `User:*`.
    pub(crate) principal: String,
    /// A client address, or `*`.
    pub(crate) host: String,
    pub(crate) operation: Operation,
    #[serde(rename = "permission_type")]
    pub(crate) permission: Permission,
}

/// Why an ACL or a filter is refused (Kafka answers INVALID_REQUEST for all of these).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub(crate) enum AclError {
    #[error("{0}")]
    Invalid(String),
    /// More ACLs than the metadata image keeps.
    #[error("the cluster already holds the maximum of {0} ACLs")]
    TooMany(usize),
}

impl Acl {
    /// Kafka's checks of a new binding (`AclControlManager.validateNewAcl`, and the broker's
    /// own checks of the principal and the CLUSTER name).
    pub(crate) fn validate(&self) -> Result<(), AclError> {
        let invalid = |m: String| Err(AclError::Invalid(m));
        if self.resource_type == ResourceType::Any {
            return invalid(format!("Invalid resourceType {}", self.resource_type.name()));
        }
        if !matches!(self.pattern_type, PatternType::Literal | PatternType::Prefixed) {
            return invalid(format!("Invalid patternType {}", self.pattern_type.name()));
        }
        if self.operation == Operation::Any {
            return invalid("Invalid operation ANY".into());
        }
        if self.permission == Permission::Any {
            return invalid("Invalid permissionType ANY".into());
        }
        if self.resource_name.is_empty() {
            return invalid("Resource name should not be empty".into());
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return invalid(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
            _ => invalid(format!(
                "Could not parse principal from `{}` (no colon is found separating the principal type from the principal name).",
                self.principal
            )),
        }
    }
}

/// Selects ACLs (Kafka's `AclBindingFilter`): `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AclFilter {
    pub(crate) resource_type: ResourceType,
    pub(crate) resource_name: Option<String>,
    pub(crate) pattern_type: PatternType,
    pub(crate) principal: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) operation: Operation,
    pub(crate) permission: Permission,
}

impl AclFilter {
    /// Whether `acl` is selected: Kafka's `ResourcePatternFilter.matches` (MATCH selects the
    /// literal, wildcard and prefixed patterns that would apply to the named resource) and
    /// `AccessControlEntryFilter.matches`.
    pub(crate) fn matches(&self, acl: &Acl) -> bool {
        self.matches_pattern(acl) && self.matches_entry(acl)
    }

    fn matches_pattern(&self, acl: &Acl) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != acl.resource_type {
            return false;
        }
        let any_pattern = matches!(self.pattern_type, PatternType::Any | PatternType::Match);
        if !any_pattern && self.pattern_type != acl.pattern_type {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == acl.pattern_type {
            return *name == acl.resource_name;
        }
        match acl.pattern_type {
            PatternType::Literal => *name == acl.resource_name || acl.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&acl.resource_name),
            PatternType::Any | PatternType::Match => false,
        }
    }

    fn matches_entry(&self, acl: &Acl) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == Operation::Any || self.operation == acl.operation)
            && (self.permission == Permission::Any || self.permission == acl.permission)
    }

    /// Kafka's `AclControlManager.validateFilter`: no UNKNOWN part (unknown codes are
    /// refused while decoding, so only what decodes is left to check here).
    pub(crate) fn validate(&self) -> Result<(), AclError> {
        Ok(())
    }
}

/// An ACL from any host, for tests.
#[cfg(test)]
pub(crate) fn acl(
    rt: ResourceType,
    name: &str,
    pt: PatternType,
    principal: &str,
    op: Operation,
    perm: Permission,
) -> Acl {
    Acl {
        resource_type: rt,
        resource_name: name.into(),
        pattern_type: pt,
        principal: principal.into(),
        host: "*".into(),
        operation: op,
        permission: perm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(rt: ResourceType, name: Option<&str>, pt: PatternType) -> AclFilter {
        AclFilter {
            resource_type: rt,
            resource_name: name.map(Into::into),
            pattern_type: pt,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        }
    }

    #[test]
    fn match_filter_selects_literal_wildcard_and_prefixes_that_apply() {
        use PatternType::*;
        let f = filter(ResourceType::Topic, Some("orders-eu"), Match);
        let topic = |name, pt| {
            acl(
                ResourceType::Topic,
                name,
                pt,
                "User:bob",
                Operation::Read,
                Permission::Allow,
            )
        };
        assert!(f.matches(&topic("orders-eu", Literal)));
        assert!(f.matches(&topic("*", Literal)));
        assert!(f.matches(&topic("orders-", Prefixed)));
        assert!(f.matches(&topic("orders-eu", Prefixed)));
        assert!(!f.matches(&topic("orders", Literal)));
        assert!(!f.matches(&topic("orders-eu-1", Prefixed)));
        assert!(!f.matches(&acl(
            ResourceType::Group,
            "orders-eu",
            Literal,
            "User:bob",
            Operation::Read,
            Permission::Allow
        )));
    }

    #[test]
    fn any_filter_selects_exact_names_of_every_pattern_type() {
        use PatternType::*;
        let f = filter(ResourceType::Any, Some("orders"), Any);
        let topic = |name, pt| {
            acl(
                ResourceType::Topic,
                name,
                pt,
                "User:bob",
                Operation::Read,
                Permission::Allow,
            )
        };
        assert!(f.matches(&topic("orders", Literal)));
        assert!(f.matches(&topic("orders", Prefixed)));
        assert!(!f.matches(&topic("*", Literal)));
        assert!(!f.matches(&topic("ord", Prefixed)));
    }

    #[test]
    fn entry_filter_matches_principal_host_operation_and_permission() {
        let a = acl(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            "User:bob",
            Operation::Read,
            Permission::Allow,
        );
        let mut f = filter(ResourceType::Any, None, PatternType::Any);
        assert!(f.matches(&a));
        f.principal = Some("User:alice".into());
        assert!(!f.matches(&a));
        f.principal = Some("User:bob".into());
        f.operation = Operation::Write;
        assert!(!f.matches(&a));
        f.operation = Operation::Read;
        f.permission = Permission::Deny;
        assert!(!f.matches(&a));
    }

    #[test]
    fn new_acls_are_validated_as_kafka_does() {
        let ok = acl(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            "User:bob",
            Operation::Read,
            Permission::Allow,
        );
        assert!(ok.validate().is_ok());
        let bad = [
            Acl {
                pattern_type: PatternType::Match,
                ..ok.clone()
            },
            Acl {
                operation: Operation::Any,
                ..ok.clone()
            },
            Acl {
                permission: Permission::Any,
                ..ok.clone()
            },
            Acl {
                resource_name: String::new(),
                ..ok.clone()
            },
            Acl {
                principal: "bob".into(),
                ..ok.clone()
            },
            Acl {
                resource_type: ResourceType::Cluster,
                ..ok.clone()
            },
        ];
        for acl in bad {
            assert!(acl.validate().is_err(), "{acl:?}");
        }
    }

    #[test]
    fn allow_implications_follow_kafka() {
        use Operation::*;
        for op in [Read, Write, Delete, Alter, Describe, All] {
            assert!(op.allow_implies(Describe), "{op:?}");
        }
        assert!(!Create.allow_implies(Describe));
        assert!(AlterConfigs.allow_implies(DescribeConfigs));
        assert!(!DescribeConfigs.allow_implies(AlterConfigs));
        assert!(!Read.allow_implies(Write));
    }
}
