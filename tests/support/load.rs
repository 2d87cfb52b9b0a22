//! A steady keep-alive load on nginx while deploys run: counts answers by status, connection
//! errors, and the longest stretch without a successful response.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub sent: u64,
    pub ok: u64,
    pub non_2xx: u64,
    pub errors: u64,
    pub longest_gap: Duration,
    pub versions: Vec<String>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<std::thread::JoinHandle<LoadReport>>,
}

impl Load {
    pub fn start(port: u16, connections: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..connections)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || worker(port, &stop))
            })
            .collect();
        Load { stop, workers }
    }

    pub fn finish(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = LoadReport::default();
        for worker in self.workers {
            let report = worker.join().unwrap();
            total.sent += report.sent;
            total.ok += report.ok;
            total.non_2xx += report.non_2xx;
            total.errors += report.errors;
            total.longest_gap = total.longest_gap.max(report.longest_gap);
            // Every worker saw the same order of versions; the longest saw every change.
            if report.versions.len() > total.versions.len() {
                total.versions = report.versions;
            }
        }
        total
    }
}

fn worker(port: u16, stop: &AtomicBool) -> LoadReport {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let mut report = LoadReport::default();
    let mut last_ok = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        report.sent += 1;
        match client.get(&url).send() {
            Ok(response) if response.status().is_success() => {
                let body = response.text().unwrap_or_default();
                report.ok += 1;
                report.longest_gap = report.longest_gap.max(last_ok.elapsed());
                last_ok = Instant::now();
                if let Some(version) = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["version"].as_str().map(str::to_owned))
                {
                    if report.versions.last() != Some(&version) {
                        report.versions.push(version);
                    }
                }
            }
            Ok(_) => report.non_2xx += 1,
            Err(_) => report.errors += 1,
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    report
}
