//! The swap benchmark behind `scripts/bench.sh`. On the sandbox server (sshd, nginx, Docker
//! on loopback) it keeps a steady keep-alive load on nginx (wrk, 2 threads × 32 connections)
//! while it swaps colors N times with each method, on the same nginx and the same images:
//!   (a) restart: rewrite the include, stop nginx and start it again (seed 002)
//!   (b) reload, then stop the old color at once (seeds 000/003/004)
//!   (c) bluegreen deploy, default switch (nginx reload, drain, then stop)
//!   (d) bluegreen deploy, `traffic_switch: nftables` (no reload)
//! and prints, per method: requests, non-2xx, connection errors, the longest gap without a
//! success; for bluegreen also readiness detection, switch latency, its own overhead and SSH
//! round trips.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{sh, shared, Site};

const SWAPS: usize = 5;

struct Wrk(Child);

#[derive(Default, Debug)]
struct WrkReport {
    requests: u64,
    non_2xx: u64,
    socket_errors: u64,
    detail: String,
}

impl Wrk {
    /// A steady load: each of the 32 connections sends a request every 10 ms (≈3,200 req/s),
    /// which leaves the 2-core machine room to run the deploys it measures.
    fn start(port: u16) -> Wrk {
        let script = std::env::temp_dir().join("bluegreen-bench-steady.lua");
        std::fs::write(&script, "function delay()\n  return 10\nend\n").unwrap();
        let child = Command::new("wrk")
            .args([
                "-t2",
                "-c32",
                "-d3600s",
                "--timeout",
                "5s",
                "-s",
                script.to_str().unwrap(),
                &format!("http://127.0.0.1:{port}/"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("wrk is installed by scripts/setup.sh");
        std::thread::sleep(Duration::from_millis(500));
        Wrk(child)
    }

    fn finish(self) -> WrkReport {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let output = self.0.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut report = WrkReport::default();
        for line in text.lines().map(str::trim) {
            if line.contains(" requests in ") {
                report.requests = line.split_whitespace().next().unwrap().parse().unwrap_or(0);
            } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
                report.non_2xx = n.trim().parse().unwrap_or(0);
            } else if let Some(errors) = line.strip_prefix("Socket errors:") {
                report.socket_errors = errors
                    .split(',')
                    .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                    .sum();
                report.detail = errors.trim().to_owned();
            }
        }
        report
    }
}

/// A light prober beside wrk: the longest stretch without a successful response, and when each
/// version was first served through nginx.
struct Gaps {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Duration>,
    first_seen: Arc<Mutex<Vec<(String, Instant)>>>,
}

impl Gaps {
    fn start(port: u16) -> Gaps {
        let stop = Arc::new(AtomicBool::new(false));
        let first_seen = Arc::new(Mutex::new(Vec::new()));
        let (s, f) = (stop.clone(), first_seen.clone());
        let handle = std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap();
            let (mut last_ok, mut longest) = (Instant::now(), Duration::ZERO);
            while !s.load(Ordering::Relaxed) {
                if let Ok(response) = client.get(format!("http://127.0.0.1:{port}/")).send() {
                    if response.status().is_success() {
                        let body = response.text().unwrap_or_default();
                        let now = Instant::now();
                        longest = longest.max(now - last_ok);
                        last_ok = now;
                        let version = body
                            .split("\"version\":\"")
                            .nth(1)
                            .and_then(|r| r.split('"').next())
                            .unwrap_or("")
                            .to_owned();
                        let mut seen = f.lock().unwrap();
                        if seen.last().map(|(v, _)| v != &version).unwrap_or(true) {
                            seen.push((version, now));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            longest.max(last_ok.elapsed())
        });
        Gaps {
            stop,
            handle,
            first_seen,
        }
    }

    fn finish(self) -> (Duration, Vec<(String, Instant)>) {
        self.stop.store(true, Ordering::Relaxed);
        let longest = self.handle.join().unwrap();
        (longest, self.first_seen.lock().unwrap().clone())
    }
}

fn wait_healthy(port: u16) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if client
            .get(format!("http://127.0.0.1:{port}/actuator/health"))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the app on {port} never became healthy"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The seed scripts' swap, with one way to move nginx; `restart` picks (a) or (b).
fn script_swap(site: &mut Site, index: usize, restart: bool) {
    let colors = [("blue", site.blue_port), ("green", site.green_port)];
    let (new_color, new_port) = colors[(index + 1) % 2];
    let (old_color, _) = colors[index % 2];
    let new_name = format!("{}-{new_color}", site.app);
    let _ = Command::new("docker")
        .args(["rm", "-f", &new_name])
        .output();
    let tag = if index.is_multiple_of(2) { "v2" } else { "v3" };
    sh(Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            &new_name,
            "--label",
            &format!("bluegreen.app={}", site.app),
        ])
        .args([
            "-e",
            &format!("BLUEGREEN_COLOR={new_color}"),
            "-p",
            &format!("127.0.0.1:{new_port}:8080"),
            &shared().image(tag),
        ]));
    wait_healthy(new_port);
    std::fs::write(
        &site.switch_file,
        format!("set $service_url http://127.0.0.1:{new_port};\n"),
    )
    .unwrap();
    if restart {
        site.restart_nginx();
    } else {
        let reload = site
            .env
            .iter()
            .find(|(k, _)| k == "BLUEGREEN_NGINX_RELOAD_COMMAND")
            .unwrap()
            .1
            .clone();
        sh(Command::new("sh").args(["-c", &reload]));
    }
    sh(Command::new("docker").args(["rm", "-f", &format!("{}-{old_color}", site.app)]));
}

struct ToolRun {
    seconds: f64,
    pull: f64,
    start: f64,
    health: f64,
    stop: f64,
    round_trips: u64,
    healthy_at: Option<Instant>,
}

/// Runs `bluegreen deploy`, time-stamping its output lines as they arrive.
fn tool_deploy(site: &Site, tag: &str) -> ToolRun {
    let mut child = site
        .bluegreen(&["deploy", "--image-ref", &shared().image(tag)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut healthy_at = None;
    let mut summary = String::new();
    for line in BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        if line.contains(" healthy after ") {
            healthy_at = Some(Instant::now());
        }
        if line.contains("SSH round trips") {
            println!("  {}", line.trim());
            summary = line;
        }
    }
    assert!(child.wait().unwrap().success(), "deploy of {tag} failed");
    let number_after = |label: &str| -> f64 {
        summary
            .split(label)
            .nth(1)
            .and_then(|r| {
                r.trim_start()
                    .split(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .next()
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0)
    };
    ToolRun {
        seconds: number_after(" in "),
        pull: number_after("pull "),
        start: number_after("start "),
        stop: number_after("stop old "),
        health: number_after("health "),
        round_trips: summary
            .split("); ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        healthy_at,
    }
}

struct Row {
    method: &'static str,
    wrk: WrkReport,
    longest_gap: Duration,
}

fn measure(
    method: &'static str,
    site: &mut Site,
    mut swaps: impl FnMut(&mut Site),
) -> (Row, Vec<(String, Instant)>) {
    let wrk = Wrk::start(site.nginx_port);
    let gaps = Gaps::start(site.nginx_port);
    swaps(site);
    std::thread::sleep(Duration::from_millis(500));
    let (longest_gap, seen) = gaps.finish();
    (
        Row {
            method,
            wrk: wrk.finish(),
            longest_gap,
        },
        seen,
    )
}

fn main() {
    println!("swap benchmark: {SWAPS} swaps per method; wrk 2 threads × 32 keep-alive connections on nginx (loopback), each sending every 10 ms");
    let shared = shared();
    let _ = shared;
    let mut rows = Vec::new();

    let mut scripts = Site::new("bench-script");
    let blue = format!("{}-blue", scripts.app);
    sh(Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            &blue,
            "--label",
            &format!("bluegreen.app={}", scripts.app),
        ])
        .args([
            "-e",
            "BLUEGREEN_COLOR=blue",
            "-p",
            &format!("127.0.0.1:{}:8080", scripts.blue_port),
            &shared.image("v1"),
        ]));
    wait_healthy(scripts.blue_port);
    std::fs::write(
        &scripts.switch_file,
        format!("set $service_url http://127.0.0.1:{};\n", scripts.blue_port),
    )
    .unwrap();
    scripts.restart_nginx();
    let (row, _) = measure("(0) no swap at all (baseline, 10 s)", &mut scripts, |_| {
        std::thread::sleep(Duration::from_secs(10))
    });
    rows.push(row);
    let (row, _) = measure("(a) nginx restart (seed 002)", &mut scripts, |site| {
        (0..SWAPS).for_each(|i| script_swap(site, i, true))
    });
    rows.push(row);
    let (row, _) = measure(
        "(b) reload, stop old at once (seeds 000/003/004)",
        &mut scripts,
        |site| (0..SWAPS).for_each(|i| script_swap(site, i + SWAPS, false)),
    );
    rows.push(row);
    drop(scripts);

    let mut tool_runs = Vec::new();
    for nftables in [false, true] {
        let mut site = Site::new(if nftables { "bench-nft" } else { "bench-tool" });
        if nftables {
            site.use_nftables_switch();
        }
        site.deploy("v1").success();
        let mut runs = Vec::new();
        let method = if nftables {
            "(d) bluegreen, traffic_switch: nftables"
        } else {
            "(c) bluegreen, default (reload + drain)"
        };
        let (row, seen) = measure(method, &mut site, |site| {
            for i in 0..SWAPS {
                runs.push((
                    if i % 2 == 0 { "v2" } else { "v3" },
                    tool_deploy(site, if i % 2 == 0 { "v2" } else { "v3" }),
                ));
            }
        });
        rows.push(row);
        // Switch latency: from the tool seeing the new color healthy to nginx serving it.
        let mut latencies = Vec::new();
        let mut seen_iter = seen.iter().skip(1);
        for (tag, run) in &runs {
            if let (Some(healthy), Some((_, served))) =
                (run.healthy_at, seen_iter.find(|(v, _)| v == tag))
            {
                latencies.push(served.saturating_duration_since(healthy));
            }
        }
        // Readiness detection: an image that becomes ready 3 s after start.
        site.set("BLUEGREEN_HEALTH_INTERVAL", "200ms");
        let ready_probe = std::thread::spawn({
            let port = if site.status_json()["live_color"] == "blue" {
                site.green_port
            } else {
                site.blue_port
            };
            move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_millis(500))
                    .build()
                    .unwrap();
                while Instant::now() < deadline {
                    if client
                        .get(format!("http://127.0.0.1:{port}/actuator/health"))
                        .send()
                        .is_ok_and(|r| r.status().is_success())
                    {
                        return Some(Instant::now());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                None
            }
        });
        let slow = tool_deploy(&site, "slow");
        // The same swaps with no load: the tool's own overhead when it has the machine.
        let unloaded: Vec<ToolRun> = ["v2", "v3", "v2"]
            .iter()
            .map(|tag| tool_deploy(&site, tag))
            .collect();
        let detection = match (ready_probe.join().unwrap(), slow.healthy_at) {
            (Some(ready), Some(seen)) => Some(seen.saturating_duration_since(ready)),
            _ => None,
        };
        tool_runs.push((method, runs, latencies, detection, unloaded));
    }

    println!("\n| method | requests | non-2xx | connection errors | longest gap without a 2xx |");
    println!("|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} ({}) | {:.0} ms |",
            row.method,
            row.wrk.requests,
            row.wrk.non_2xx,
            row.wrk.socket_errors,
            if row.wrk.detail.is_empty() {
                "none".into()
            } else {
                row.wrk.detail.clone()
            },
            row.longest_gap.as_secs_f64() * 1000.0
        );
    }
    for (method, runs, latencies, detection, unloaded) in tool_runs {
        let overheads: Vec<f64> = runs
            .iter()
            .map(|(_, r)| r.seconds - r.pull - r.start - r.health - r.stop)
            .collect();
        let walls: Vec<f64> = runs.iter().map(|(_, r)| r.seconds).collect();
        let trips: Vec<u64> = runs.iter().map(|(_, r)| r.round_trips).collect();
        let ms = |d: &Duration| format!("{:.0}", d.as_secs_f64() * 1000.0);
        println!("\n{method}:");
        println!(
            "  deploy wall time (s): {}",
            walls
                .iter()
                .map(|w| format!("{w:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("  tool overhead = wall − pull − app start (docker run + health wait) − docker stop of the old color (s): {}", overheads.iter().map(|w| format!("{w:.2}")).collect::<Vec<_>>().join(", "));
        let overhead = |r: &ToolRun| r.seconds - r.pull - r.start - r.health - r.stop;
        println!(
            "  without load: wall (s) {}; tool overhead (s) {}",
            unloaded
                .iter()
                .map(|r| format!("{:.2}", r.seconds))
                .collect::<Vec<_>>()
                .join(", "),
            unloaded
                .iter()
                .map(|r| format!("{:.2}", overhead(r)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "  SSH round trips per deploy: {}",
            trips
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "  switch latency, healthy → first response from the new color (ms): {}",
            latencies.iter().map(ms).collect::<Vec<_>>().join(", ")
        );
        println!(
            "  readiness noticed after the app was ready (health_interval 200ms): {}",
            detection
                .map(|d| format!("{} ms", ms(&d)))
                .unwrap_or("n/a".into())
        );
    }
}
