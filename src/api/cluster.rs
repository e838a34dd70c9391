//! DescribeCluster: the cluster id, the controller, and the brokers (KIP-700).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::metadata::{operations, CLUSTER_OPERATIONS, OPERATIONS_NOT_REQUESTED};
use super::{Ctx, Reply};

pub(super) fn describe_cluster(ctx: &Ctx, req: DescribeClusterRequest) -> Reply<DescribeClusterResponse> {
    let b = &ctx.broker;
    // This node is broker and controller at once, so both endpoint types list it.
    let me = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(b.node_id))
        .with_host(StrBytes::from_string(b.advertised.host.clone()))
        .with_port(b.advertised.port as i32);
    let ops = if req.include_cluster_authorized_operations {
        operations(CLUSTER_OPERATIONS)
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    Reply::Now(
        DescribeClusterResponse::default()
            .with_endpoint_type(req.endpoint_type)
            .with_cluster_id(StrBytes::from_string(b.cluster_id.clone()))
            .with_controller_id(BrokerId(b.node_id))
            .with_brokers(vec![me])
            .with_cluster_authorized_operations(ops),
    )
}
