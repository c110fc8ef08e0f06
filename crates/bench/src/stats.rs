//! Latency samples, their percentiles, and the figures of one measured phase.

use serde_json::{json, Value};

use crate::procfs::CpuUsed;

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

    /// Server CPU (plus the database's when it was watched) per message, in ms.
    pub fn cpu_ms_per_message(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        (self.cpu.server_ms + self.cpu.database_ms) / self.count as f64
    }

    pub fn to_json(&self) -> Value {
        let per = |ms: f64| {
            if self.count == 0 {
                0.0
            } else {
                round6(ms / self.count as f64)
            }
        };
        let mut out = json!({
            "name": self.name,
            "unit": self.unit,
            "count": self.count,
            "errors": self.errors,
            "seconds": round3(self.seconds),
            "per_second": round1(self.per_second()),
            "latency_ms": self.latency.to_json(),
            "cpu_ms_per_message": round6(self.cpu_ms_per_message()),
            "server_cpu_ms_per_message": per(self.cpu.server_ms),
            "database_cpu_ms_per_message": per(self.cpu.database_ms),
            "client_cpu_ms_per_message": per(self.cpu.client_ms),
            "server_cpu_ms": round1(self.cpu.server_ms),
            "database_cpu_ms": round1(self.cpu.database_ms),
            "client_cpu_ms": round1(self.cpu.client_ms),
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

    #[test]
    fn nearest_rank() {
        let p = Percentiles::of_micros((1..=100).map(|i| i * 1000).collect());
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(p.mean, 50.5);
        let one = Percentiles::of_micros(vec![1500]);
        assert_eq!((one.p50, one.p99), (1.5, 1.5));
        assert_eq!(Percentiles::of_micros(vec![]), Percentiles::default());
    }
}
