//! Counters for `/metrics`, in Prometheus' text format. Plain atomics: the relay's hot path
//! pays one relaxed add per event.

use sotto_proto::ErrorCode;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The relay's counters and gauges.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused_total: AtomicU64,
    pub messages_relayed_total: AtomicU64,
    pub bytes_relayed_total: AtomicU64,
    pub slow_consumers_total: AtomicU64,
    errors_total: [AtomicU64; ErrorCode::KNOWN.len()],
}

impl Metrics {
    /// Counts an `error` message sent to a client.
    pub fn count_error(&self, code: &ErrorCode) {
        if let Some(i) = ErrorCode::KNOWN.iter().position(|c| c == code) {
            self.errors_total[i].fetch_add(1, Relaxed);
        }
    }

    /// The Prometheus exposition text; `rooms` is read from the room table by the caller.
    pub fn render(&self, rooms: usize) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            write_metric(&mut out, name, kind, help, value)
        };
        metric(
            "sotto_connections",
            "gauge",
            "WebSocket connections open now.",
            self.connections_open.load(Relaxed),
        );
        metric(
            "sotto_connections_total",
            "counter",
            "WebSocket connections accepted since start.",
            self.connections_total.load(Relaxed),
        );
        metric(
            "sotto_connections_refused_total",
            "counter",
            "TCP connections closed at accept because the relay was at its limit.",
            self.connections_refused_total.load(Relaxed),
        );
        metric(
            "sotto_rooms",
            "gauge",
            "Rooms with at least one peer.",
            rooms as u64,
        );
        metric(
            "sotto_messages_relayed_total",
            "counter",
            "Signal messages forwarded from one peer to another.",
            self.messages_relayed_total.load(Relaxed),
        );
        metric(
            "sotto_bytes_relayed_total",
            "counter",
            "Bytes of signal payload (base64url text) forwarded.",
            self.bytes_relayed_total.load(Relaxed),
        );
        metric(
            "sotto_slow_consumers_total",
            "counter",
            "Connections dropped because they stopped reading and their send queue filled.",
            self.slow_consumers_total.load(Relaxed),
        );
        out.push_str("# HELP sotto_errors_total Error messages sent to clients, by code.\n");
        out.push_str("# TYPE sotto_errors_total counter\n");
        for (code, count) in ErrorCode::KNOWN.iter().zip(&self.errors_total) {
            let _ = writeln!(
                out,
                "sotto_errors_total{{code=\"{code}\"}} {}",
                count.load(Relaxed)
            );
        }
        out
    }
}

/// One metric, with its help and type lines, in Prometheus' text format.
pub(crate) fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_error_code_and_counts_them() {
        let m = Metrics::default();
        m.count_error(&ErrorCode::RoomFull);
        m.count_error(&ErrorCode::RoomFull);
        let text = m.render(3);
        assert!(text.contains("sotto_errors_total{code=\"room-full\"} 2\n"));
        assert!(text.contains("sotto_errors_total{code=\"bad-message\"} 0\n"));
        assert!(text.contains("sotto_rooms 3\n"));
    }
}
