//! `/metrics`: a [`Snapshot`] in the Prometheus (OpenMetrics) text format.
//!
//! Encoded with `prometheus-client`, the Prometheus project's own Rust
//! client, so names, escaping, `# TYPE`/`# HELP` lines and the `_total`
//! suffix of counters follow the format without hand-written text. The
//! registry is built from each snapshot: the values live in the workers'
//! state, not in metric objects the delivery path would have to update.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::Snapshot;

/// The `Content-Type` of [`encode_snapshot`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    journal: String,
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JournalLabels {
    journal: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type FGauge = Gauge<f64, AtomicU64>;

/// Every metric of `snap`, as text.
pub fn encode_snapshot(snap: &Snapshot) -> String {
    let mut reg = Registry::with_prefix("logdaemon");
    let lag_bytes = Family::<ListenerLabels, Gauge>::default();
    let lag_seconds = Family::<ListenerLabels, FGauge>::default();
    let entries = Family::<ListenerLabels, Counter>::default();
    let bytes = Family::<ListenerLabels, Counter>::default();
    let retries = Family::<ListenerLabels, Counter>::default();
    let up = Family::<ListenerLabels, Gauge>::default();
    let gaps = Family::<ListenerLabels, Counter>::default();
    let gap_bytes = Family::<ListenerLabels, Counter>::default();
    let shared = Family::<ListenerLabels, Gauge>::default();
    let fell_out = Family::<ListenerLabels, Counter>::default();
    let size = Family::<JournalLabels, Gauge>::default();
    let rotations = Family::<JournalLabels, Counter>::default();
    let checkpoint_age = FGauge::default();
    for j in &snap.journals {
        let jl = JournalLabels {
            journal: j.name.clone(),
        };
        if let Some(n) = j.size {
            size.get_or_create(&jl).set(n as i64);
        }
        rotations.get_or_create(&jl).inc_by(j.rotations_seen);
        for l in &j.listeners {
            let ll = ListenerLabels {
                journal: j.name.clone(),
                listener: l.name.clone(),
            };
            // A lag that cannot be told is left out, not reported as 0.
            if let Some(n) = l.lag_bytes {
                lag_bytes.get_or_create(&ll).set(n as i64);
            }
            if let Some(s) = l.lag_seconds {
                lag_seconds.get_or_create(&ll).set(s);
            }
            entries.get_or_create(&ll).inc_by(l.delivered_entries);
            bytes.get_or_create(&ll).inc_by(l.delivered_bytes);
            retries.get_or_create(&ll).inc_by(l.retries);
            up.get_or_create(&ll).set(i64::from(l.state.up()));
            gaps.get_or_create(&ll).inc_by(l.gaps);
            gap_bytes.get_or_create(&ll).inc_by(l.gap_bytes);
            shared.get_or_create(&ll).set(i64::from(l.shared));
            fell_out.get_or_create(&ll).inc_by(l.fell_out);
        }
    }
    if let Some(a) = snap.daemon.checkpoint_age_seconds {
        checkpoint_age.set(a);
    }
    reg.register(
        "listener_lag_bytes",
        "Bytes on disk the listener has not acknowledged",
        lag_bytes,
    );
    reg.register(
        "listener_lag_seconds",
        "Age of the oldest entry the listener has not acknowledged",
        lag_seconds,
    );
    reg.register(
        "listener_delivered_entries",
        "Entries handed to the listener in calls that succeeded",
        entries,
    );
    reg.register("listener_delivered_bytes", "Bytes of those entries", bytes);
    reg.register(
        "listener_retries",
        "Failed calls that were retried",
        retries,
    );
    reg.register(
        "listener_up",
        "1 unless the listener is disabled or stopped",
        up,
    );
    reg.register("gaps", "Gaps reported to the listener", gaps);
    reg.register("gap_bytes", "Bytes those gaps are known to span", gap_bytes);
    reg.register(
        "listener_shared",
        "1 while the listener takes its journal's shared batches, 0 while it reads on its own",
        shared,
    );
    reg.register(
        "listener_fell_out",
        "Times the listener fell behind its journal's shared batches and read on its own",
        fell_out,
    );
    reg.register("journal_size_bytes", "Size of the live journal file", size);
    reg.register(
        "journal_rotations",
        "Rotated files the listeners passed since the daemon started",
        rotations,
    );
    reg.register(
        "checkpoint_age_seconds",
        "Seconds since the checkpoint was written",
        checkpoint_age,
    );
    reg.register(
        "build",
        "The running version",
        Info::new(BuildLabels {
            version: snap.version.clone(),
        }),
    );
    let mut out = String::new();
    encode(&mut out, &reg).expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::State;

    fn snap(state: State, lag: Option<u64>) -> Snapshot {
        crate::status::sample(&[(state, lag)])
    }

    #[test]
    fn every_metric_is_there_with_its_labels() {
        let text = encode_snapshot(&snap(State::Retrying, Some(200)));
        let l = "{journal=\"p4\",listener=\"standby\"}";
        for line in [
            format!("logdaemon_listener_lag_bytes{l} 200"),
            format!("logdaemon_listener_lag_seconds{l} 2.5"),
            format!("logdaemon_listener_delivered_entries_total{l} 7"),
            format!("logdaemon_listener_delivered_bytes_total{l} 700"),
            format!("logdaemon_listener_retries_total{l} 3"),
            format!("logdaemon_listener_up{l} 1"),
            format!("logdaemon_gaps_total{l} 1"),
            format!("logdaemon_gap_bytes_total{l} 40"),
            format!("logdaemon_listener_shared{l} 1"),
            format!("logdaemon_listener_fell_out_total{l} 2"),
            "logdaemon_journal_size_bytes{journal=\"p4\"} 300".into(),
            "logdaemon_journal_rotations_total{journal=\"p4\"} 1".into(),
            "logdaemon_checkpoint_age_seconds 1.5".into(),
            "logdaemon_build_info{version=\"1.2.3\"} 1".into(),
        ] {
            assert!(
                text.lines().any(|t| t == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(
            text.contains("# TYPE logdaemon_listener_retries counter"),
            "{text}"
        );
    }

    #[test]
    fn up_is_0_when_stopped_and_an_unknown_lag_is_left_out() {
        let text = encode_snapshot(&snap(State::Stopped, None));
        assert!(
            text.contains("logdaemon_listener_up{journal=\"p4\",listener=\"standby\"} 0"),
            "{text}"
        );
        assert!(!text.contains("logdaemon_listener_lag_bytes{"), "{text}");
    }
}
