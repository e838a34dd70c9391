//! The one place where Sluice's typed errors become Kafka error codes.
//!
//! Each service has its own error enum (`LogError`, `ReplicaError`, `MetadataError`), and the
//! API layer one for the requests it refuses itself (`RequestError`); the API layer asks
//! [`KafkaCode::kafka_error`] for the code to put in a response, never matching on error text.

use kafka_protocol::ResponseError;

use crate::api::RequestError;
use crate::log::LogError;
use crate::metadata::client_quotas::QuotaError;
use crate::metadata::elections::ElectionError;
use crate::metadata::reassignments::ReassignmentError;
use crate::metadata::scram_credentials::ScramCredentialError;
use crate::metadata::MetadataError;
use crate::replica::ReplicaError;
use crate::security::sasl::SaslError;

/// An error that a Kafka response can carry.
pub(crate) trait KafkaCode {
    fn kafka_error(&self) -> ResponseError;
}

impl KafkaCode for LogError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            LogError::CorruptMessage(_) => ResponseError::CorruptMessage,
            LogError::InvalidRecord(_) => ResponseError::InvalidRecord,
            LogError::MessageTooLarge { .. } | LogError::RecompressedTooLarge { .. } => ResponseError::MessageTooLarge,
            LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            LogError::InvalidPartition { .. } => ResponseError::InvalidTopicException,
            LogError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
            LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
            LogError::UnknownProducerId { .. } => ResponseError::UnknownProducerId,
            LogError::RecordsRejected {
                invalid_timestamp: true,
                ..
            } => ResponseError::InvalidTimestamp,
            LogError::RecordsRejected { .. } => ResponseError::InvalidRecord,
            LogError::InvalidTxnState(_) => ResponseError::InvalidTxnState,
            LogError::TransactionCoordinatorFenced { .. } => ResponseError::TransactionCoordinatorFenced,
            e if e.is_storage_failure() => ResponseError::KafkaStorageError,
            _ => ResponseError::UnknownServerError,
        }
    }
}

impl KafkaCode for ReplicaError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            ReplicaError::UnknownTopicOrPartition { .. } => ResponseError::UnknownTopicOrPartition,
            ReplicaError::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
            ReplicaError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
            ReplicaError::NotEnoughReplicasAfterAppend { .. } => ResponseError::NotEnoughReplicasAfterAppend,
            ReplicaError::Timeout => ResponseError::RequestTimedOut,
            ReplicaError::PolicyViolation(_) => ResponseError::PolicyViolation,
            ReplicaError::StaleFetch { .. } => ResponseError::FencedLeaderEpoch,
            ReplicaError::LogDirNotFound(_) => ResponseError::LogDirNotFound,
            ReplicaError::ReplicaNotAvailable { .. } => ResponseError::ReplicaNotAvailable,
            ReplicaError::Log(e) => e.kafka_error(),
        }
    }
}

impl KafkaCode for MetadataError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            MetadataError::InvalidTopic(_) => ResponseError::InvalidTopicException,
            MetadataError::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
            MetadataError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
            MetadataError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            MetadataError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            MetadataError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            MetadataError::InvalidConfig(_) => ResponseError::InvalidConfig,
            MetadataError::InvalidRequest(_) => ResponseError::InvalidRequest,
            MetadataError::InvalidUpdateVersion(_) => ResponseError::InvalidUpdateVersion,
            MetadataError::LocalStorage(_) => ResponseError::KafkaStorageError,
            MetadataError::ControllerUnavailable(_) => ResponseError::RequestTimedOut,
            MetadataError::Remote { code, .. } => {
                ResponseError::try_from_code(*code).unwrap_or(ResponseError::UnknownServerError)
            }
            MetadataError::Apply(_) | MetadataError::UnexpectedReply(_) => ResponseError::UnknownServerError,
            MetadataError::MetadataLogStopped => ResponseError::NotController,
        }
    }
}

impl KafkaCode for crate::authz::AclError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            crate::authz::AclError::Invalid(_) => ResponseError::InvalidRequest,
            // Kafka has no limit on ACLs, so no code of its own for reaching ours.
            crate::authz::AclError::TooMany(_) => ResponseError::PolicyViolation,
        }
    }
}

impl KafkaCode for RequestError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            RequestError::CursorTopicNotRequested(_)
            | RequestError::NegativeCursorPartition(_)
            | RequestError::UnsupportedConfigResource(_)
            | RequestError::UnexpectedBrokerId { .. }
            | RequestError::BrokerIdNotAnInteger(_)
            | RequestError::EmptyBrokerId
            | RequestError::EmptyGroupName
            | RequestError::UnknownElectionType(_) => ResponseError::InvalidRequest,
            // Kafka's answer to a resource type the request's version cannot list.
            RequestError::UnsupportedResourceType { .. } => ResponseError::UnsupportedVersion,
        }
    }
}

impl KafkaCode for ElectionError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            ElectionError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            ElectionError::ElectionNotNeeded => ResponseError::ElectionNotNeeded,
            ElectionError::PreferredLeaderNotAvailable => ResponseError::PreferredLeaderNotAvailable,
            ElectionError::EligibleLeadersNotAvailable => ResponseError::EligibleLeadersNotAvailable,
        }
    }
}

impl KafkaCode for ReassignmentError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            ReassignmentError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            ReassignmentError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            ReassignmentError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            ReassignmentError::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
        }
    }
}

impl KafkaCode for QuotaError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            QuotaError::Invalid(_) => ResponseError::InvalidRequest,
            QuotaError::UnsupportedEntityType(_) => ResponseError::UnsupportedVersion,
        }
    }
}

impl KafkaCode for ScramCredentialError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            ScramCredentialError::AlteredTwice | ScramCredentialError::DescribedTwice(_) => {
                ResponseError::DuplicateResource
            }
            ScramCredentialError::Unacceptable(_) => ResponseError::UnacceptableCredential,
            ScramCredentialError::UnknownMechanism => ResponseError::UnsupportedSaslMechanism,
            ScramCredentialError::DeleteMissing | ScramCredentialError::DescribeMissing(_) => {
                ResponseError::ResourceNotFound
            }
        }
    }
}

impl KafkaCode for SaslError {
    fn kafka_error(&self) -> ResponseError {
        match self {
            SaslError::UnsupportedMechanism(_) => ResponseError::UnsupportedSaslMechanism,
            SaslError::IllegalState(_) => ResponseError::IllegalSaslState,
            SaslError::AuthenticationFailed(_) => ResponseError::SaslAuthenticationFailed,
        }
    }
}
