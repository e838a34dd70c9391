//! Sluice's Prometheus endpoint, read over plain HTTP/1.0: one gauge or counter at a time.
//! Kafka has no such endpoint (its metrics are JMX), so these figures are Sluice's only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Bound on one scrape's body.
const BODY_BYTES_MAX: u64 = 64 << 20;

/// One gauge or counter from a Prometheus text endpoint, summed over its label sets (only
/// those whose labels contain `labels_with`, when given).
pub fn scrape_metric(endpoint: &str, name: &str, labels_with: Option<&str>) -> Option<f64> {
    let body = scrape(endpoint)?;
    let values = values(&body, name, labels_with);
    if values.is_empty() {
        // A counter nothing has incremented yet is absent from the text: that is a zero.
        return body.contains("# TYPE").then_some(0.0);
    }
    Some(values.iter().sum())
}

/// The text of a Prometheus endpoint, or None if it does not answer.
pub fn scrape(endpoint: &str) -> Option<String> {
    let addr: SocketAddr = endpoint.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {endpoint}\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.take(BODY_BYTES_MAX).read_to_string(&mut body).ok()?;
    Some(body)
}

/// Every value of metric `name` in a scraped text, one per label set (only those whose labels
/// contain `labels_with`, when given).
pub fn values(body: &str, name: &str, labels_with: Option<&str>) -> Vec<f64> {
    let mut out = Vec::new();
    for line in body.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if labels_with.is_some_and(|l| !rest.starts_with('{') || !rest[..rest.find('}').unwrap_or(0)].contains(l)) {
            continue;
        }
        if let Some(value) = rest.rsplit(' ').next().and_then(|v| v.parse().ok()) {
            out.push(value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_one_per_label_set_and_skip_longer_names() {
        let body = "# TYPE sluice_follower_lag_records gauge\n\
            sluice_follower_lag_records{partition=\"0\",replica=\"2\",topic=\"t\"} 12\n\
            sluice_follower_lag_records{partition=\"0\",replica=\"3\",topic=\"t\"} -1\n\
            sluice_follower_lag_records_other 5\n";
        assert_eq!(values(body, "sluice_follower_lag_records", None), vec![12.0, -1.0]);
        assert_eq!(
            values(body, "sluice_follower_lag_records", Some("replica=\"3\"")),
            vec![-1.0]
        );
    }
}
