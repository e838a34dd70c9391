//! `RequestError`: why the API layer answers a well-formed request with an error code of its
//! own (the request asks for something inconsistent, or something this version does not
//! serve), as opposed to `ProtocolError`, which closes the connection. Errors of the services
//! (`MetadataError`, `LogError`, …) keep their own types; all become Kafka codes in
//! `crate::error`.

/// A request refused by the API layer itself.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// DescribeTopicPartitions names topics, and its cursor a topic not among them.
    #[error("the cursor's topic '{0}' is not among the requested topics")]
    CursorTopicNotRequested(String),
    /// DescribeTopicPartitions' cursor starts at a negative partition.
    #[error("the cursor's partition index {0} is negative")]
    NegativeCursorPartition(i32),
    /// ListConfigResources asked for a resource type its version does not list.
    #[error("resource type {resource_type} is not listed by ListConfigResources v{version}")]
    UnsupportedResourceType { resource_type: i8, version: i16 },
    /// DescribeConfigs of a resource type Sluice has no configs for.
    #[error("resource type {0} is not supported")]
    UnsupportedConfigResource(i8),
    /// DescribeConfigs of another broker (Kafka's words; BROKER may also be "").
    #[error("Unexpected broker id, expected {expected}{} but received {received}", if *.default_allowed { " or empty string," } else { "" })]
    UnexpectedBrokerId {
        expected: i32,
        received: String,
        default_allowed: bool,
    },
    #[error("Broker id must be an integer, but it is: {0}")]
    BrokerIdNotAnInteger(String),
    /// DescribeConfigs of BROKER_LOGGER "", which has no cluster-wide default.
    #[error("Broker id must not be empty")]
    EmptyBrokerId,
    /// DescribeConfigs of GROUP "".
    #[error("Group name must not be empty")]
    EmptyGroupName,
    /// ElectLeaders asked for an election type other than preferred (0) or unclean (1).
    #[error("unknown election type {0}")]
    UnknownElectionType(i8),
}
