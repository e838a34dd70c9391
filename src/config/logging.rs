//! What `logging.level` asks for: the tracing filter the binary installs, and the logger levels
//! DescribeConfigs reports for the BROKER_LOGGER resource (Kafka's log4j loggers; here, tracing
//! targets, with `root` for the default level).
//!
//! Pure string work; installing the filter is the binary's job.

use super::Settings;

impl Settings {
    /// The tracing filter for `logging.level`. openraft narrates every vote and append at info
    /// and its warnings are what an operator needs, so it is held at warn unless the setting
    /// names it.
    pub fn log_filter(&self) -> String {
        if self.logging_level.contains("openraft") {
            self.logging_level.clone()
        } else {
            format!("{},openraft=warn", self.logging_level)
        }
    }

    /// The loggers the filter names and their levels, as Kafka lists its loggers: `root` first
    /// (the level of everything no directive names; OFF when none is given), then each target
    /// in the order given, its level in Kafka's capitals (a target without one is TRACE, as
    /// tracing reads it).
    pub fn logger_levels(&self) -> Vec<(String, String)> {
        let mut root = "OFF".to_string();
        let mut targets = Vec::new();
        for directive in self.log_filter().split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match directive.rsplit_once('=') {
                Some((target, level)) => targets.push((target.to_string(), level.to_ascii_uppercase())),
                None if is_level(directive) => root = directive.to_ascii_uppercase(),
                None => targets.push((directive.to_string(), "TRACE".to_string())),
            }
        }
        std::iter::once(("root".to_string(), root)).chain(targets).collect()
    }
}

fn is_level(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "off" | "error" | "warn" | "info" | "debug" | "trace"
    )
}

#[cfg(test)]
mod tests {
    use crate::config::load;

    #[test]
    fn logger_levels_are_the_filters_directives_root_first() {
        let levels = |setting: &str| {
            let s = load(None, &[format!("logging.level={setting}")]).unwrap();
            s.logger_levels()
        };
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(levels("info"), pairs(&[("root", "INFO"), ("openraft", "WARN")]));
        assert_eq!(
            levels("sluice::api=debug,warn"),
            pairs(&[("root", "WARN"), ("sluice::api", "DEBUG"), ("openraft", "WARN")])
        );
        assert_eq!(
            levels("openraft=info,sluice"),
            pairs(&[("root", "OFF"), ("openraft", "INFO"), ("sluice", "TRACE")])
        );
    }
}
