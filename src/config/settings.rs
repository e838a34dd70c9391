//! The table of broker settings: name, type, default, check, and one line of documentation.
//!
//! One macro invocation declares each setting once; from it come the typed field, the parser,
//! the default, and the entry DescribeConfigs reports. Adding a setting is one line here plus
//! its commented-out line in `config/sluice.toml` (tests check the file documents every
//! setting at its true default and sets none: a set one would report STATIC_BROKER_CONFIG).

use std::collections::BTreeMap;

use super::{Catalog, ConfigError, ConfigType, Listener};
use crate::security::{parse_protocol_map, SecurityProtocol};

/// Where a setting's value came from: DescribeConfigs reports `File` and `Override` as
/// STATIC_BROKER_CONFIG and `Default` as DEFAULT_CONFIG, so a file that repeats a default
/// makes it look chosen by the operator. `ClusterDefault` is a value set for every broker at
/// run time, in the metadata log (`kafka-configs --entity-default`): DYNAMIC_DEFAULT_BROKER_CONFIG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Override,
    ClusterDefault,
}

/// One setting as DescribeConfigs shows it.
#[derive(Debug, Clone)]
pub struct Setting {
    pub name: &'static str,
    /// None: not set and without a default (Kafka's null).
    pub value: Option<String>,
    /// What it is when nobody sets it; None where Kafka's default is null.
    pub default: Option<String>,
    pub source: Source,
    pub config_type: ConfigType,
    pub doc: &'static str,
}

/// A value type a setting can have.
trait SettingValue: Sized {
    /// Kafka's type for a setting of this Rust type (a setting may declare another).
    const KAFKA_TYPE: ConfigType;
    fn parse_value(s: &str) -> Result<Self, String>;
    /// None is Kafka's null: an optional setting left unset.
    fn show(&self) -> Option<String>;
}

macro_rules! int_setting_value {
    ($($t:ty => $kafka:ident),*) => {$(
        impl SettingValue for $t {
            const KAFKA_TYPE: ConfigType = ConfigType::$kafka;
            fn parse_value(s: &str) -> Result<Self, String> {
                s.trim().parse().map_err(|_| format!("not a {}", stringify!($t)))
            }
            fn show(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}
int_setting_value!(i16 => Short, i32 => Int, i64 => Long);

impl SettingValue for f64 {
    const KAFKA_TYPE: ConfigType = ConfigType::Double;
    fn parse_value(s: &str) -> Result<Self, String> {
        match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err("not a finite number".into()),
        }
    }
    fn show(&self) -> Option<String> {
        Some(java_double(*self))
    }
}

/// A double as Java's `Double.toString` writes it (what Kafka's DescribeConfigs shows):
/// plain with at least one decimal in [1e-3, 1e7), else `d.dddE±n`.
fn java_double(v: f64) -> String {
    let magnitude = v.abs();
    if v == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let plain = format!("{v}");
        return if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        };
    }
    let sci = format!("{v:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

impl SettingValue for bool {
    const KAFKA_TYPE: ConfigType = ConfigType::Boolean;
    fn parse_value(s: &str) -> Result<Self, String> {
        match s.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("expected true or false".into()),
        }
    }
    fn show(&self) -> Option<String> {
        Some(self.to_string())
    }
}

impl SettingValue for String {
    const KAFKA_TYPE: ConfigType = ConfigType::String;
    fn parse_value(s: &str) -> Result<Self, String> {
        Ok(s.to_string())
    }
    fn show(&self) -> Option<String> {
        Some(self.clone())
    }
}

impl SettingValue for Vec<Listener> {
    const KAFKA_TYPE: ConfigType = ConfigType::List;
    fn parse_value(s: &str) -> Result<Self, String> {
        Listener::parse_list(s)
    }
    fn show(&self) -> Option<String> {
        Some(self.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(","))
    }
}

/// An optional setting, as Kafka has them (`log.retention.ms`, `broker.rack`, …): "" leaves
/// it unset, which DescribeConfigs shows as null.
impl<T: SettingValue> SettingValue for Option<T> {
    const KAFKA_TYPE: ConfigType = T::KAFKA_TYPE;
    fn parse_value(s: &str) -> Result<Self, String> {
        match s.trim() {
            "" => Ok(None),
            _ => T::parse_value(s).map(Some),
        }
    }
    fn show(&self) -> Option<String> {
        self.as_ref().and_then(T::show)
    }
}

/// A setting's Kafka type: its Rust type's, unless the table names another.
macro_rules! kafka_type {
    ($ty:ty) => {
        <$ty as SettingValue>::KAFKA_TYPE
    };
    ($ty:ty, $kafka:ident) => {
        ConfigType::$kafka
    };
}

fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

fn positive(v: &i64) -> Result<(), String> {
    (*v > 0).then_some(()).ok_or_else(|| "must be > 0".into())
}

/// `group.coordinator.rebalance.protocols`: a list of `classic` and `consumer` with `classic`
/// in it, as Kafka requires (`streams` and `share` are accepted and not served).
#[allow(clippy::ptr_arg)] // The settings table hands every check a `&T` of the field type.
fn rebalance_protocols(v: &String) -> Result<(), String> {
    let listed: Vec<&str> = v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if let Some(bad) = listed
        .iter()
        .find(|p| !matches!(**p, "classic" | "consumer" | "streams" | "share"))
    {
        return Err(format!("unknown group protocol {bad}"));
    }
    if !listed.contains(&"classic") {
        return Err("must contain classic".into());
    }
    Ok(())
}

/// `group.consumer.assignors`: at least one, each a known server-side assignor.
#[allow(clippy::ptr_arg)] // The settings table hands every check a `&T` of the field type.
fn consumer_assignors(v: &String) -> Result<(), String> {
    let names: Vec<String> = crate::group::consumer::assignor::configured(v);
    if names.is_empty() {
        return Err("must name at least one assignor".into());
    }
    match names.iter().find(|n| !crate::group::consumer::assignor::is_known(n)) {
        Some(bad) => Err(format!("unknown assignor {bad} (uniform and range are served)")),
        None => Ok(()),
    }
}

fn positive_i32(v: &i32) -> Result<(), String> {
    (*v > 0).then_some(()).ok_or_else(|| "must be > 0".into())
}

/// Kafka's bounds on `group.share.record.lock.duration.ms`.
fn share_lock_duration(v: &i32) -> Result<(), String> {
    (1000..=3_600_000)
        .contains(v)
        .then_some(())
        .ok_or_else(|| "must be in [1000, 3600000]".into())
}

/// Kafka's bounds on `group.share.delivery.count.limit`.
fn share_delivery_count(v: &i32) -> Result<(), String> {
    (2..=10)
        .contains(v)
        .then_some(())
        .ok_or_else(|| "must be in [2, 10]".into())
}

/// Kafka's bounds on `group.share.partition.max.record.locks`.
fn share_record_locks(v: &i32) -> Result<(), String> {
    (100..=10_000)
        .contains(v)
        .then_some(())
        .ok_or_else(|| "must be in [100, 10000]".into())
}

fn non_negative_i32(v: &i32) -> Result<(), String> {
    (*v >= 0).then_some(()).ok_or_else(|| "must be >= 0".into())
}

fn non_negative(v: &i64) -> Result<(), String> {
    (*v >= 0).then_some(()).ok_or_else(|| "must be >= 0".into())
}

fn positive_f64(v: &f64) -> Result<(), String> {
    (*v > 0.0).then_some(()).ok_or_else(|| "must be > 0".into())
}

fn load_factor(v: &f64) -> Result<(), String> {
    (*v > 0.0 && *v <= 1.0)
        .then_some(())
        .ok_or_else(|| "must be in (0, 1]".into())
}

fn minus_one_or_positive(v: &i64) -> Result<(), String> {
    (*v == -1 || *v > 0)
        .then_some(())
        .ok_or_else(|| "must be -1 or > 0".into())
}

fn unset_or_minus_one_or_positive(v: &Option<i64>) -> Result<(), String> {
    v.as_ref().map_or(Ok(()), minus_one_or_positive)
}

fn unset_or_positive(v: &Option<i64>) -> Result<(), String> {
    v.as_ref().map_or(Ok(()), positive)
}

fn positive_i16(v: &i16) -> Result<(), String> {
    (*v > 0).then_some(()).ok_or_else(|| "must be > 0".into())
}

fn segment_bytes(v: &i32) -> Result<(), String> {
    // An int, so never past 2 GiB (the .index stores u32 file positions).
    (*v >= 14).then_some(()).ok_or_else(|| "must be at least 14".into())
}

#[allow(clippy::ptr_arg)] // The settings table hands every check a `&T` of the field type.
fn process_roles(v: &String) -> Result<(), String> {
    let roles: Vec<&str> = v.split(',').map(str::trim).filter(|r| !r.is_empty()).collect();
    if roles.is_empty() || roles.iter().any(|r| !matches!(*r, "broker" | "controller")) {
        return Err("expected broker, controller, or both".into());
    }
    Ok(())
}

#[allow(clippy::ptr_arg)] // The settings table hands every check a `&T` of the field type.
fn host_port(v: &String) -> Result<(), String> {
    v.parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|_| "expected host:port, e.g. 127.0.0.1:9644".into())
}

#[allow(clippy::ptr_arg)] // The settings table hands every check a `&T` of the field type.
fn cleanup_policy(v: &String) -> Result<(), String> {
    crate::metadata::topic_config::check_cleanup_policy(v)
}

#[allow(clippy::ptr_arg)] // The settings table hands every check a `&T` of the field type.
fn protocol_map(v: &String) -> Result<(), String> {
    crate::security::parse_protocol_map(v).map(|_| ())
}

#[allow(clippy::ptr_arg)] // The settings table hands every check a `&T` of the field type.
fn sasl_mechanisms(v: &String) -> Result<(), String> {
    let supported = crate::security::sasl::SUPPORTED_MECHANISMS;
    match v.split(',').map(str::trim).find(|m| !supported.contains(m)) {
        Some(m) => Err(format!(
            "mechanism '{m}' is not supported (supported: {})",
            supported.join(",")
        )),
        None => Ok(()),
    }
}

#[allow(clippy::ptr_arg)] // The settings table hands every check a `&T` of the field type.
fn authorizer_class(v: &String) -> Result<(), String> {
    crate::authz::Authorizer::new(v, "", false).map(|_| ())
}

#[allow(clippy::ptr_arg)] // The settings table hands every check a `&T` of the field type.
fn super_users_list(v: &String) -> Result<(), String> {
    crate::authz::Authorizer::new("", v, false).map(|_| ())
}

fn scram_bootstrap(v: &Option<String>) -> Result<(), String> {
    v.as_deref().map_or(Ok(()), |s| {
        crate::metadata::scram_credentials::parse_bootstrap(s).map(|_| ())
    })
}

fn plain_users(v: &Option<String>) -> Result<(), String> {
    v.as_deref()
        .map_or(Ok(()), |u| crate::security::plain::PlainUsers::parse(u).map(|_| ()))
}

#[allow(clippy::ptr_arg)] // The settings table hands every check a `&T` of the field type.
fn pem_only(v: &String) -> Result<(), String> {
    (v == "PEM").then_some(()).ok_or_else(|| "only PEM is supported".into())
}

#[allow(clippy::ptr_arg)] // The settings table hands every check a `&T` of the field type.
fn principal_rules(v: &String) -> Result<(), String> {
    crate::security::ssl_principal::SslPrincipalMapper::parse(v)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[allow(clippy::ptr_arg)] // The settings table hands every check a `&T` of the field type.
fn client_auth(v: &String) -> Result<(), String> {
    crate::security::tls::ClientAuth::parse(v).map(|_| ())
}

macro_rules! settings {
    ($( $(#[doc = $doc:literal])+ $field:ident : $ty:ty = $name:literal, $default:literal, $check:expr $(, $kafka:ident)?; )*) => {
        /// Every broker setting, typed. Field names are the Kafka names with `_` for `.`.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $( $(#[doc = $doc])+ pub $field: $ty, )*
            sources: BTreeMap<&'static str, Source>,
            /// The settings by name, built on first use (settings never change once loaded).
            catalog: std::sync::OnceLock<std::sync::Arc<Catalog>>,
        }

        impl Settings {
            /// Builds settings from dotted keys; every key must be known, every value valid.
            pub(super) fn from_layers(mut layers: Layers) -> Result<Settings, ConfigError> {
                let mut sources = BTreeMap::new();
                let settings = Settings {
                    $( $field: take::<$ty>(&mut layers, &mut sources, $name, $default, $check)?, )*
                    sources,
                    catalog: Default::default(),
                };
                match layers.file.into_keys().chain(layers.overrides.into_keys()).next() {
                    Some(unknown) => Err(ConfigError::Unknown(unknown)),
                    None => Ok(settings),
                }
            }

            /// Every setting with its value, default, source and type, in declaration order.
            pub fn entries(&self) -> Vec<Setting> {
                vec![$( Setting {
                    name: $name,
                    value: self.$field.show(),
                    default: <$ty as SettingValue>::parse_value($default).ok().and_then(|d| d.show()),
                    source: self.source($name),
                    config_type: kafka_type!($ty $(, $kafka)?),
                    doc: concat!($($doc),+).trim_start(),
                }, )*]
            }
        }
    };
}

/// Raw dotted-key values: from the file, and from `--override` (which wins).
#[derive(Debug, Default)]
pub(super) struct Layers {
    pub(super) file: BTreeMap<String, String>,
    pub(super) overrides: BTreeMap<String, String>,
}

fn take<T: SettingValue>(
    layers: &mut Layers,
    sources: &mut BTreeMap<&'static str, Source>,
    name: &'static str,
    default: &'static str,
    check: fn(&T) -> Result<(), String>,
) -> Result<T, ConfigError> {
    let from_file = layers.file.remove(name);
    let (raw, source) = match (layers.overrides.remove(name), from_file) {
        (Some(v), _) => (v, Source::Override),
        (None, Some(v)) => (v, Source::File),
        (None, None) => (default.to_string(), Source::Default),
    };
    let bad = |reason: String| ConfigError::BadValue {
        name: name.to_string(),
        value: raw.clone(),
        reason,
    };
    let value = T::parse_value(&raw).map_err(bad)?;
    check(&value).map_err(bad)?;
    sources.insert(name, source);
    Ok(value)
}

settings! {
    /// This node's id, unique in the cluster.
    node_id: i32 = "node.id", "1", non_negative_i32;
    /// What this node is: `broker`, `controller` (a voter of the metadata quorum), or both.
    process_roles: String = "process.roles", "broker,controller", process_roles, List;
    /// The metadata quorum's voters as `id@host:port` (their controller listeners), comma
    /// separated; empty means this node alone (a single-node cluster).
    controller_quorum_voters: String = "controller.quorum.voters", "", any, List;
    /// Names of the listeners that carry controller traffic (Raft, forwarded admin requests).
    controller_listener_names: String = "controller.listener.names", "CONTROLLER", any, List;
    /// Without a message from the active controller for this long, a voter starts an election
    /// (randomised up to twice this).
    controller_quorum_election_timeout_ms: i32 = "controller.quorum.election.timeout.ms", "1000", positive_i32;
    /// How long a broker keeps trying to get a metadata change to the active controller
    /// before answering REQUEST_TIMED_OUT.
    controller_request_timeout_ms: i32 = "controller.request.timeout.ms", "15000", positive_i32;
    /// How often a broker heartbeats to the active controller.
    broker_heartbeat_interval_ms: i32 = "broker.heartbeat.interval.ms", "2000", positive_i32;
    /// A broker with no heartbeat for this long is fenced: its partitions lose their leader.
    broker_session_timeout_ms: i32 = "broker.session.timeout.ms", "9000", positive_i32;
    /// The rack this broker is in (unset: none); replicas of a partition are spread over racks.
    broker_rack: Option<String> = "broker.rack", "", any;
    /// Where clients connect: comma-separated NAME://host:port.
    listeners: Vec<Listener> = "listeners", "PLAINTEXT://127.0.0.1:9092", any;
    /// What clients are told to connect to; unset means the same as `listeners`.
    advertised_listeners: Option<Vec<Listener>> = "advertised.listeners", "", any;
    /// The security protocol of each listener, as NAME:PROTOCOL pairs (PLAINTEXT, SSL,
    /// SASL_PLAINTEXT, SASL_SSL). A controller listener not named here is PLAINTEXT.
    listener_security_protocol_map: String = "listener.security.protocol.map",
        "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", protocol_map, List;
    /// The listener other brokers replicate from, advertised in this broker's registration;
    /// unset, the listener named PLAINTEXT, else the first one. Must be PLAINTEXT in a cluster.
    inter_broker_listener_name: Option<String> = "inter.broker.listener.name", "", any;
    /// The authorizer: empty (none: every request allowed) or Kafka's
    /// org.apache.kafka.metadata.authorizer.StandardAuthorizer (ACLs in the metadata log).
    authorizer_class_name: String = "authorizer.class.name", "", authorizer_class;
    /// Principals allowed everything, semicolon separated (`User:admin;User:ANONYMOUS`).
    super_users: String = "super.users", "", super_users_list;
    /// Whether a resource no ACL covers is open to everyone (else only to super users).
    allow_everyone_if_no_acl_found: bool = "allow.everyone.if.no.acl.found", "false", any;
    /// SASL mechanisms SASL_PLAINTEXT and SASL_SSL listeners accept: PLAIN, SCRAM-SHA-256,
    /// SCRAM-SHA-512.
    sasl_enabled_mechanisms: String = "sasl.enabled.mechanisms", "PLAIN", sasl_mechanisms, List;
    /// Users of SASL/PLAIN as `user:password` pairs, comma separated (Kafka's
    /// `user_<name>="<password>"` JAAS entries).
    sasl_plain_users: Option<String> = "sasl.plain.users", "", plain_users, Password;
    /// A new cluster's first SCRAM credentials, written to the metadata log once, with its
    /// first change (Kafka's `kafka-storage format --add-scram`), e.g.
    /// `SCRAM-SHA-256=[name=admin,password=admin-secret]`; several separated by ';'.
    sasl_scram_bootstrap_credentials: Option<String> = "sasl.scram.bootstrap.credentials", "", scram_bootstrap, Password;
    /// Largest SASL frame a client may send before it has authenticated.
    sasl_server_max_receive_size: i32 = "sasl.server.max.receive.size", "524288", positive_i32;
    /// Format of the keystore: PEM only.
    ssl_keystore_type: String = "ssl.keystore.type", "PEM", pem_only;
    /// PEM file with the listener's private key (unencrypted) and certificate chain.
    ssl_keystore_location: Option<String> = "ssl.keystore.location", "", any;
    /// The certificate chain as PEM text (instead of ssl.keystore.location).
    ssl_keystore_certificate_chain: Option<String> = "ssl.keystore.certificate.chain", "", any, Password;
    /// The private key as unencrypted PEM text (with ssl.keystore.certificate.chain).
    ssl_keystore_key: Option<String> = "ssl.keystore.key", "", any, Password;
    /// Format of the truststore: PEM only.
    ssl_truststore_type: String = "ssl.truststore.type", "PEM", pem_only;
    /// PEM file with the CA certificates client certificates are checked against.
    ssl_truststore_location: Option<String> = "ssl.truststore.location", "", any;
    /// The CA certificates as PEM text (instead of ssl.truststore.location).
    ssl_truststore_certificates: Option<String> = "ssl.truststore.certificates", "", any, Password;
    /// Client certificates on SSL listeners: none, requested, or required.
    ssl_client_auth: String = "ssl.client.auth", "none", client_auth;
    /// How the subject of a client certificate becomes the principal's name: Kafka's
    /// `RULE:pattern/replacement/[LU]` entries and `DEFAULT` (the DN itself), first match wins.
    ssl_principal_mapping_rules: String = "ssl.principal.mapping.rules", "DEFAULT", principal_rules;
    /// Log directories, comma-separated (JBOD): partition logs are spread over them, the
    /// metadata log lives in the first. Unset, `log.dir` is used.
    log_dirs: Option<String> = "log.dirs", "", any, List;
    /// The log directory (or comma-separated directories) when `log.dirs` is not set.
    log_dir: String = "log.dir", "./data", any, List;
    /// Partitions of an auto-created topic, and of CreateTopics asking for -1.
    num_partitions: i32 = "num.partitions", "1", positive_i32;
    /// Replication factor of auto-created topics and of CreateTopics asking for -1.
    default_replication_factor: i32 = "default.replication.factor", "1", positive_i32;
    /// Create a topic when a client asks Metadata for one that does not exist.
    auto_create_topics_enable: bool = "auto.create.topics.enable", "true", any;
    /// Roll to a new segment when the active one would pass this size.
    log_segment_bytes: i32 = "log.segment.bytes", "1073741824", segment_bytes;
    /// Roll to a new segment when the active one is older than this; unset, `log.roll.hours`.
    log_roll_ms: Option<i64> = "log.roll.ms", "", unset_or_positive;
    /// Roll to a new segment when the active one is older than this many hours (7 days).
    log_roll_hours: i32 = "log.roll.hours", "168", positive_i32;
    /// Delete whole segments whose newest record is older than this (-1 keeps forever); unset,
    /// `log.retention.minutes` decides, and unset too, `log.retention.hours`.
    log_retention_ms: Option<i64> = "log.retention.ms", "", unset_or_minus_one_or_positive;
    /// Retention in minutes, when `log.retention.ms` is not set.
    log_retention_minutes: Option<i32> = "log.retention.minutes", "", any;
    /// Retention in hours (7 days), when neither of the above is set; negative keeps forever.
    log_retention_hours: i32 = "log.retention.hours", "168", any;
    /// Delete oldest segments while a partition is larger than this; -1 means no limit.
    log_retention_bytes: i64 = "log.retention.bytes", "-1", minus_one_or_positive;
    /// How often retention runs.
    log_retention_check_interval_ms: i64 = "log.retention.check.interval.ms", "300000", positive;
    /// fsync a partition after this many records; the default leaves it to the OS, as Kafka does.
    log_flush_interval_messages: i64 = "log.flush.interval.messages", "9223372036854775807", positive;
    /// fsync a partition when its last fsync is older than this; unset, never by time.
    log_flush_interval_ms: Option<i64> = "log.flush.interval.ms", "", unset_or_positive;
    /// Add a sparse index entry after this many bytes of log.
    log_index_interval_bytes: i32 = "log.index.interval.bytes", "4096", positive_i32;
    /// Default cleanup.policy of topics: delete (retention), compact (the log cleaner keeps the
    /// latest record per key), both, or empty (keep everything).
    log_cleanup_policy: String = "log.cleanup.policy", "delete", cleanup_policy, List;
    /// Run the log cleaner, which compacts the topics whose cleanup.policy includes compact
    /// (`__consumer_offsets` among them).
    log_cleaner_enable: bool = "log.cleaner.enable", "true", any;
    /// Background threads that clean compacted logs (0: none).
    log_cleaner_threads: i32 = "log.cleaner.threads", "1", non_negative_i32;
    /// Memory for the cleaners' key-to-offset maps, shared out over the threads: bounds how
    /// much dirty log one cleaning can take (24 bytes per key).
    log_cleaner_dedupe_buffer_size: i64 = "log.cleaner.dedupe.buffer.size", "134217728", positive;
    /// How full a cleaner's key map may become before it stops taking more of the log.
    log_cleaner_io_buffer_load_factor: f64 = "log.cleaner.io.buffer.load.factor", "0.9", load_factor;
    /// Bytes a cleaner reads and writes between throttle checks (its I/O chunk).
    log_cleaner_io_buffer_size: i32 = "log.cleaner.io.buffer.size", "524288", positive_i32;
    /// Cap on the cleaners' read plus write throughput, bytes per second.
    log_cleaner_io_max_bytes_per_second: f64 = "log.cleaner.io.max.bytes.per.second", "1.7976931348623157E308", positive_f64;
    /// How long an idle cleaner sleeps before it looks for a dirty log again.
    log_cleaner_backoff_ms: i64 = "log.cleaner.backoff.ms", "15000", non_negative;
    // The broker-wide defaults of topic configs, under Kafka's names. Each is checked by its
    // topic config's rule (`topic_config::check_broker_defaults`); those of features Sluice
    // does not have yet (tiered storage, compression levels, preallocation) are accepted and
    // reported, and act on nothing yet.
    /// Default compression.type of topics: producer, uncompressed, gzip, snappy, lz4 or zstd.
    compression_type: String = "compression.type", "producer", any;
    /// Default gzip level (1-9, -1 for the codec's default) of topics (not used yet).
    compression_gzip_level: i32 = "compression.gzip.level", "-1", any;
    /// Default lz4 level (1-17) of topics (not used yet).
    compression_lz4_level: i32 = "compression.lz4.level", "9", any;
    /// Default zstd level (-131072-22) of topics (not used yet).
    compression_zstd_level: i32 = "compression.zstd.level", "3", any;
    /// Default delete.retention.ms of compacted topics: how long delete markers are kept after
    /// the cleaning that first kept them.
    log_cleaner_delete_retention_ms: i64 = "log.cleaner.delete.retention.ms", "86400000", any;
    /// Default min.compaction.lag.ms: how long a record stays uncompacted at least.
    log_cleaner_min_compaction_lag_ms: i64 = "log.cleaner.min.compaction.lag.ms", "0", any;
    /// Default max.compaction.lag.ms: how long a record may stay uncompacted at most.
    log_cleaner_max_compaction_lag_ms: i64 = "log.cleaner.max.compaction.lag.ms", "9223372036854775807", any;
    /// Default min.cleanable.dirty.ratio: the share of a log that must be uncompacted before it is compacted.
    log_cleaner_min_cleanable_ratio: f64 = "log.cleaner.min.cleanable.ratio", "0.5", any;
    /// Default file.delete.delay.ms: how long a deleted segment's files are kept.
    log_segment_delete_delay_ms: i64 = "log.segment.delete.delay.ms", "60000", any;
    /// Default message.timestamp.type of topics: CreateTime (the producer's) or LogAppendTime (the leader stamps each batch).
    log_message_timestamp_type: String = "log.message.timestamp.type", "CreateTime", any;
    /// Default message.timestamp.before.max.ms: a CreateTime record older than this is refused (INVALID_TIMESTAMP).
    log_message_timestamp_before_max_ms: i64 = "log.message.timestamp.before.max.ms", "9223372036854775807", any;
    /// Default message.timestamp.after.max.ms: a CreateTime record more than this in the future is refused.
    log_message_timestamp_after_max_ms: i64 = "log.message.timestamp.after.max.ms", "3600000", any;
    /// Default preallocate: create segment files at full size (not done yet).
    log_preallocate: bool = "log.preallocate", "false", any;
    /// Default segment.index.bytes: the most an offset or time index may hold.
    log_index_size_max_bytes: i32 = "log.index.size.max.bytes", "10485760", any;
    /// Default max.decompressed.message.bytes: the most a compressed batch may expand to.
    max_decompressed_message_bytes: i32 = "max.decompressed.message.bytes", "2147483639", any;
    /// Default unclean.leader.election.enable: whether a replica out of sync may become leader.
    unclean_leader_election_enable: bool = "unclean.leader.election.enable", "false", any;
    /// Default local.retention.ms of tiered topics (-2: retention.ms); tiered storage is not implemented.
    log_local_retention_ms: i64 = "log.local.retention.ms", "-2", any;
    /// Default local.retention.bytes of tiered topics (-2: retention.bytes); tiered storage is not implemented.
    log_local_retention_bytes: i64 = "log.local.retention.bytes", "-2", any;
    /// Default remote.copy.lag.ms of tiered topics; tiered storage is not implemented.
    log_remote_copy_lag_ms: i64 = "log.remote.copy.lag.ms", "0", any;
    /// Default remote.copy.lag.bytes of tiered topics; tiered storage is not implemented.
    log_remote_copy_lag_bytes: i64 = "log.remote.copy.lag.bytes", "-1", any;
    /// Largest record batch a producer may send (whole batch, with its 12-byte log overhead).
    message_max_bytes: i32 = "message.max.bytes", "1048588", positive_i32;
    /// Largest request frame a client may send; a bigger one closes the connection.
    socket_request_max_bytes: i32 = "socket.request.max.bytes", "104857600", positive_i32;
    /// Most requests one connection may have in flight (pipelined) before the broker stops reading it.
    queued_max_requests: i32 = "queued.max.requests", "500", positive_i32;
    /// Bytes of requests the broker holds at once, from reading a request's size until its response is written (each counted as at least 1 KiB); a connection whose next request does not fit is not read until others finish. -1: unbounded (Kafka's default).
    queued_max_request_bytes: i64 = "queued.max.request.bytes", "536870912", minus_one_or_positive;
    /// Close a connection that sent nothing for this long while none of its requests was in flight (also a half-sent request).
    connections_max_idle_ms: i64 = "connections.max.idle.ms", "600000", positive;
    /// How long a client that failed SASL authentication waits for its answer (and the
    /// close): bounds how fast one connection can guess passwords.
    connection_failed_authentication_delay_ms: i32 = "connection.failed.authentication.delay.ms", "100", non_negative_i32;
    /// How many windows a client quota's rate is measured over.
    quota_window_num: i32 = "quota.window.num", "11", positive_i32;
    /// How long each of those windows is, in seconds.
    quota_window_size_seconds: i32 = "quota.window.size.seconds", "1", positive_i32;
    /// Most open client connections; more are closed at accept.
    max_connections: i32 = "max.connections", "10000", positive_i32;
    /// Fewest in-sync replicas for an acks=all produce to succeed, and for the high watermark to move (capped at the replication factor).
    min_insync_replicas: i32 = "min.insync.replicas", "1", positive_i32;
    /// A follower not caught up with its leader for this long leaves the ISR.
    replica_lag_time_max_ms: i64 = "replica.lag.time.max.ms", "30000", positive;
    /// Most bytes a follower asks for per partition in one fetch.
    replica_fetch_max_bytes: i32 = "replica.fetch.max.bytes", "1048576", positive_i32;
    /// Most bytes a follower asks for in one fetch, over all partitions.
    replica_fetch_response_max_bytes: i32 = "replica.fetch.response.max.bytes", "10485760", positive_i32;
    /// Longest a follower's fetch waits at its leader for new data.
    replica_fetch_wait_max_ms: i32 = "replica.fetch.wait.max.ms", "500", positive_i32;
    /// Bytes a follower's fetch waits for at its leader before it is answered.
    replica_fetch_min_bytes: i32 = "replica.fetch.min.bytes", "1", positive_i32;
    /// How long a follower waits after a failed fetch before it tries again.
    replica_fetch_backoff_ms: i32 = "replica.fetch.backoff.ms", "1000", positive_i32;
    /// Threads that write partition logs (a produce's appends run there, in request order per connection), so no disk write holds up the threads serving the network.
    num_io_threads: i32 = "num.io.threads", "8", positive_i32;
    /// Fetcher tasks per source broker; partitions are spread over them.
    num_replica_fetchers: i32 = "num.replica.fetchers", "1", positive_i32;
    /// Threads that copy replicas between log dirs (AlterReplicaLogDirs); unset: one per log dir.
    num_replica_alter_log_dirs_threads: Option<i32> = "num.replica.alter.log.dirs.threads", "", any;
    /// Bytes per second all log dir moves together may copy.
    replica_alter_log_dirs_io_max_bytes_per_second: f64 = "replica.alter.log.dirs.io.max.bytes.per.second", "9223372036854775807", positive_f64;
    /// How often each log dir's replication-offset-checkpoint (high watermarks) is written.
    replica_high_watermark_checkpoint_interval_ms: i64 = "replica.high.watermark.checkpoint.interval.ms", "5000", positive;
    /// The active controller moves each partition's leadership back to its first replica (a
    /// preferred election) when that replica is in the ISR, every leader.imbalance.check.interval.seconds.
    auto_leader_rebalance_enable: bool = "auto.leader.rebalance.enable", "true", any;
    /// How often the active controller looks for partitions not led by their first replica.
    leader_imbalance_check_interval_seconds: i64 = "leader.imbalance.check.interval.seconds", "300", positive;
    /// Accepted for compatibility, never read: as Kafka's KRaft controller, Sluice rebalances
    /// every imbalanced partition, whatever the broker's share of them.
    leader_imbalance_per_broker_percentage: i32 = "leader.imbalance.per.broker.percentage", "10", non_negative_i32;
    /// How long a group coordinator waits for an offset commit to be committed by the ISR.
    offsets_commit_timeout_ms: i32 = "offsets.commit.timeout.ms", "5000", positive_i32;
    /// How long the first rebalance of an empty group waits for more members to join.
    group_initial_rebalance_delay_ms: i32 = "group.initial.rebalance.delay.ms", "3000", non_negative_i32;
    /// Smallest session timeout a consumer may ask for.
    group_min_session_timeout_ms: i32 = "group.min.session.timeout.ms", "6000", positive_i32;
    /// Largest session timeout a consumer may ask for.
    group_max_session_timeout_ms: i32 = "group.max.session.timeout.ms", "1800000", positive_i32;
    /// Most members one consumer group may have.
    group_max_size: i32 = "group.max.size", "2147483647", positive_i32;
    /// Which group protocols the coordinator serves: `classic`, `consumer` (KIP-848).
    group_coordinator_rebalance_protocols: String = "group.coordinator.rebalance.protocols", "classic,consumer", rebalance_protocols, List;
    /// A KIP-848 consumer group member that sends no heartbeat for this long is removed.
    group_consumer_session_timeout_ms: i32 = "group.consumer.session.timeout.ms", "45000", positive_i32;
    /// How often KIP-848 consumer group members heartbeat.
    group_consumer_heartbeat_interval_ms: i32 = "group.consumer.heartbeat.interval.ms", "5000", positive_i32;
    /// Most members one KIP-848 consumer group may have.
    group_consumer_max_size: i32 = "group.consumer.max.size", "2147483647", positive_i32;
    /// Server-side assignors of KIP-848 consumer groups (`uniform`, `range`, or Kafka's class names), the first the default.
    group_consumer_assignors: String = "group.consumer.assignors", "uniform,range", consumer_assignors, List;
    /// Partitions of `__consumer_offsets`; a group lives on partition hash(group) % this. Fixed once created.
    offsets_topic_num_partitions: i32 = "offsets.topic.num.partitions", "50", positive_i32;
    /// Replication factor of `__consumer_offsets` (capped at the number of brokers).
    offsets_topic_replication_factor: i16 = "offsets.topic.replication.factor", "3", positive_i16;
    /// Segment size of `__consumer_offsets`.
    offsets_topic_segment_bytes: i32 = "offsets.topic.segment.bytes", "104857600", segment_bytes;
    /// Committed offsets of an empty group are deleted after this many minutes (7 days).
    offsets_retention_minutes: i32 = "offsets.retention.minutes", "10080", positive_i32;
    /// How often expired offsets are looked for.
    offsets_retention_check_interval_ms: i64 = "offsets.retention.check.interval.ms", "600000", positive;
    /// Longest metadata string an offset commit may carry.
    offset_metadata_max_bytes: i32 = "offset.metadata.max.bytes", "4096", positive_i32;
    /// How long the broker waits for what a request needs from other brokers and replicas: a transaction marker written and replicated, a coordinator's answer.
    request_timeout_ms: i32 = "request.timeout.ms", "30000", positive_i32;
    /// Forget an idempotent producer's sequence state after this long without a write from it.
    producer_id_expiration_ms: i32 = "producer.id.expiration.ms", "86400000", positive_i32;
    /// Partitions of `__transaction_state`; a transactional id lives on partition hash(id) % this. Fixed once created.
    transaction_state_log_num_partitions: i32 = "transaction.state.log.num.partitions", "50", positive_i32;
    /// Replication factor of `__transaction_state` (capped at the number of brokers).
    transaction_state_log_replication_factor: i16 = "transaction.state.log.replication.factor", "3", positive_i16;
    /// Segment size of `__transaction_state`.
    transaction_state_log_segment_bytes: i32 = "transaction.state.log.segment.bytes", "104857600", segment_bytes;
    /// min.insync.replicas of `__transaction_state` (capped at its replication factor).
    transaction_state_log_min_isr: i32 = "transaction.state.log.min.isr", "2", positive_i32;
    /// Longest transaction timeout a producer may ask for; a longer one is INVALID_TRANSACTION_TIMEOUT.
    transaction_max_timeout_ms: i32 = "transaction.max.timeout.ms", "900000", positive_i32;
    /// A transactional id without a transaction for this long is forgotten (7 days).
    transactional_id_expiration_ms: i32 = "transactional.id.expiration.ms", "604800000", positive_i32;
    /// How often transactions open past their timeout are looked for (and aborted).
    transaction_abort_timed_out_transaction_cleanup_interval_ms: i32 = "transaction.abort.timed.out.transaction.cleanup.interval.ms", "10000", positive_i32;
    /// How often expired transactional ids are looked for.
    transaction_remove_expired_transaction_cleanup_interval_ms: i32 = "transaction.remove.expired.transaction.cleanup.interval.ms", "3600000", positive_i32;
    /// Whether a partition leader asks a transaction's coordinator before a producer's first transactional batch there (KIP-890).
    transaction_partition_verification_enable: bool = "transaction.partition.verification.enable", "true", any;
    /// Share groups (KIP-932): how long a share consumer holds an acquired record before it is delivered again (a group's `share.record.lock.duration.ms` overrides it).
    group_share_record_lock_duration_ms: i32 = "group.share.record.lock.duration.ms", "30000", share_lock_duration;
    /// Share groups: deliveries of one record before it is archived (a group's `share.delivery.count.limit` overrides it).
    group_share_delivery_count_limit: i32 = "group.share.delivery.count.limit", "5", share_delivery_count;
    /// Share groups: most records in flight (acquired or awaiting redelivery) per share-partition.
    group_share_partition_max_record_locks: i32 = "group.share.partition.max.record.locks", "2000", share_record_locks;
    /// Share groups: most members one share group may have.
    group_share_max_size: i32 = "group.share.max.size", "200", positive_i32;
    /// Share groups: most share groups this broker coordinates.
    group_share_max_groups: i32 = "group.share.max.groups", "10", positive_i32;
    /// Share groups: most share sessions (one per member and broker) this broker holds.
    group_share_max_share_sessions: i32 = "group.share.max.share.sessions", "2000", positive_i32;
    /// Share groups: how long a member may go without a heartbeat (a group's `share.session.timeout.ms` overrides it).
    group_share_session_timeout_ms: i32 = "group.share.session.timeout.ms", "45000", positive_i32;
    /// Partitions of `__share_group_state`; a share-partition's state lives on partition hash(group:topic:partition) % this. Fixed once created.
    share_coordinator_state_topic_num_partitions: i32 = "share.coordinator.state.topic.num.partitions", "50", positive_i32;
    /// Replication factor of `__share_group_state` (capped at the number of brokers).
    share_coordinator_state_topic_replication_factor: i16 = "share.coordinator.state.topic.replication.factor", "3", positive_i16;
    /// min.insync.replicas of `__share_group_state` (capped at its replication factor).
    share_coordinator_state_topic_min_isr: i32 = "share.coordinator.state.topic.min.isr", "2", positive_i32;
    /// Segment size of `__share_group_state`.
    share_coordinator_state_topic_segment_bytes: i32 = "share.coordinator.state.topic.segment.bytes", "104857600", segment_bytes;
    /// Share groups: how often members are asked to heartbeat (a group's `share.heartbeat.interval.ms` overrides it).
    group_share_heartbeat_interval_ms: i32 = "group.share.heartbeat.interval.ms", "5000", positive_i32;
    /// Where Prometheus scrapes /metrics (host:port).
    metrics_listener: String = "metrics.listener", "127.0.0.1:9644", host_port;
    /// Log level when RUST_LOG is not set (error, warn, info, debug, trace or a tracing filter).
    logging_level: String = "logging.level", "info", any;
}

impl Settings {
    /// All defaults (what a start with no file and no override gets).
    pub fn defaults() -> Settings {
        Settings::from_layers(Layers::default()).expect("defaults are valid")
    }

    pub(super) fn catalog_cell(&self) -> &std::sync::OnceLock<std::sync::Arc<Catalog>> {
        &self.catalog
    }

    /// The log directories, in order: `log.dirs` (comma-separated), else `log.dir`. The first
    /// also holds the metadata log (Kafka's default `metadata.log.dir`).
    pub fn log_dir_list(&self) -> Vec<std::path::PathBuf> {
        let list = self.log_dirs.as_deref().unwrap_or(&self.log_dir);
        list.split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from)
            .collect()
    }

    /// Where a setting's value came from.
    pub fn source(&self, name: &str) -> Source {
        self.sources.get(name).copied().unwrap_or(Source::Default)
    }

    fn has_role(&self, role: &str) -> bool {
        self.process_roles.split(',').any(|r| r.trim() == role)
    }

    pub fn is_broker(&self) -> bool {
        self.has_role("broker")
    }

    pub fn is_controller(&self) -> bool {
        self.has_role("controller")
    }

    fn is_controller_listener(&self, l: &Listener) -> bool {
        self.controller_listener_names.split(',').any(|n| n.trim() == l.name)
    }

    /// The listeners Kafka clients connect to.
    pub fn kafka_listeners(&self) -> Vec<Listener> {
        self.listeners
            .iter()
            .filter(|l| !self.is_controller_listener(l))
            .cloned()
            .collect()
    }

    /// The listener Raft and forwarded requests arrive on, if any.
    pub fn controller_listener(&self) -> Option<Listener> {
        self.listeners.iter().find(|l| self.is_controller_listener(l)).cloned()
    }

    /// The security protocol of a listener: its entry in `listener.security.protocol.map`
    /// (a controller listener not in it is PLAINTEXT, as in Kafka). None: not mapped.
    pub fn security_protocol(&self, l: &Listener) -> Option<SecurityProtocol> {
        let map = parse_protocol_map(&self.listener_security_protocol_map).unwrap_or_default();
        match map.get(&l.name) {
            Some(p) => Some(*p),
            None if self.is_controller_listener(l) => Some(SecurityProtocol::Plaintext),
            None => None,
        }
    }

    /// The listener other brokers reach this one on: `inter.broker.listener.name`, else the one
    /// named PLAINTEXT, else the first Kafka listener.
    pub fn inter_broker_listener(&self) -> Option<Listener> {
        let listeners = self.kafka_listeners();
        let wanted = self.inter_broker_listener_name.as_deref().unwrap_or("PLAINTEXT");
        let named = listeners.iter().find(|l| l.name == wanted).cloned();
        match self.inter_broker_listener_name {
            Some(_) => named,
            None => named.or_else(|| listeners.first().cloned()),
        }
    }

    fn check_listener_security(&self) -> Result<(), String> {
        for l in &self.listeners {
            let protocol = self
                .security_protocol(l)
                .ok_or_else(|| format!("listener {} is not in listener.security.protocol.map", l.name))?;
            if self.is_controller_listener(l) && protocol != SecurityProtocol::Plaintext {
                return Err(format!(
                    "controller listener {}: only PLAINTEXT is supported yet",
                    l.name
                ));
            }
            if protocol.uses_tls() && self.ssl_keystore_location.is_none() && self.ssl_keystore_key.is_none() {
                return Err(format!(
                    "listener {} is {protocol}: set ssl.keystore.location (or ssl.keystore.certificate.chain and ssl.keystore.key)",
                    l.name
                ));
            }
            let plain = self.sasl_enabled_mechanisms.split(',').any(|m| m.trim() == "PLAIN");
            if protocol.uses_sasl() && plain && self.sasl_plain_users.is_none() {
                return Err(format!(
                    "listener {} is {protocol} with PLAIN: set sasl.plain.users",
                    l.name
                ));
            }
        }
        Ok(())
    }

    fn check_inter_broker_listener(&self, clustered: bool) -> Result<(), String> {
        if !self.is_broker() {
            return Ok(());
        }
        let Some(l) = self.inter_broker_listener() else {
            return Err("not one of the listeners".into());
        };
        if clustered && self.security_protocol(&l) != Some(SecurityProtocol::Plaintext) {
            return Err(format!(
                "listener {}: brokers replicate over PLAINTEXT only yet (TLS and SASL between brokers are not done)",
                l.name
            ));
        }
        Ok(())
    }

    /// Checks that the settings fit together (roles, listeners, quorum); the error names the
    /// setting to fix.
    pub(super) fn check_combination(self) -> Result<Settings, ConfigError> {
        let bad = |name: &str, value: &str, reason: &str| ConfigError::BadValue {
            name: name.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        // A broker-wide default of a topic config must be a value that topic config takes.
        if let Err((name, value, reason)) = crate::metadata::topic_config::check_broker_defaults(&self) {
            return Err(bad(name, &value, &reason));
        }
        let listeners = self
            .listeners
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        if let Err(why) = self.check_listener_security() {
            return Err(bad("listeners", &listeners, &why));
        }
        if self.is_broker() && self.kafka_listeners().is_empty() {
            return Err(bad(
                "listeners",
                &listeners,
                "a broker needs a listener for Kafka clients",
            ));
        }
        let clustered = !self.controller_quorum_voters.trim().is_empty();
        if let Err(why) = self.check_inter_broker_listener(clustered) {
            let name = self.inter_broker_listener_name.clone().unwrap_or_default();
            return Err(bad("inter.broker.listener.name", &name, &why));
        }
        if clustered && self.controller_listener().is_none() {
            let why =
                "with controller.quorum.voters set, every node needs a controller listener (controller.listener.names)";
            return Err(bad("listeners", &listeners, why));
        }
        if let Some(l) = self.controller_listener().filter(|_| clustered) {
            // Its address is what peers are told to connect to (a learner's, or a voter's in
            // controller.quorum.voters), so it must be one they can reach.
            if matches!(l.host.as_str(), "" | "0.0.0.0" | "::") {
                let why = "the controller listener needs the host peers reach it at, not a wildcard";
                return Err(bad("listeners", &listeners, why));
            }
        }
        if !clustered && !self.is_controller() {
            let why = "a broker-only node needs controller.quorum.voters";
            return Err(bad("process.roles", &self.process_roles, why));
        }
        Ok(self)
    }
}
