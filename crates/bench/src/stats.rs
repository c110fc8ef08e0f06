//! Latency samples, their percentiles, and the figures of one measured phase.

use serde_json::{json, Value};

use crate::procfs::{ticks_to_ms, CpuUsed};

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// From samples in microseconds (nearest rank); all zero when there are none.
    pub fn of_micros(mut samples: Vec<u64>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let rank = |p: f64| {
            let i = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            samples[i.clamp(1, samples.len()) - 1] as f64 / 1000.0
        };
        let sum: u64 = samples.iter().sum();
        Self {
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: rank(100.0),
            mean: sum as f64 / samples.len() as f64 / 1000.0,
        }
    }

    pub fn to_json(self) -> Value {
        json!({
            "p50": round3(self.p50),
            "p90": round3(self.p90),
            "p99": round3(self.p99),
            "max": round3(self.max),
            "mean": round3(self.mean),
        })
    }
}

/// The figures of one phase of a scenario: `count` messages (requests, activities) done in
/// `seconds`, their latency, and the CPU used meanwhile.
#[derive(Clone, Debug)]
pub struct Phase {
    pub name: String,
    /// What one message is, for the table ("request", "activity").
    pub unit: &'static str,
    pub count: u64,
    pub errors: u64,
    pub seconds: f64,
    pub latency: Percentiles,
    pub cpu: CpuUsed,
    /// More figures of this phase, written as they are into the JSON.
    pub extra: serde_json::Map<String, Value>,
}

impl Phase {
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.count as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Server CPU (plus the database's when it was watched) per message, in ms; `None` when it
    /// was not measured (a process unread, too few clock ticks, or no message).
    pub fn cpu_ms_per_message(&self) -> Option<f64> {
        self.per_message(self.cpu.ms())
    }

    /// `ms` over the phase's messages.
    fn per_message(&self, ms: Option<f64>) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        Some(ms? / self.count as f64)
    }

    pub fn to_json(&self) -> Value {
        let per = |ms: Option<f64>| self.per_message(ms).map(round6);
        let total = |ticks: Option<u64>| ticks.map(|t| round1(ticks_to_ms(t)));
        let mut out = json!({
            "name": self.name,
            "unit": self.unit,
            "count": self.count,
            "errors": self.errors,
            "seconds": round3(self.seconds),
            "per_second": round1(self.per_second()),
            "latency_ms": self.latency.to_json(),
            // Per message: null when not measured (see `cpu_ticks`).
            "cpu_ms_per_message": per(self.cpu.ms()),
            "server_cpu_ms_per_message": per(self.cpu.server_ms()),
            "database_cpu_ms_per_message": per(self.cpu.database_ms()),
            "client_cpu_ms_per_message": per(self.cpu.client_ms()),
            // The clock ticks behind them (server and database), at [`MIN_TICKS`] or more to count.
            "cpu_ticks": self.cpu.ticks(),
            "server_cpu_ms": total(self.cpu.server),
            "database_cpu_ms": total(self.cpu.database),
            "client_cpu_ms": total(self.cpu.client),
        });
        if let Some(o) = out.as_object_mut() {
            o.extend(self.extra.clone());
        }
        out
    }
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn round6(x: f64) -> f64 {
    (x * 1_000_000.0).round() / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::MIN_TICKS;

    #[test]
    fn nearest_rank() {
        let p = Percentiles::of_micros((1..=100).map(|i| i * 1000).collect());
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(p.mean, 50.5);
        let one = Percentiles::of_micros(vec![1500]);
        assert_eq!((one.p50, one.p99), (1.5, 1.5));
        assert_eq!(Percentiles::of_micros(vec![]), Percentiles::default());
    }

    fn phase(count: u64, server: Option<u64>) -> Phase {
        Phase {
            name: "p".to_owned(),
            unit: "request",
            count,
            errors: 0,
            seconds: 1.0,
            latency: Percentiles::default(),
            cpu: CpuUsed {
                server,
                database: Some(0),
                client: Some(0),
            },
            extra: serde_json::Map::new(),
        }
    }

    #[test]
    fn cpu_per_message_only_when_measured() {
        // A server that could not be read, or a window below the clock's resolution: null.
        for p in [
            phase(1000, None),
            phase(1000, Some(MIN_TICKS - 1)),
            phase(0, Some(500)),
        ] {
            assert_eq!(p.cpu_ms_per_message(), None);
            assert_eq!(p.to_json()["cpu_ms_per_message"], Value::Null);
            assert_eq!(p.to_json()["server_cpu_ms_per_message"], Value::Null);
        }
        assert_eq!(phase(1000, None).to_json()["cpu_ticks"], Value::Null);
        let p = phase(1000, Some(MIN_TICKS));
        let ms = ticks_to_ms(MIN_TICKS) / 1000.0;
        assert_eq!(p.cpu_ms_per_message(), Some(ms));
        assert_eq!(p.to_json()["cpu_ms_per_message"], json!(round6(ms)));
        assert_eq!(p.to_json()["cpu_ticks"], json!(MIN_TICKS));
    }
}
