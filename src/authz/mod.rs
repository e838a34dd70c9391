//! Authorization with Kafka's `StandardAuthorizer` semantics: what an ACL is
//! ([`acl`]), the ACL table the metadata image holds ([`table`]), the decision
//! ([`authorizer`]), and what the controller writes for CreateAcls/DeleteAcls ([`plan`]).
//!
//! May call: nothing but `metadata::MetadataRecord` (the records it plans). Pure: no I/O, no
//! clock, no metrics. The API layer asks it before a request touches a service.

pub(crate) mod acl;
pub(crate) mod authorizer;
pub(crate) mod plan;
pub(crate) mod table;

pub(crate) use acl::{Acl, AclError, AclFilter, Operation, PatternType, Permission, ResourceType, CLUSTER_NAME};
pub(crate) use authorizer::{Authorizer, Requester};
pub(crate) use table::AclTable;
