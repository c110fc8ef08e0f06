//! The floor under a fan-out on this machine: the CPU that one small write to a loopback TCP
//! socket costs the thread that writes it, with a reader waiting on every socket as the
//! `connections` clients wait. On loopback the writer's `send` also runs the receiving side's
//! TCP stack and wakes its reader, so this is what any server pays per frame before doing any
//! work of its own. No server is involved: the bench writes to itself.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// What [`loopback_writes`] measured.
pub struct Floor {
    pub sockets: usize,
    pub writes: u64,
    /// CPU time of the writing thread per write, µs.
    pub us_per_write: f64,
}

/// CPU time of the calling thread so far, in ns (`/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Writes `rounds` frames of `len` bytes to each of `sockets` loopback connections, one socket
/// after the other as a fan-out does, each round once the readers wait again, and answers the
/// writing thread's CPU time per write. Every reader must get every byte.
pub async fn loopback_writes(sockets: usize, rounds: usize, len: usize) -> Result<Floor, String> {
    let io = |what: &str, e: std::io::Error| format!("loopback floor: {what}: {e}");
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| io("bind", e))?;
    let addr = listener.local_addr().map_err(|e| io("bind", e))?;
    let accepting = tokio::task::spawn_blocking(move || {
        (0..sockets)
            .map(|_| {
                let (stream, _) = listener.accept()?;
                stream.set_nodelay(true)?;
                Ok(stream)
            })
            .collect::<std::io::Result<Vec<TcpStream>>>()
    });
    let mut readers = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| io("connect", e))?;
        readers.push(tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let mut got = 0usize;
            while let Ok(n @ 1..) = stream.read(&mut buf).await {
                got += n;
            }
            got
        }));
    }
    let mut writers = accepting
        .await
        .map_err(|e| format!("loopback floor: accept: {e}"))?
        .map_err(|e| io("accept", e))?;
    let frame = vec![b'x'; len];
    let cpu_ns = tokio::task::spawn_blocking(move || {
        let mut cpu = 0u64;
        for _ in 0..rounds {
            // The readers have drained the last round and wait in the runtime's poll again.
            std::thread::sleep(Duration::from_millis(50));
            let before = thread_cpu_ns().unwrap_or(0);
            for w in writers.iter_mut() {
                w.write_all(&frame)?;
            }
            cpu += thread_cpu_ns().unwrap_or(0).saturating_sub(before);
        }
        // Closing them ends the readers.
        drop(writers);
        Ok(cpu)
    })
    .await
    .map_err(|e| format!("loopback floor: write: {e}"))?
    .map_err(|e| io("write", e))?;
    let mut short = 0;
    for reader in readers {
        if reader.await.unwrap_or(0) != rounds * len {
            short += 1;
        }
    }
    if short > 0 {
        return Err(format!(
            "loopback floor: {short} readers did not get every byte"
        ));
    }
    let writes = (sockets * rounds) as u64;
    Ok(Floor {
        sockets,
        writes,
        us_per_write: if writes == 0 {
            0.0
        } else {
            cpu_ns as f64 / 1000.0 / writes as f64
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_reader_gets_every_write_and_the_writes_are_timed() {
        let floor = loopback_writes(16, 3, 300).await.expect("loopback writes");
        assert_eq!((floor.sockets, floor.writes), (16, 48));
        if std::path::Path::new("/proc/thread-self/schedstat").exists() {
            assert!(floor.us_per_write > 0.0, "{}", floor.us_per_write);
        }
    }
}
