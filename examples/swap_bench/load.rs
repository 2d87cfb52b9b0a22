//! What clients see during one swap: wrk's steady keep-alive load (failures), and a light
//! watcher that notes when the new version is first served and when a keep-alive client last
//! got the old one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// wrk, 2 threads × 32 keep-alive connections; each connection sends a request every 10 ms
/// (≈3,200 req/s), which leaves the 2-core machine room to run the deploys it measures.
pub struct Wrk(Child);

/// What wrk counted over one swap.
#[derive(Clone, Copy, Default)]
pub struct Failures {
    pub requests: u64,
    pub non_2xx: u64,
    pub connection_errors: u64,
}

impl Wrk {
    pub fn start(port: u16) -> Wrk {
        let script = std::env::temp_dir().join("bluegreen-bench-steady.lua");
        std::fs::write(&script, "function delay()\n  return 10\nend\n").unwrap();
        let child = Command::new("wrk")
            .args(["-t2", "-c32", "-d3600s", "--timeout", "5s", "-s"])
            .arg(&script)
            .arg(format!("http://127.0.0.1:{port}/"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("wrk is installed by scripts/setup.sh");
        std::thread::sleep(Duration::from_millis(500));
        Wrk(child)
    }

    pub fn finish(self) -> Failures {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let output = self.0.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let mut failures = Failures::default();
        for line in text.lines().map(str::trim) {
            if line.contains(" requests in ") {
                failures.requests = first_number(line);
            } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
                failures.non_2xx = first_number(n);
            } else if let Some(errors) = line.strip_prefix("Socket errors:") {
                // "connect 0, read 12, write 0, timeout 0"
                failures.connection_errors = errors
                    .split(',')
                    .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                    .sum();
            }
        }
        failures
    }
}

fn first_number(text: &str) -> u64 {
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Two light probes through nginx, every 5 ms: one on a new connection each time, each on its
/// own thread (when does nginx first route to the new version?), and one keep-alive client
/// (until when does it still get the old version?).
pub const PROBE_EVERY: Duration = Duration::from_millis(5);

pub struct Watch {
    stop: Arc<AtomicBool>,
    first_new: JoinHandle<(Option<(Instant, Duration)>, Duration)>,
    last_old: JoinHandle<Option<Instant>>,
}

/// When the new version was first served, and how long after that a keep-alive client's
/// requests still went to the old one.
pub struct Seen {
    pub first_new: Option<Instant>,
    /// How long the request that first got the new version waited for its answer.
    pub first_new_waited: Duration,
    /// The longest any probe request answered before it waited (one stuck in a SYN retry to
    /// the old color; the probes run side by side, so it holds back no other).
    pub longest_wait_before_new: Duration,
    /// From then until the keep-alive client last sent a request that the old color answered
    /// (a request sent earlier and answered late does not count).
    pub old_after_new: Duration,
}

impl Watch {
    pub fn start(port: u16, old_version: &str, new_version: &str) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let first_new = std::thread::spawn({
            let (stop, new_version) = (stop.clone(), new_version.to_owned());
            move || {
                // A probe every PROBE_EVERY, each on its own thread: one stuck for a second in a
                // SYN retry (the old color's full listen queue) does not hold back the others.
                let (answers, answered) = std::sync::mpsc::channel();
                let mut longest = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    let answers = answers.clone();
                    std::thread::spawn(move || {
                        let sent = Instant::now();
                        let version = version_on_new_connection(port);
                        let _ = answers.send((version, sent.elapsed()));
                    });
                    std::thread::sleep(PROBE_EVERY);
                    for (version, waited) in answered.try_iter() {
                        if version.as_deref() == Some(new_version.as_str()) {
                            return (Some((Instant::now(), waited)), longest);
                        }
                        longest = longest.max(waited);
                    }
                }
                (None, longest)
            }
        });
        let last_old = std::thread::spawn({
            let (stop, old_version) = (stop.clone(), old_version.to_owned());
            move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(2))
                    .build()
                    .unwrap();
                let mut last_old = None;
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let body = client
                        .get(format!("http://127.0.0.1:{port}/"))
                        .send()
                        .and_then(|response| response.text())
                        .unwrap_or_default();
                    if version_in(&body) == Some(old_version.as_str()) {
                        last_old = Some(sent);
                    }
                    std::thread::sleep(PROBE_EVERY);
                }
                last_old
            }
        });
        Watch {
            stop,
            first_new,
            last_old,
        }
    }

    pub fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let (first_new, longest_wait_before_new) = self.first_new.join().unwrap();
        let (first_new, first_new_waited) = match first_new {
            Some((at, waited)) => (Some(at), waited),
            None => (None, Duration::ZERO),
        };
        let last_old = self.last_old.join().unwrap();
        let old_after_new = match (first_new, last_old) {
            (Some(new), Some(old)) => old.saturating_duration_since(new),
            _ => Duration::ZERO,
        };
        Seen {
            first_new,
            first_new_waited,
            longest_wait_before_new,
            old_after_new,
        }
    }
}

/// The demo app's version in a 2xx answer to `GET /` on a connection of its own.
fn version_on_new_connection(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer
        .starts_with("HTTP/1.1 2")
        .then(|| version_in(&answer).map(str::to_owned))?
}

/// How long requests on a new connection each (every [`PROBE_EVERY`], for `during`) took
/// through nginx: what the probes above wait for an answer under the same load.
pub fn latencies_on_new_connections(port: u16, during: Duration) -> Vec<Duration> {
    let until = Instant::now() + during;
    let mut latencies = Vec::new();
    while Instant::now() < until {
        let sent = Instant::now();
        if version_on_new_connection(port).is_some() {
            latencies.push(sent.elapsed());
        }
        std::thread::sleep(PROBE_EVERY);
    }
    latencies
}

/// `{"app":"demo","version":"v2",…}` → `v2`.
pub fn version_in(body: &str) -> Option<&str> {
    body.split("\"version\":\"").nth(1)?.split('"').next()
}

/// SYNs this host has sent again (`TCPSynRetrans` in /proc/net/netstat): each is a connection
/// attempt that waited at least 1 s (the initial retransmission timeout) because its first SYN
/// was dropped, here by a full listen queue (the demo app is busybox httpd, which listens with
/// a backlog of 9; Docker's proxy dials it from this host's network namespace).
pub fn syn_retransmits() -> u64 {
    let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = netstat.lines().filter(|line| line.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "TCPSynRetrans")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

/// Watches this host's connection attempts (sockets in SYN-SENT) to `ip`, every 20 ms: Docker's
/// proxy dialing the old color's container while the client's connection to the old port waits.
pub struct Attempts {
    stop: Arc<AtomicBool>,
    last: JoinHandle<Option<Instant>>,
}

impl Attempts {
    pub fn watch(ip: String) -> Attempts {
        let stop = Arc::new(AtomicBool::new(false));
        let last = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut last = None;
                while !stop.load(Ordering::Relaxed) {
                    let listed = Command::new("ss")
                        .args(["-tnH", "state", "syn-sent", "dst", &ip])
                        .output()
                        .map(|output| output.stdout)
                        .unwrap_or_default();
                    if !listed.is_empty() {
                        last = Some(Instant::now());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                last
            }
        });
        Attempts { stop, last }
    }

    /// When an attempt was last seen.
    pub fn last(self) -> Option<Instant> {
        self.stop.store(true, Ordering::Relaxed);
        self.last.join().unwrap()
    }
}
