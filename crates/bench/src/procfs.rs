//! CPU time and memory of the server (and of the PostgreSQL processes) read from `/proc`, without
//! libc: `utime + stime` of `/proc/<pid>/stat` in clock ticks, `VmRSS` and `VmHWM` of
//! `/proc/<pid>/status` in kB. On a system without `/proc` every figure reads as 0.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Clock ticks per second (`getconf CLK_TCK`; 100 when it cannot be asked).
pub fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// `utime + stime` of a process in clock ticks, or `None` when it is gone.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&stat)
}

/// `utime + stime` from the text of `/proc/<pid>/stat`. The command name (field 2) is in
/// parentheses and may hold spaces, so the fields are counted from the last `)`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (3), ppid (4), … utime (14), stime (15).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Milliseconds of `ticks` clock ticks.
pub fn ticks_to_ms(ticks: u64) -> f64 {
    ticks as f64 * 1000.0 / clock_ticks() as f64
}

/// Resident memory now and at its peak (`VmRSS`, `VmHWM`), in kB.
pub fn memory_kb(pid: u32) -> (u64, u64) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (0, 0);
    };
    (
        status_field(&status, "VmRSS:"),
        status_field(&status, "VmHWM:"),
    )
}

fn status_field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU ticks of every process named `postgres` (the postmaster, its backends and workers), by pid.
pub fn postgres_ticks() -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            if let Some(t) = cpu_ticks(pid) {
                out.insert(pid, t);
            }
        }
    }
    out
}

/// The CPU of the server, of the database processes (when watched) and of this bench, at one
/// moment.
#[derive(Clone, Debug, Default)]
pub struct CpuSnapshot {
    server: u64,
    database: HashMap<u32, u64>,
    client: u64,
}

/// CPU used between two snapshots, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUsed {
    pub server_ms: f64,
    pub database_ms: f64,
    pub client_ms: f64,
}

impl CpuSnapshot {
    /// Reads the server `pid`, the `postgres` processes when `database` is set, and this process.
    pub fn take(pid: u32, database: bool) -> Self {
        Self {
            server: cpu_ticks(pid).unwrap_or(0),
            database: if database {
                postgres_ticks()
            } else {
                HashMap::new()
            },
            client: cpu_ticks(std::process::id()).unwrap_or(0),
        }
    }

    /// What was used from `self` to `later`. A database process that started in between counts
    /// from zero; one that ended in between is lost (connection pools keep theirs open).
    pub fn used_until(&self, later: &Self) -> CpuUsed {
        let database: u64 = later
            .database
            .iter()
            .map(|(pid, t)| t.saturating_sub(self.database.get(pid).copied().unwrap_or(0)))
            .sum();
        CpuUsed {
            server_ms: ticks_to_ms(later.server.saturating_sub(self.server)),
            database_ms: ticks_to_ms(database),
            client_ms: ticks_to_ms(later.client.saturating_sub(self.client)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_the_name() {
        let stat =
            "4242 (tokio (rt) w) S 1 4242 4242 0 -1 4194560 100 0 0 0 37 12 0 0 20 0 5 0 9 0";
        assert_eq!(parse_stat_ticks(stat), Some(49));
    }

    #[test]
    fn status_fields() {
        let status = "Name:\tswitchboard\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_field(status, "VmRSS:"), 10240);
        assert_eq!(status_field(status, "VmHWM:"), 20480);
        assert_eq!(status_field(status, "VmSwap:"), 0);
    }

    #[test]
    fn this_process_is_readable() {
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(cpu_ticks(std::process::id()).is_some());
            assert!(memory_kb(std::process::id()).0 > 0);
        }
    }
}
