//! Sluice's Prometheus endpoint, read over plain HTTP/1.0: one gauge or counter at a time.
//! Kafka has no such endpoint (its metrics are JMX), so these figures are Sluice's only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One gauge or counter from a Prometheus text endpoint, summed over its label sets (only
/// those whose labels contain `labels_with`, when given).
pub fn scrape_metric(endpoint: &str, name: &str, labels_with: Option<&str>) -> Option<f64> {
    let addr: SocketAddr = endpoint.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {endpoint}\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.take(64 << 20).read_to_string(&mut body).ok()?;
    let mut total = None;
    for line in body.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if labels_with.is_some_and(|l| !rest.starts_with('{') || !rest[..rest.find('}').unwrap_or(0)].contains(l)) {
            continue;
        }
        let value: f64 = rest.rsplit(' ').next()?.parse().ok()?;
        *total.get_or_insert(0.0) += value;
    }
    // A counter nothing has incremented yet is absent from the text: that is a zero.
    total.or_else(|| body.contains("# TYPE").then_some(0.0))
}
