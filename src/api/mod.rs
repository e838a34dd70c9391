//! The Kafka API layer: decodes a request frame with the kafka-protocol crate, checks the API
//! and version, routes it to the handler of its request family (one file each), and encodes
//! the response frame.
//!
//! May call: the services (`replica`, `metadata`) through [`Broker`]. Knows nothing of sockets:
//! it takes a frame and gives back a future of the response frame, so the network layer can
//! keep responses in request order while a long-poll fetch waits.

mod access;
mod acls;
mod api_versions;
mod authorize;
mod client_quotas;
mod cluster;
mod config_resources;
mod configs;
mod consumer_groups;
mod coordinator;
mod delete_records;
mod elections;
mod features;
mod fetch;
mod frame;
mod group_admin;
mod groups;
mod leader_epochs;
mod list_offsets;
mod log_dirs;
mod metadata;
mod offset_commits;
mod produce;
mod producer_ids;
mod quorum;
mod reassignments;
mod request_error;
pub(crate) mod sasl;
mod scram_credentials;
mod share_admin;
mod share_fetch;
mod share_groups;
mod share_persist;
mod share_state;
mod throttling;
mod topic_partitions;
mod topics;
mod transactions;
mod txn_markers;
pub(crate) mod versions;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::ResponseError;
use tracing::debug;

use crate::authz::Operation;
use crate::broker::Broker;
use crate::config::Listener;
use crate::error::KafkaCode;
use authorize::guard;
pub(crate) use frame::Frame;
use frame::SpliceBuf;
pub(crate) use request_error::RequestError;

/// The response frame of one request, possibly still being computed (long-poll fetch, acks
/// wait).
pub(crate) type Pending = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// What the connection does once a request is done.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Write this frame.
    Send(Frame),
    /// Write nothing (acks=0 produce).
    Nothing,
    /// The response could not be encoded (a bug); the client would wait forever, so close.
    Close(String),
}

/// A request the broker will not answer: the connection is closed, as Kafka closes it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProtocolError {
    #[error("request frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("{api:?} version {version} is not supported (supported: {min}..={max})")]
    UnsupportedVersion {
        api: ApiKey,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error("cannot decode {api:?} v{version}: {reason}")]
    Malformed { api: ApiKey, version: i16, reason: String },
}

/// What a handler gives back: a response now, or one that needs waiting for.
pub(crate) enum Reply<R> {
    Now(R),
    Later(Pin<Box<dyn Future<Output = R> + Send>>),
    /// No response at all (acks=0 produce).
    Silent,
    /// Close the connection instead of answering (a failed acks=0 produce, as in Kafka).
    Close(String),
    /// Any of the above, known only once work elsewhere is done (a produce, whose appends run
    /// on the log writer threads: an acks=0 one may end up answering nothing, or closing).
    Decided(Pin<Box<dyn Future<Output = Reply<R>> + Send>>),
}

/// Who asked, and with which version; handed to every handler.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) broker: Arc<Broker>,
    /// The request header's client id ("" when null).
    pub(crate) client_id: StrBytes,
    /// The client's address, for DescribeGroups' client host.
    pub(crate) peer: Option<SocketAddr>,
    /// This node's endpoint on the listener the request arrived on (see [`Session`]).
    pub(crate) endpoint: Option<Arc<Listener>>,
    /// The connection's principal (`User:ANONYMOUS`, `User:<name>`), which the authorizer checks
    /// and client quotas name.
    pub(crate) principal: Arc<str>,
    /// The connection's quota mute (see [`Session`]).
    pub(crate) throttle: Arc<crate::quota::Throttle>,
    pub(crate) api: ApiKey,
    pub(crate) version: i16,
    correlation_id: i32,
    started: Instant,
    /// The connection's place in line for its produce appends (see [`AppendOrder`]).
    pub(crate) append_order: Arc<AppendOrder>,
}

/// Keeps a connection's produce appends in request order when some must first wait (for a
/// transaction coordinator's verification or add): each produce takes its place in line when
/// it is dispatched, in request order, and hands its appends to the log writer lane only once
/// the one before it has. Kafka reads a connection's next request only after answering the
/// last; Sluice pipelines them, so this is what keeps a producer's pipelined batches from
/// reaching the log out of sequence.
#[derive(Debug, Default)]
pub(crate) struct AppendOrder {
    /// The signal the last produce in line gives once its appends are handed to the lane.
    last: std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

impl AppendOrder {
    /// Takes the next place in line: the turn to wait for (the one before, if any), and the
    /// signal to give the next one (sent, or dropped, once this one's appends are handed over).
    pub(crate) fn enter(
        &self,
    ) -> (
        Option<tokio::sync::oneshot::Receiver<()>>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (done, next_turn) = tokio::sync::oneshot::channel();
        let turn = self.last.lock().expect("append order lock").replace(next_turn);
        (turn, done)
    }
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} v{} #{}", self.api, self.version, self.correlation_id)
    }
}

impl Ctx {
    /// This connection's log writer lane: its requests' appends run in request order there.
    pub(crate) fn lane(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.peer.hash(&mut h);
        h.finish()
    }

    /// The name of the listener this request arrived on: brokers are named to the client by
    /// their endpoint on a listener of that name. None (no listener) asks for registered ones.
    pub(crate) fn listener(&self) -> Option<&str> {
        self.endpoint.as_deref().map(|l| l.name.as_str())
    }

    /// The host and port a client on this connection is told for `node`, whose endpoint on the
    /// connection's listener is `host:port`: this node's own comes from the listener itself.
    pub(crate) fn endpoint_of(&self, node: i32, (host, port): (&str, u16)) -> (StrBytes, i32) {
        match &self.endpoint {
            Some(l) if node == self.broker.node_id => (StrBytes::from_string(l.host.clone()), i32::from(l.port)),
            _ => (StrBytes::from_string(host.to_string()), i32::from(port)),
        }
    }

    /// The Kafka code for `err`, counted in the errors metric.
    pub(crate) fn code(&self, err: &impl KafkaCode) -> i16 {
        self.count(err.kafka_error())
    }

    /// Counts a response error code in the errors metric and returns it.
    pub(crate) fn count(&self, err: ResponseError) -> i16 {
        self.broker
            .metrics
            .errors
            .with_label_values(&[api_name(self.api), &format!("{err:?}")])
            .inc();
        err.code()
    }
}

fn api_name(api: ApiKey) -> &'static str {
    versions::name(api)
}

/// Who a connection is: where it comes from, the endpoint of the listener it arrived on, and
/// the principal it authenticated as.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) peer: SocketAddr,
    /// This node's advertised endpoint on the connection's listener: what Metadata and
    /// FindCoordinator tell the client for this node. None: the registered endpoint.
    pub(crate) endpoint: Option<Arc<Listener>>,
    /// Kafka's principal: `User:ANONYMOUS`, or `User:<name>` once SASL authenticated.
    pub(crate) principal: Arc<str>,
    /// The order of the connection's produce appends.
    pub(crate) append_order: Arc<AppendOrder>,
    /// Set when a client quota throttles the connection: no request is read until it ends.
    pub(crate) throttle: Arc<crate::quota::Throttle>,
}

impl Session {
    pub(crate) const ANONYMOUS: &'static str = "User:ANONYMOUS";
}

/// A request frame whose header is read: to route, or already answered.
enum Parsed {
    Request(Ctx, Bytes),
    Answered(Pending),
}

/// Decodes one request frame, runs it, and returns the future of its response frame.
/// Work that must happen in request order (appends) is done before this returns.
pub(crate) fn dispatch(broker: &Arc<Broker>, frame: Bytes, session: &Session) -> Result<Pending, ProtocolError> {
    match parse(broker, frame, session)? {
        Parsed::Answered(pending) => Ok(pending),
        Parsed::Request(ctx, body) => {
            let (api, version) = (ctx.api, ctx.version);
            route(ctx, body).map_err(|e| ProtocolError::Malformed {
                api,
                version,
                reason: e.to_string(),
            })
        }
    }
}

/// Checks the API and version of a frame and decodes its request header.
fn parse(broker: &Arc<Broker>, mut frame: Bytes, session: &Session) -> Result<Parsed, ProtocolError> {
    if frame.len() < 8 {
        return Err(ProtocolError::TooShort(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = ApiKey::try_from(raw_key).map_err(|_| ProtocolError::UnknownApiKey(raw_key))?;
    let mut ctx = Ctx {
        broker: broker.clone(),
        client_id: StrBytes::default(),
        peer: Some(session.peer),
        endpoint: session.endpoint.clone(),
        principal: session.principal.clone(),
        throttle: session.throttle.clone(),
        api,
        version,
        correlation_id,
        started: Instant::now(),
        append_order: session.append_order.clone(),
    };
    let Some(range) = versions::supported(api) else {
        return Err(ProtocolError::UnknownApiKey(raw_key));
    };
    if version < range.min || version > range.max {
        if api == ApiKey::ApiVersions {
            // KIP-511: answer with a v0 body listing our ranges so the client can pick one.
            let answer = encode(&ctx, 0, 0, &api_versions::unsupported_version());
            return Ok(Parsed::Answered(ready(answer)));
        }
        return Err(ProtocolError::UnsupportedVersion {
            api,
            version,
            min: range.min,
            max: range.max,
        });
    }
    broker
        .metrics
        .requests
        .with_label_values(&[api_name(api), &version.to_string()])
        .inc();
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version)).map_err(|e| {
        ProtocolError::Malformed {
            api,
            version,
            reason: e.to_string(),
        }
    })?;
    ctx.client_id = header.client_id.unwrap_or_default();
    Ok(Parsed::Request(ctx, frame))
}

/// Decodes the body for its API and runs the handler.
fn route(ctx: Ctx, mut body: Bytes) -> anyhow::Result<Pending> {
    let v = ctx.version;
    let pending = match ctx.api {
        ApiKey::ApiVersions => respond(&ctx, api_versions::handle(&ctx, decode(&mut body, v)?)),
        ApiKey::Metadata => {
            let req = decode(&mut body, v)?;
            if metadata::may_create(&ctx, &req) {
                // Blocking: creating a missing topic waits for the controller.
                respond(&ctx, blocking(&ctx, move |ctx| metadata::handle(ctx, req)))
            } else {
                respond(&ctx, Reply::Now(metadata::handle(&ctx, req)))
            }
        }
        ApiKey::Produce => {
            let size = body.len();
            let mut req = decode(&mut body, v)?;
            let gate = authorize::produce(&ctx, &mut req);
            let reply = guard(gate, || produce::handle(&ctx, req));
            respond(&ctx, throttling::produce(&ctx, size, reply))
        }
        ApiKey::Fetch => {
            let mut req: FetchRequest = decode(&mut body, v)?;
            let follower = throttling::is_follower(&req);
            let gate = authorize::fetch(&ctx, &mut req);
            let reply = guard(gate, || fetch::handle(&ctx, req));
            match follower {
                true => respond(&ctx, reply),
                false => respond(&ctx, throttling::fetch(&ctx, reply)),
            }
        }
        ApiKey::ListOffsets => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::list_offsets(&ctx, &mut req);
            if list_offsets::reads_records(&req) {
                respond(
                    &ctx,
                    guard(gate, || blocking(&ctx, move |ctx| list_offsets::reply(ctx, req))),
                )
            } else {
                respond(&ctx, guard(gate, || list_offsets::handle(&ctx, req)))
            }
        }
        ApiKey::OffsetForLeaderEpoch => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::offset_for_leader_epoch(&ctx, &mut req);
            respond(&ctx, guard(gate, || leader_epochs::handle(&ctx, req)))
        }
        ApiKey::DeleteRecords => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::delete_records(&ctx, &mut req);
            respond(&ctx, guard(gate, || delete_records::delete_records(&ctx, req)))
        }
        ApiKey::CreateTopics => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::create_topics(&ctx, &mut req);
            respond(
                &ctx,
                guard(gate, || blocking(&ctx, move |ctx| topics::create_topics(ctx, req))),
            )
        }
        ApiKey::DeleteTopics => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::delete_topics(&ctx, &mut req);
            respond(
                &ctx,
                guard(gate, || blocking(&ctx, move |ctx| topics::delete_topics(ctx, req))),
            )
        }
        ApiKey::CreatePartitions => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::create_partitions(&ctx, &mut req);
            respond(
                &ctx,
                guard(gate, || blocking(&ctx, move |ctx| topics::create_partitions(ctx, req))),
            )
        }
        ApiKey::DescribeConfigs => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::describe_configs(&ctx, &mut req);
            respond(&ctx, guard(gate, || configs::describe_configs(&ctx, req)))
        }
        ApiKey::ListConfigResources => {
            let req = decode(&mut body, v)?;
            let gate = authorize::cluster(
                &ctx,
                Operation::DescribeConfigs,
                ListConfigResourcesResponse::with_error_code,
            );
            respond(&ctx, guard(gate, || config_resources::list_config_resources(&ctx, req)))
        }
        ApiKey::IncrementalAlterConfigs => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::incremental_alter_configs(&ctx, &mut req);
            respond(
                &ctx,
                guard(gate, || {
                    blocking(&ctx, move |ctx| configs::incremental_alter_configs(ctx, req))
                }),
            )
        }
        ApiKey::AlterConfigs => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::alter_configs(&ctx, &mut req);
            respond(
                &ctx,
                guard(gate, || blocking(&ctx, move |ctx| configs::alter_configs(ctx, req))),
            )
        }
        ApiKey::DescribeCluster => respond(&ctx, cluster::describe_cluster(&ctx, decode(&mut body, v)?)),
        ApiKey::DescribeLogDirs => {
            // Blocking: statvfs of the log directory can stall on a sick disk.
            let req = decode(&mut body, v)?;
            let gate = authorize::cluster(&ctx, Operation::Describe, DescribeLogDirsResponse::with_error_code);
            respond(
                &ctx,
                guard(gate, || {
                    blocking(&ctx, move |ctx| log_dirs::describe_log_dirs(ctx, req))
                }),
            )
        }
        ApiKey::AlterReplicaLogDirs => {
            // Blocking: it reads the log dirs' paths and takes partition locks.
            let req = decode(&mut body, v)?;
            respond(
                &ctx,
                blocking(&ctx, move |ctx| log_dirs::alter_replica_log_dirs(ctx, req)),
            )
        }
        ApiKey::DescribeTopicPartitions => respond(
            &ctx,
            Reply::Now(topic_partitions::describe_topic_partitions(&ctx, decode(&mut body, v)?)),
        ),
        ApiKey::DescribeQuorum => {
            let req = decode(&mut body, v)?;
            let gate = authorize::cluster(&ctx, Operation::Describe, DescribeQuorumResponse::with_error_code);
            respond(&ctx, guard(gate, || quorum::describe_quorum(&ctx, req)))
        }
        ApiKey::FindCoordinator => {
            // Blocking: the first one creates __consumer_offsets through the controller.
            let mut req = decode(&mut body, v)?;
            let gate = authorize::find_coordinator(&ctx, &mut req);
            respond(
                &ctx,
                guard(gate, || {
                    blocking(&ctx, move |ctx| coordinator::find_coordinator(ctx, req))
                }),
            )
        }
        ApiKey::JoinGroup => {
            let req: JoinGroupRequest = decode(&mut body, v)?;
            let gate = authorize::join_group(&ctx, &req);
            respond(&ctx, guard(gate, || groups::join_group(&ctx, req)))
        }
        ApiKey::SyncGroup => {
            let req: SyncGroupRequest = decode(&mut body, v)?;
            let gate = authorize::group_member(&ctx, &req.group_id, SyncGroupResponse::with_error_code);
            respond(&ctx, guard(gate, || groups::sync_group(&ctx, req)))
        }
        ApiKey::Heartbeat => {
            let req: HeartbeatRequest = decode(&mut body, v)?;
            let gate = authorize::group_member(&ctx, &req.group_id, HeartbeatResponse::with_error_code);
            respond(&ctx, guard(gate, || groups::heartbeat(&ctx, req)))
        }
        ApiKey::LeaveGroup => {
            let req: LeaveGroupRequest = decode(&mut body, v)?;
            let gate = authorize::group_member(&ctx, &req.group_id, LeaveGroupResponse::with_error_code);
            respond(&ctx, guard(gate, || groups::leave_group(&ctx, req)))
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let req: ConsumerGroupHeartbeatRequest = decode(&mut body, v)?;
            let gate = authorize::group_subscriber(
                &ctx,
                &req.group_id,
                req.subscribed_topic_names.as_ref(),
                ConsumerGroupHeartbeatResponse::with_error_code,
            );
            respond(
                &ctx,
                guard(gate, || consumer_groups::consumer_group_heartbeat(&ctx, req)),
            )
        }
        ApiKey::ConsumerGroupDescribe => respond(
            &ctx,
            consumer_groups::consumer_group_describe(&ctx, decode(&mut body, v)?),
        ),
        ApiKey::ListGroups => respond(&ctx, group_admin::list_groups(&ctx, decode(&mut body, v)?)),
        ApiKey::DescribeGroups => respond(&ctx, group_admin::describe_groups(&ctx, decode(&mut body, v)?)),
        ApiKey::DeleteGroups => respond(&ctx, group_admin::delete_groups(&ctx, decode(&mut body, v)?)),
        ApiKey::OffsetCommit => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::offset_commit(&ctx, &mut req);
            respond(&ctx, guard(gate, || offset_commits::offset_commit(&ctx, req)))
        }
        ApiKey::OffsetFetch => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::offset_fetch(&ctx, &mut req);
            respond(&ctx, guard(gate, || offset_commits::offset_fetch(&ctx, req)))
        }
        ApiKey::OffsetDelete => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::offset_delete(&ctx, &mut req);
            respond(&ctx, guard(gate, || offset_commits::offset_delete(&ctx, req)))
        }
        ApiKey::InitProducerId => {
            let req = decode(&mut body, v)?;
            let gate = authorize::init_producer_id(&ctx, &req);
            respond(&ctx, guard(gate, || producer_ids::init_producer_id(&ctx, req)))
        }
        ApiKey::DescribeProducers => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::describe_producers(&ctx, &mut req);
            respond(&ctx, guard(gate, || producer_ids::describe_producers(&ctx, req)))
        }
        ApiKey::WriteTxnMarkers => {
            let req = decode(&mut body, v)?;
            let gate = authorize::write_txn_markers(&ctx, &req);
            respond(&ctx, guard(gate, || txn_markers::write_txn_markers(&ctx, req)))
        }
        ApiKey::AddPartitionsToTxn => {
            let req = decode(&mut body, v)?;
            let gate = authorize::add_partitions_to_txn(&ctx, &req);
            respond(&ctx, guard(gate, || transactions::add_partitions_to_txn(&ctx, req)))
        }
        ApiKey::AddOffsetsToTxn => {
            let req: AddOffsetsToTxnRequest = decode(&mut body, v)?;
            let gate = authorize::transactional(
                &ctx,
                &req.transactional_id,
                Some(&req.group_id),
                AddOffsetsToTxnResponse::with_error_code,
            );
            respond(&ctx, guard(gate, || transactions::add_offsets_to_txn(&ctx, req)))
        }
        ApiKey::EndTxn => {
            let req: EndTxnRequest = decode(&mut body, v)?;
            let gate = authorize::transactional(&ctx, &req.transactional_id, None, EndTxnResponse::with_error_code);
            respond(&ctx, guard(gate, || transactions::end_txn(&ctx, req)))
        }
        ApiKey::DescribeTransactions => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::describe_transactions(&ctx, &mut req);
            respond(&ctx, guard(gate, || transactions::describe_transactions(&ctx, req)))
        }
        ApiKey::TxnOffsetCommit => {
            let mut req = decode(&mut body, v)?;
            let gate = authorize::txn_offset_commit(&ctx, &mut req);
            respond(&ctx, guard(gate, || offset_commits::txn_offset_commit(&ctx, req)))
        }
        ApiKey::ListTransactions => {
            let req = decode(&mut body, v)?;
            let gate = authorize::list_transactions(&ctx);
            respond(&ctx, guard(gate, || transactions::list_transactions(&ctx, req)))
        }
        ApiKey::ElectLeaders => {
            let req = decode(&mut body, v)?;
            let gate = authorize::cluster(&ctx, Operation::Alter, ElectLeadersResponse::with_error_code);
            respond(&ctx, guard(gate, || elections::elect_leaders(&ctx, req)))
        }
        ApiKey::UpdateFeatures => {
            let req = decode(&mut body, v)?;
            let gate = authorize::cluster(&ctx, Operation::Alter, UpdateFeaturesResponse::with_error_code);
            respond(&ctx, guard(gate, || features::update_features(&ctx, req)))
        }
        ApiKey::AlterPartitionReassignments => {
            let req = decode(&mut body, v)?;
            let gate = authorize::cluster(
                &ctx,
                Operation::Alter,
                AlterPartitionReassignmentsResponse::with_error_code,
            );
            respond(
                &ctx,
                guard(gate, || reassignments::alter_partition_reassignments(&ctx, req)),
            )
        }
        ApiKey::ListPartitionReassignments => {
            let req = decode(&mut body, v)?;
            let gate = authorize::cluster(
                &ctx,
                Operation::Describe,
                ListPartitionReassignmentsResponse::with_error_code,
            );
            respond(
                &ctx,
                guard(gate, || reassignments::list_partition_reassignments(&ctx, req)),
            )
        }
        ApiKey::DescribeClientQuotas => {
            let req = decode(&mut body, v)?;
            let gate = authorize::cluster(
                &ctx,
                Operation::DescribeConfigs,
                DescribeClientQuotasResponse::with_error_code,
            );
            respond(&ctx, guard(gate, || Reply::Now(client_quotas::describe(&ctx, req))))
        }
        ApiKey::AlterClientQuotas => {
            let req = decode(&mut body, v)?;
            let gate = authorize::alter_client_quotas(&ctx, &req);
            respond(&ctx, guard(gate, || client_quotas::alter(&ctx, req)))
        }
        ApiKey::DescribeUserScramCredentials => {
            let req = decode(&mut body, v)?;
            let gate = authorize::cluster(
                &ctx,
                Operation::Describe,
                DescribeUserScramCredentialsResponse::with_error_code,
            );
            respond(&ctx, guard(gate, || Reply::Now(scram_credentials::describe(&ctx, req))))
        }
        ApiKey::AlterUserScramCredentials => {
            let req = decode(&mut body, v)?;
            let gate = authorize::alter_user_scram_credentials(&ctx, &req);
            respond(&ctx, guard(gate, || scram_credentials::alter(&ctx, req)))
        }
        ApiKey::CreateAcls => {
            let req = decode(&mut body, v)?;
            respond(&ctx, blocking(&ctx, move |ctx| acls::create_acls(ctx, req)))
        }
        ApiKey::DescribeAcls => respond(&ctx, Reply::Now(acls::describe_acls(&ctx, decode(&mut body, v)?))),
        ApiKey::DeleteAcls => {
            let req = decode(&mut body, v)?;
            respond(&ctx, blocking(&ctx, move |ctx| acls::delete_acls(ctx, req)))
        }
        ApiKey::ShareGroupHeartbeat => {
            let req: ShareGroupHeartbeatRequest = decode(&mut body, v)?;
            let gate = authorize::group_subscriber(
                &ctx,
                &req.group_id,
                req.subscribed_topic_names.as_ref(),
                ShareGroupHeartbeatResponse::with_error_code,
            );
            respond(&ctx, guard(gate, || share_groups::share_group_heartbeat(&ctx, req)))
        }
        ApiKey::ShareGroupDescribe => {
            let mut req: ShareGroupDescribeRequest = decode(&mut body, v)?;
            let gate = authorize::share::share_group_describe(&ctx, &mut req);
            respond(&ctx, guard(gate, || share_groups::share_group_describe(&ctx, req)))
        }
        ApiKey::ShareFetch => {
            let mut req: ShareFetchRequest = decode(&mut body, v)?;
            let gate = authorize::share::share_fetch(&ctx, &mut req);
            respond(&ctx, guard(gate, || share_fetch::share_fetch(&ctx, req)))
        }
        ApiKey::ShareAcknowledge => {
            let mut req: ShareAcknowledgeRequest = decode(&mut body, v)?;
            let gate = authorize::share::share_acknowledge(&ctx, &mut req);
            respond(&ctx, guard(gate, || share_fetch::share_acknowledge(&ctx, req)))
        }
        ApiKey::DescribeShareGroupOffsets => {
            let mut req: DescribeShareGroupOffsetsRequest = decode(&mut body, v)?;
            let gate = authorize::share::describe_share_group_offsets(&ctx, &mut req);
            respond(
                &ctx,
                guard(gate, || share_admin::describe_share_group_offsets(&ctx, req)),
            )
        }
        ApiKey::AlterShareGroupOffsets => {
            let mut req: AlterShareGroupOffsetsRequest = decode(&mut body, v)?;
            let gate = authorize::share::alter_share_group_offsets(&ctx, &mut req);
            respond(&ctx, guard(gate, || share_admin::alter_share_group_offsets(&ctx, req)))
        }
        ApiKey::DeleteShareGroupOffsets => {
            let mut req: DeleteShareGroupOffsetsRequest = decode(&mut body, v)?;
            let gate = authorize::share::delete_share_group_offsets(&ctx, &mut req);
            respond(&ctx, guard(gate, || share_admin::delete_share_group_offsets(&ctx, req)))
        }
        ApiKey::ReadShareGroupState => {
            let req: ReadShareGroupStateRequest = decode(&mut body, v)?;
            let gate = authorize::share::read_share_group_state(&ctx, &req);
            respond(&ctx, guard(gate, || share_state::read_share_group_state(&ctx, req)))
        }
        ApiKey::WriteShareGroupState => {
            let req: WriteShareGroupStateRequest = decode(&mut body, v)?;
            let gate = authorize::share::write_share_group_state(&ctx, &req);
            respond(&ctx, guard(gate, || share_state::write_share_group_state(&ctx, req)))
        }
        ApiKey::InitializeShareGroupState => {
            let req: InitializeShareGroupStateRequest = decode(&mut body, v)?;
            let gate = authorize::share::initialize_share_group_state(&ctx, &req);
            respond(
                &ctx,
                guard(gate, || share_state::initialize_share_group_state(&ctx, req)),
            )
        }
        ApiKey::DeleteShareGroupState => {
            let req: DeleteShareGroupStateRequest = decode(&mut body, v)?;
            let gate = authorize::share::delete_share_group_state(&ctx, &req);
            respond(&ctx, guard(gate, || share_state::delete_share_group_state(&ctx, req)))
        }
        ApiKey::ReadShareGroupStateSummary => {
            let req: ReadShareGroupStateSummaryRequest = decode(&mut body, v)?;
            let gate = authorize::share::read_share_group_state_summary(&ctx, &req);
            respond(
                &ctx,
                guard(gate, || share_state::read_share_group_state_summary(&ctx, req)),
            )
        }
        // Only reached once authenticated (or on a listener without SASL): Kafka's answer.
        ApiKey::SaslHandshake => respond(&ctx, Reply::Now(sasl::after_authentication_handshake())),
        ApiKey::SaslAuthenticate => respond(&ctx, Reply::Now(sasl::after_authentication_authenticate())),
        other => anyhow::bail!("{other:?} is advertised but has no handler"),
    };
    if body.has_remaining() {
        debug!(api = ?ctx.api, extra = body.remaining(), "request body has trailing bytes");
    }
    Ok(pending)
}

fn decode<T: Decodable>(body: &mut Bytes, version: i16) -> anyhow::Result<T> {
    T::decode(body, version)
}

fn respond<R: Encodable + Payloads + Send + 'static>(ctx: &Ctx, reply: Reply<R>) -> Pending {
    match reply {
        Reply::Now(r) => ready(finish(ctx, &r)),
        Reply::Later(fut) => {
            let ctx = ctx.clone();
            Box::pin(async move { finish(&ctx, &fut.await) })
        }
        Reply::Silent => {
            observe(ctx);
            ready(Outcome::Nothing)
        }
        Reply::Close(why) => ready(Outcome::Close(why)),
        Reply::Decided(fut) => {
            let ctx = ctx.clone();
            Box::pin(async move { respond(&ctx, fut.await).await })
        }
    }
}

/// Large `Bytes` fields of a response that the frame passes through instead of copying.
pub(crate) trait Payloads {
    fn payloads(&self) -> Vec<Bytes> {
        Vec::new()
    }
}

impl Payloads for FetchResponse {
    fn payloads(&self) -> Vec<Bytes> {
        self.responses
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|p| p.records.clone())
            .collect()
    }
}

macro_rules! no_payloads {
    ($($t:ty),* $(,)?) => { $(impl Payloads for $t {})* };
}

no_payloads!(
    ApiVersionsResponse,
    DescribeUserScramCredentialsResponse,
    AlterUserScramCredentialsResponse,
    DescribeClientQuotasResponse,
    AlterClientQuotasResponse,
    CreateAclsResponse,
    DescribeAclsResponse,
    DeleteAclsResponse,
    MetadataResponse,
    ProduceResponse,
    ListOffsetsResponse,
    OffsetForLeaderEpochResponse,
    DeleteRecordsResponse,
    CreateTopicsResponse,
    DeleteTopicsResponse,
    CreatePartitionsResponse,
    DescribeConfigsResponse,
    IncrementalAlterConfigsResponse,
    AlterConfigsResponse,
    ListConfigResourcesResponse,
    DescribeClusterResponse,
    DescribeLogDirsResponse,
    AlterReplicaLogDirsResponse,
    DescribeTopicPartitionsResponse,
    DescribeQuorumResponse,
    InitProducerIdResponse,
    DescribeProducersResponse,
    WriteTxnMarkersResponse,
    AddPartitionsToTxnResponse,
    AddOffsetsToTxnResponse,
    EndTxnResponse,
    DescribeTransactionsResponse,
    ListTransactionsResponse,
    TxnOffsetCommitResponse,
    FindCoordinatorResponse,
    JoinGroupResponse,
    ConsumerGroupHeartbeatResponse,
    ConsumerGroupDescribeResponse,
    SyncGroupResponse,
    HeartbeatResponse,
    LeaveGroupResponse,
    ListGroupsResponse,
    DescribeGroupsResponse,
    DeleteGroupsResponse,
    OffsetCommitResponse,
    OffsetFetchResponse,
    OffsetDeleteResponse,
    ElectLeadersResponse,
    UpdateFeaturesResponse,
    AlterPartitionReassignmentsResponse,
    ListPartitionReassignmentsResponse,
    SaslHandshakeResponse,
    SaslAuthenticateResponse,
    ShareGroupHeartbeatResponse,
    ShareGroupDescribeResponse,
    ShareAcknowledgeResponse,
    DescribeShareGroupOffsetsResponse,
    AlterShareGroupOffsetsResponse,
    DeleteShareGroupOffsetsResponse,
    ReadShareGroupStateResponse,
    WriteShareGroupStateResponse,
    InitializeShareGroupStateResponse,
    DeleteShareGroupStateResponse,
    ReadShareGroupStateSummaryResponse,
);

/// Runs a handler that does blocking file work (creating, deleting or reconfiguring partitions)
/// on tokio's blocking pool: a CreateTopics of a thousand partitions must not hold one of the
/// async workers, which serve every other connection meanwhile.
fn blocking<R, F>(ctx: &Ctx, handler: F) -> Reply<R>
where
    R: Default + Send + 'static,
    F: FnOnce(&Ctx) -> R + Send + 'static,
{
    let ctx = ctx.clone();
    Reply::Later(Box::pin(async move {
        match tokio::task::spawn_blocking(move || handler(&ctx)).await {
            Ok(response) => response,
            Err(e) => {
                // A panic in the handler: answer with an empty response rather than never.
                tracing::error!(error = %e, "admin request handler failed");
                R::default()
            }
        }
    }))
}

fn ready(outcome: Outcome) -> Pending {
    Box::pin(async move { outcome })
}

fn observe(ctx: &Ctx) {
    ctx.broker
        .metrics
        .request_seconds
        .with_label_values(&[api_name(ctx.api)])
        .observe(ctx.started.elapsed().as_secs_f64());
}

fn finish<R: Encodable + Payloads>(ctx: &Ctx, response: &R) -> Outcome {
    observe(ctx);
    let header_version = ctx.api.response_header_version(ctx.version);
    encode(ctx, header_version, ctx.version, response)
}

/// Encodes `[size][response header][body]`; record batches are passed through, not copied.
fn encode<R: Encodable + Payloads>(ctx: &Ctx, header_version: i16, version: i16, response: &R) -> Outcome {
    let header = ResponseHeader::default().with_correlation_id(ctx.correlation_id);
    let frame = (|| {
        let size = header.compute_size(header_version)? + response.compute_size(version)?;
        let mut buf = SpliceBuf::new(4 + size, response.payloads());
        buf.put_i32(i32::try_from(size)?);
        header.encode(&mut buf, header_version)?;
        response.encode(&mut buf, version)?;
        anyhow::Ok(buf.finish())
    })();
    match frame {
        Ok(buf) => {
            ctx.broker.metrics.bytes_out.inc_by(buf.len() as u64);
            Outcome::Send(buf)
        }
        Err(e) => Outcome::Close(format!("cannot encode {ctx:?} response: {e}")),
    }
}
