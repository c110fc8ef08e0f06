//! Load at a fixed concurrency, bounded in count and time, and a progress line while it runs.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a closed loop did: `ok` and `errors` counts, its wall time, and the latency of every
/// successful call in microseconds.
pub struct Run {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub micros: Vec<u64>,
    /// The first few error messages, to show what went wrong.
    pub first_errors: Vec<String>,
}

/// Runs `call(i)` for i = 0, 1, … from `concurrency` workers, each starting its next call when
/// the previous one answers, until `count` calls were started or `cap` has passed.
pub async fn closed_loop<F, Fut>(
    label: &str,
    concurrency: usize,
    count: u64,
    cap: Duration,
    call: F,
) -> Run
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(label, count, done.clone());
    let start = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let next = next.clone();
        let done = done.clone();
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut micros = Vec::new();
            let mut errors = 0;
            let mut first_errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || start.elapsed() >= cap {
                    break;
                }
                let t = Instant::now();
                match call(i).await {
                    Ok(()) => micros.push(t.elapsed().as_micros() as u64),
                    Err(e) => {
                        errors += 1;
                        if first_errors.len() < 3 {
                            first_errors.push(e);
                        }
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            (micros, errors, first_errors)
        }));
    }
    let mut run = Run {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        micros: Vec::new(),
        first_errors: Vec::new(),
    };
    for w in workers {
        match w.await {
            Ok((micros, errors, first)) => {
                run.ok += micros.len() as u64;
                run.micros.extend(micros);
                run.errors += errors;
                if run.first_errors.len() < 3 {
                    run.first_errors.extend(first);
                }
            }
            Err(e) => {
                run.errors += 1;
                run.first_errors.push(format!("a worker failed: {e}"));
            }
        }
    }
    run.elapsed = start.elapsed();
    progress.finish();
    run
}

/// A progress line on stderr (`label: done/total`), redrawn while it runs when stderr is a
/// terminal, else written once at the start.
pub struct Progress {
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
    label: String,
    total: u64,
    done: Arc<AtomicU64>,
    tty: bool,
}

impl Progress {
    pub fn start(label: &str, total: u64, done: Arc<AtomicU64>) -> Self {
        let tty = std::io::stderr().is_terminal();
        let stop = Arc::new(AtomicBool::new(false));
        let task = if tty {
            let (stop, done, label) = (stop.clone(), done.clone(), label.to_owned());
            Some(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    draw(&label, done.load(Ordering::Relaxed), total);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }))
        } else {
            eprintln!("  {label}: {total} …");
            None
        };
        Self {
            stop,
            task,
            label: label.to_owned(),
            total,
            done,
            tty,
        }
    }

    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if self.tty {
            draw(&self.label, self.done.load(Ordering::Relaxed), self.total);
            eprintln!();
        }
    }
}

fn draw(label: &str, done: u64, total: u64) {
    const WIDTH: u64 = 30;
    let filled = (done.min(total) * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH);
    let bar: String = (0..WIDTH)
        .map(|i| if i < filled { '#' } else { '.' })
        .collect();
    let mut err = std::io::stderr();
    let _ = write!(err, "\r  {label:<28} [{bar}] {done}/{total}   ");
    let _ = err.flush();
}
