//! DescribeQuorum (KIP-595): the metadata log's Raft quorum as the active controller sees it —
//! leader, epoch (term), high watermark, and how far each voter and observer has got. Any node
//! answers; the question is forwarded to the active controller.

use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{Ctx, Reply};
use crate::controller::{Command, QuorumState, ReplicaProgress};
use crate::error::KafkaCode;
use crate::metadata::METADATA_TOPIC;

pub(super) fn describe_quorum(ctx: &Ctx, req: DescribeQuorumRequest) -> Reply<DescribeQuorumResponse> {
    let asks_for_metadata_log = req.topics.iter().any(|t| t.topic_name.0.as_str() == METADATA_TOPIC)
        && req
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .all(|p| p.partition_index == 0);
    if !asks_for_metadata_log || req.topics.len() != 1 {
        let code = ctx.count(ResponseError::InvalidRequest);
        return Reply::Now(
            DescribeQuorumResponse::default()
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_static_str(
                    "only __cluster_metadata partition 0 has a quorum",
                ))),
        );
    }
    let ctx = ctx.clone();
    Reply::Later(Box::pin(async move {
        match ctx.broker.controller.submit(Command::DescribeQuorum).await {
            Ok(crate::controller::Reply::Quorum(q)) => response(&ctx, &q),
            Ok(_) => failed(&ctx, ResponseError::UnknownServerError, "unexpected controller reply"),
            Err(e) => failed(&ctx, e.kafka_error(), &e.to_string()),
        }
    }))
}

fn failed(ctx: &Ctx, e: ResponseError, why: &str) -> DescribeQuorumResponse {
    DescribeQuorumResponse::default()
        .with_error_code(ctx.count(e))
        .with_error_message(Some(StrBytes::from_string(why.to_string())))
}

fn replica(p: &ReplicaProgress) -> ReplicaState {
    ReplicaState::default()
        .with_replica_id(BrokerId(p.id))
        .with_log_end_offset(p.log_end_offset)
        .with_last_fetch_timestamp(p.last_fetch_ms)
        .with_last_caught_up_timestamp(p.last_caught_up_ms)
}

fn response(ctx: &Ctx, q: &QuorumState) -> DescribeQuorumResponse {
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(q.leader_id))
        .with_leader_epoch(q.leader_epoch)
        .with_high_watermark(q.high_watermark)
        .with_current_voters(q.voters.iter().map(replica).collect())
        .with_observers(q.observers.iter().map(replica).collect());
    let topic = TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![partition]);
    // v2 lists the voters' endpoints (KIP-853): their controller listeners.
    let nodes = if ctx.version >= 2 {
        ctx.broker
            .controller
            .voter_addresses()
            .into_iter()
            .filter_map(|(id, addr)| {
                let (host, port) = addr.rsplit_once(':')?;
                let listener = Listener::default()
                    .with_name(StrBytes::from_static_str("CONTROLLER"))
                    .with_host(StrBytes::from_string(host.to_string()))
                    .with_port(port.parse().ok()?);
                Some(
                    Node::default()
                        .with_node_id(BrokerId(id))
                        .with_listeners(vec![listener]),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeQuorumResponse::default()
        .with_topics(vec![topic])
        .with_nodes(nodes)
}
