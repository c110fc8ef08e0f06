//! CPU time and memory of the server (and of the PostgreSQL processes) read from `/proc`, without
//! libc: `utime + stime` of `/proc/<pid>/stat` in clock ticks, `VmRSS` and `VmHWM` of
//! `/proc/<pid>/status` in kB. On a system without `/proc`, or for a process that is gone, a
//! CPU figure is `None` ("not measured"), never 0; so is one of fewer than [`MIN_TICKS`] ticks.

use std::collections::{HashMap, HashSet};
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

/// Which database processes count with the server's CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Database {
    /// None: SQLite runs inside the server.
    InProcess,
    /// The cluster of this postmaster: it and its descendants (backends, workers), and no other
    /// PostgreSQL on the machine.
    Postmaster(u32),
    /// A PostgreSQL whose processes cannot be read here (another machine, another namespace):
    /// CPU figures that include the database are not measured.
    Unseen,
}

/// The parent of a process, from `/proc/<pid>/stat`.
pub fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_parent(&stat)
}

/// Field 4 (ppid) of the text of `/proc/<pid>/stat`, counted from the last `)`.
fn parse_stat_parent(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The command name of a process (`/proc/<pid>/comm`).
pub fn command_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

/// The postmaster behind a PostgreSQL backend: the backend's parent, when both are `postgres`
/// processes on this machine. A backend pid from a server elsewhere names some other local
/// process, or none: then there is no postmaster to watch.
pub fn postmaster_of(backend: u32) -> Option<u32> {
    if command_name(backend)? != "postgres" {
        return None;
    }
    let postmaster = parent(backend)?;
    (command_name(postmaster)? == "postgres").then_some(postmaster)
}

/// `root` and every process descending from it, given each process's (pid, parent).
pub fn descendants(root: u32, parents: &[(u32, u32)]) -> HashSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(pid, ppid) in parents {
        if pid != ppid {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = HashSet::from([root]);
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            if out.insert(child) {
                queue.push(child);
            }
        }
    }
    out
}

/// Every process of this machine with its parent.
fn processes() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent(pid)?)))
        .collect()
}

/// CPU ticks of a postmaster and of its descendants, by pid; `None` when the postmaster is gone.
pub fn cluster_ticks(postmaster: u32) -> Option<HashMap<u32, u64>> {
    let root = cpu_ticks(postmaster)?;
    let mut out: HashMap<u32, u64> = descendants(postmaster, &processes())
        .into_iter()
        .filter(|pid| *pid != postmaster)
        .filter_map(|pid| Some((pid, cpu_ticks(pid)?)))
        .collect();
    out.insert(postmaster, root);
    Some(out)
}

/// The fewest clock ticks a CPU figure is drawn from. Each reading is in whole ticks (10 ms at
/// 100 per second), so a window is known to a tick or two at each end: below this many, a figure
/// says more about the clock than about the process, and it reads "not measured".
pub const MIN_TICKS: u64 = 20;

/// The CPU of the server, of the database processes (when watched) and of this bench, at one
/// moment, in clock ticks; `None` where a process could not be read.
#[derive(Clone, Debug)]
pub struct CpuSnapshot {
    server: Option<u64>,
    database: Option<HashMap<u32, u64>>,
    client: Option<u64>,
}

/// Clock ticks used between two snapshots; `None` where a process could not be read at either
/// end. A database inside the server counts as 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuUsed {
    pub server: Option<u64>,
    pub database: Option<u64>,
    pub client: Option<u64>,
}

impl CpuSnapshot {
    /// Reads the server `pid`, the database's processes, and this process.
    pub fn take(pid: u32, database: Database) -> Self {
        Self {
            server: cpu_ticks(pid),
            database: match database {
                Database::InProcess => Some(HashMap::new()),
                Database::Postmaster(postmaster) => cluster_ticks(postmaster),
                Database::Unseen => None,
            },
            client: cpu_ticks(std::process::id()),
        }
    }

    /// Reads the server processes `pids` (their CPU summed; `None` when one cannot be read), the
    /// database's processes, and this process.
    pub fn take_all(pids: &[u32], database: Database) -> Self {
        let mut snapshot = Self::take(pids.first().copied().unwrap_or(0), database);
        for pid in pids.iter().skip(1) {
            snapshot.server = snapshot.server.zip(cpu_ticks(*pid)).map(|(a, b)| a + b);
        }
        snapshot
    }

    /// What was used from `self` to `later`. A database process that started in between counts
    /// from zero; one that ended in between is lost (connection pools keep theirs open).
    pub fn used_until(&self, later: &Self) -> CpuUsed {
        let database = match (&self.database, &later.database) {
            (Some(before), Some(after)) => Some(
                after
                    .iter()
                    .map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or(0)))
                    .sum(),
            ),
            _ => None,
        };
        let span = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
        CpuUsed {
            server: span(self.server, later.server),
            database,
            client: span(self.client, later.client),
        }
    }
}

impl CpuUsed {
    /// The server's and the database's ticks together, when both were read.
    pub fn ticks(&self) -> Option<u64> {
        Some(self.server? + self.database?)
    }

    /// The server's and the database's CPU in ms, when read over enough ticks to resolve it.
    pub fn ms(&self) -> Option<f64> {
        resolved_ms(self.ticks())
    }

    pub fn server_ms(&self) -> Option<f64> {
        resolved_ms(self.server)
    }

    pub fn database_ms(&self) -> Option<f64> {
        resolved_ms(self.database)
    }

    pub fn client_ms(&self) -> Option<f64> {
        resolved_ms(self.client)
    }

    /// Two spans (of two processes, or one after the other) added.
    pub fn plus(self, other: Self) -> Self {
        let add = |a: Option<u64>, b: Option<u64>| Some(a? + b?);
        Self {
            server: add(self.server, other.server),
            database: add(self.database, other.database),
            client: add(self.client, other.client),
        }
    }
}

/// Milliseconds of `ticks`, when there are at least [`MIN_TICKS`] of them.
pub fn resolved_ms(ticks: Option<u64>) -> Option<f64> {
    ticks.filter(|t| *t >= MIN_TICKS).map(ticks_to_ms)
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
    fn parent_from_stat() {
        let stat =
            "4242 (tokio (rt) w) S 17 4242 4242 0 -1 4194560 100 0 0 0 37 12 0 0 20 0 5 0 9 0";
        assert_eq!(parse_stat_parent(stat), Some(17));
    }

    #[test]
    fn a_cluster_is_its_postmaster_and_descendants() {
        // Two clusters (postmasters 100 and 200) under init, a bench (300) and its server (301).
        let parents = [
            (1, 0),
            (100, 1),
            (101, 100),
            (102, 100),
            (103, 102),
            (200, 1),
            (201, 200),
            (300, 1),
            (301, 300),
        ];
        let mut cluster: Vec<u32> = descendants(100, &parents).into_iter().collect();
        cluster.sort_unstable();
        assert_eq!(cluster, vec![100, 101, 102, 103]);
        assert_eq!(descendants(201, &parents), HashSet::from([201]));
        // A postmaster that is not in the list still counts itself.
        assert_eq!(descendants(999, &parents), HashSet::from([999]));
    }

    fn snapshot(server: Option<u64>, database: Option<&[(u32, u64)]>) -> CpuSnapshot {
        CpuSnapshot {
            server,
            database: database.map(|d| d.iter().copied().collect()),
            client: Some(0),
        }
    }

    #[test]
    fn a_server_that_cannot_be_read_is_not_measured() {
        let before = snapshot(Some(100), Some(&[]));
        let gone = snapshot(None, Some(&[]));
        let used = before.used_until(&gone);
        assert_eq!(used.server, None);
        assert_eq!(
            (used.ticks(), used.ms(), used.server_ms()),
            (None, None, None)
        );
        // A database that was watched but not read: the sum is not measured either.
        let unseen = before.used_until(&snapshot(Some(200), None));
        assert_eq!((unseen.server, unseen.database), (Some(100), None));
        assert_eq!(unseen.ms(), None);
    }

    #[test]
    fn too_few_ticks_are_not_measured() {
        let before = snapshot(Some(100), Some(&[(7, 50)]));
        let short = before.used_until(&snapshot(Some(100 + MIN_TICKS - 1), Some(&[(7, 50)])));
        assert_eq!(short.ticks(), Some(MIN_TICKS - 1));
        assert_eq!(short.ms(), None);
        assert_eq!(before.used_until(&before).ms(), None);
        // The database's ticks count towards the sum; a backend that started counts from 0.
        let long = before.used_until(&snapshot(Some(110), Some(&[(7, 55), (8, 5)])));
        assert_eq!(long.ticks(), Some(MIN_TICKS));
        assert_eq!(long.ms(), Some(ticks_to_ms(MIN_TICKS)));
        assert_eq!(long.server_ms(), None);
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
