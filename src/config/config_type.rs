//! Kafka's config value types (ConfigEntry.ConfigType, DescribeConfigs v3+): what a broker
//! setting or a topic config holds, as clients are told.

/// Kafka's ConfigEntry.ConfigType codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// What Kafka reports for a broker logger's level.
    Unknown = 0,
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
}
