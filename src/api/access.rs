//! The API layer's view of the authorizer: who the request's principal is, from which host,
//! and the ACLs of one metadata image, so a request is decided against one consistent set.
//! A refusal that the client is told about is counted in `authorization_denials_total`.
//!
//! May call: `authz` (the decision) and the metrics. Never decides on its own.

use std::sync::Arc;

use kafka_protocol::ResponseError;

use super::Ctx;
use crate::authz::{Operation, Requester, ResourceType, CLUSTER_NAME};
use crate::metadata::MetadataImage;

/// Authorization for one request.
pub(crate) struct Access {
    ctx: Ctx,
    image: Arc<MetadataImage>,
    host: String,
}

impl Ctx {
    /// The authorizer's view for this request (the ACLs of the current image).
    pub(crate) fn access(&self) -> Access {
        let host = self.peer.map(|p| p.ip().to_canonical().to_string()).unwrap_or_default();
        Access {
            ctx: self.clone(),
            image: self.broker.metadata.image(),
            host,
        }
    }
}

impl Access {
    fn requester(&self) -> Requester<'_> {
        Requester {
            principal: &self.ctx.principal,
            host: &self.host,
        }
    }

    /// Whether an authorizer is configured at all.
    pub(crate) fn enabled(&self) -> bool {
        self.ctx.broker.authorizer.enabled()
    }

    /// May the requester do `op` on `name`? A refusal is counted: the client is told.
    pub(crate) fn allows(&self, op: Operation, resource_type: ResourceType, name: &str) -> bool {
        let allowed = self.may(op, resource_type, name);
        if !allowed {
            // Kafka's authorizer logs each refusal it tells a client about (its audit log).
            tracing::info!(
                principal = %self.ctx.principal,
                host = %self.host,
                operation = op.name(),
                resource = %format_args!("{}:{name}", resource_type.name()),
                api = super::api_name(self.ctx.api),
                "authorization denied"
            );
            self.ctx
                .broker
                .metrics
                .authorization_denials
                .with_label_values(&[super::api_name(self.ctx.api), resource_type.name(), op.name()])
                .inc();
        }
        allowed
    }

    /// May the requester do `op` on `name`? Not counted: for filtering what is listed (a
    /// Metadata request for all topics shows the allowed ones, as Kafka's does silently).
    pub(crate) fn may(&self, op: Operation, resource_type: ResourceType, name: &str) -> bool {
        let acls = self.image.acls();
        self.ctx
            .broker
            .authorizer
            .authorize(acls, self.requester(), op, resource_type, name)
    }

    pub(crate) fn topic(&self, op: Operation, name: &str) -> bool {
        self.allows(op, ResourceType::Topic, name)
    }

    /// Whether `op` is refused on one of `topics`. Each is checked (and each refusal counted),
    /// as Kafka's `filterByAuthorized` does.
    pub(crate) fn refuses_any_topic<'a>(&self, op: Operation, topics: impl IntoIterator<Item = &'a str>) -> bool {
        topics.into_iter().filter(|t| !self.topic(op, t)).count() > 0
    }

    pub(crate) fn group(&self, op: Operation, name: &str) -> bool {
        self.allows(op, ResourceType::Group, name)
    }

    pub(crate) fn transactional_id(&self, op: Operation, name: &str) -> bool {
        self.allows(op, ResourceType::TransactionalId, name)
    }

    pub(crate) fn cluster(&self, op: Operation) -> bool {
        self.allows(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// `op` on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
    pub(crate) fn require_cluster(&self, op: Operation) -> Result<(), ResponseError> {
        self.cluster(op)
            .then_some(())
            .ok_or(ResponseError::ClusterAuthorizationFailed)
    }

    /// May the requester do `op` on some resource of the type (Kafka's
    /// `authorizeByResourceType`)?
    pub(crate) fn any_of_type(&self, op: Operation, resource_type: ResourceType) -> bool {
        let acls = self.image.acls();
        self.ctx
            .broker
            .authorizer
            .authorize_any(acls, self.requester(), op, resource_type)
    }

    /// The authorized-operations bit field of a resource.
    pub(crate) fn operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        let acls = self.image.acls();
        self.ctx
            .broker
            .authorizer
            .authorized_operations(acls, self.requester(), resource_type, name)
    }
}
