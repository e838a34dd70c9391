//! DescribeCluster: the cluster id, the controller (see `Broker::controller_for_clients`), and
//! the live brokers with an endpoint on the client's listener (KIP-700).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::metadata::OPERATIONS_NOT_REQUESTED;
use super::{Ctx, Reply};
use crate::authz::{Operation, ResourceType, CLUSTER_NAME};

pub(super) fn describe_cluster(ctx: &Ctx, req: DescribeClusterRequest) -> Reply<DescribeClusterResponse> {
    let b = &ctx.broker;
    let image = b.metadata.image();
    let brokers = image
        .live_endpoints(ctx.listener())
        .map(|(broker, endpoint)| {
            let (host, port) = ctx.endpoint_of(broker.id, endpoint);
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(broker.id))
                .with_host(host)
                .with_port(port)
                .with_rack(broker.rack.clone().map(StrBytes::from_string))
        })
        .collect();
    let ops = if req.include_cluster_authorized_operations {
        let access = ctx.access();
        match access.cluster(Operation::Describe) {
            true => access.operations(ResourceType::Cluster, CLUSTER_NAME),
            false => 0,
        }
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    Reply::Now(
        DescribeClusterResponse::default()
            .with_endpoint_type(req.endpoint_type)
            .with_cluster_id(StrBytes::from_string(b.cluster_id()))
            .with_controller_id(BrokerId(b.controller_for_clients(&image, ctx.listener())))
            .with_brokers(brokers)
            .with_cluster_authorized_operations(ops),
    )
}
