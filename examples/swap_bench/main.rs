//! The swap benchmark behind `scripts/bench.sh`, issue 12's figures in one run. On the sandbox
//! server (sshd, nginx, Docker on loopback) it swaps colors 5 times with each method, on the
//! same images, each swap under wrk's keep-alive load (2 threads × 32 connections):
//!   (0) baseline: no swap
//!   (a) restart: rewrite the include, stop nginx and start it again (seed 002)
//!   (b) reload, then stop the old color at once (seeds 000/003/004)
//!   (c) bluegreen, `traffic_switch: nginx` (reload, drain, stop)
//!   (d) bluegreen, `traffic_switch: nftables` (one DNAT rule, no reload)
//!   (e) bluegreen with no traffic_switch setting (the default)
//!   (f) like (c) on Debian sid's nginx with `keepalive_min_timeout`, when
//!       `scripts/sid-nginx.sh` has built its image
//! then, for bluegreen's methods, 5 deploys without load (wall, overhead) and 5 of an app that
//! becomes ready 3 s after it starts (readiness noticed). bluegreen runs with its default
//! settings except what the sandbox needs (addresses, ports, nginx commands, state_dir), as a
//! deploy user with passwordless sudo (see `Site::as_deploy_user`).
//! Prints one table of every figure and one of issue 12's targets.

#[path = "../../tests/support/mod.rs"]
mod support;

mod load;
mod report;
mod sid;
mod tool;

use std::process::Command;
use std::time::{Duration, Instant};

use load::{version_in, Watch, Wrk};
use report::{Method, Swap, ToolFigures};
use support::{free_port, sh, shared, Site};

const SWAPS: usize = 5;

/// After each swap the load keeps running this long, so late failures are counted too.
const SETTLE: Duration = Duration::from_secs(1);
/// With `keepalive_min_timeout 5s`, old workers may serve (and proxy to the old color) up to
/// 5 s after a reload.
const SID_SETTLE: Duration = Duration::from_secs(6);

/// The image deployed by swap `i`: v2 and v3 alternate (v1 is the first deploy).
fn tag(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        "v2"
    } else {
        "v3"
    }
}

fn previous_tag(i: usize) -> &'static str {
    if i == 0 {
        "v1"
    } else {
        tag(i - 1)
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// One swap under load. `versions` (old, new) are watched for when nginx serves the new one;
/// `swap` returns when it saw the new color healthy, and what else it measured.
fn under_load<R>(
    site: &mut Site,
    versions: Option<(&str, &str)>,
    settle: Duration,
    swap: impl FnOnce(&mut Site) -> (Instant, R),
) -> (Swap, R) {
    let wrk = Wrk::start(site.nginx_port);
    let watch = versions.map(|(old, new)| Watch::start(site.nginx_port, old, new));
    let syn_retransmits = load::syn_retransmits();
    let (healthy_at, result) = swap(site);
    std::thread::sleep(settle);
    let syn_retransmits = load::syn_retransmits() - syn_retransmits;
    let seen = watch.map(Watch::finish);
    let failures = wrk.finish();
    let saw_new = seen.as_ref().filter(|seen| seen.first_new.is_some());
    let swap = Swap {
        failures,
        syn_retransmits,
        first_new_waited_ms: saw_new.map(|seen| ms(seen.first_new_waited)),
        longest_wait_before_new_ms: saw_new.map(|seen| ms(seen.longest_wait_before_new)),
        serves_ms: seen
            .as_ref()
            .and_then(|seen| seen.first_new)
            .map(|served| ms(served.saturating_duration_since(healthy_at))),
        old_after_new_ms: seen.map_or(0.0, |seen| ms(seen.old_after_new)),
    };
    (swap, result)
}

fn wait_healthy(port: u16) -> Instant {
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
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "the app on {port} never became healthy"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn run_container(site: &Site, color: &str, port: u16, tag: &str) {
    sh(Command::new("docker")
        .args([
            "run",
            "--detach",
            "--name",
            &format!("{}-{color}", site.app),
        ])
        .args(["--label", &format!("bluegreen.app={}", site.app)])
        .args(["--env", &format!("BLUEGREEN_COLOR={color}")])
        .args(["--publish", &format!("127.0.0.1:{port}:8080")])
        .arg(shared().image(tag)));
}

/// The seed scripts' swap `i`: start the new color, wait until it answers, point the include
/// at it, restart or reload nginx, remove the old color at once. Returns when it was healthy.
fn script_swap(site: &mut Site, i: usize, restart: bool) -> Instant {
    let colors = [("blue", site.blue_port), ("green", site.green_port)];
    let (new_color, new_port) = colors[(i + 1) % 2];
    let (old_color, _) = colors[i % 2];
    let _ = Command::new("docker")
        .args(["rm", "-f", &format!("{}-{new_color}", site.app)])
        .output();
    run_container(site, new_color, new_port, tag(i));
    let healthy_at = wait_healthy(new_port);
    std::fs::write(
        &site.switch_file,
        format!("set $service_url http://127.0.0.1:{new_port};\n"),
    )
    .unwrap();
    if restart {
        site.restart_nginx();
    } else {
        sh(Command::new("sh").args(["-c", &site.setting("BLUEGREEN_NGINX_RELOAD_COMMAND")]));
    }
    sh(Command::new("docker").args(["rm", "-f", &format!("{}-{old_color}", site.app)]));
    healthy_at
}

/// (0), (a) and (b) on one site whose nginx starts pointed at blue (v1); also how long a
/// request on a new connection took through nginx under the load during (0).
fn script_methods() -> (Vec<Method>, Vec<Duration>) {
    let mut site = Site::new("bench-script");
    run_container(&site, "blue", site.blue_port, "v1");
    wait_healthy(site.blue_port);
    site.point_nginx_at_blue_like_an_old_script();
    let mut latencies = Vec::new();
    let baseline = (0..SWAPS)
        .map(|_| {
            let idle = |site: &mut Site| {
                let port = site.nginx_port;
                let seen = load::latencies_on_new_connections(port, Duration::from_secs(2));
                (Instant::now(), seen)
            };
            let (swap, seen) = under_load(&mut site, None, SETTLE, idle);
            latencies.extend(seen);
            swap
        })
        .collect();
    let mut methods = vec![Method {
        label: "(0) baseline: no swap (2 s each)".into(),
        swaps: baseline,
        switches: false,
        tool: None,
    }];
    let seeds = [
        ("(a) nginx restart (seed 002)", true),
        ("(b) reload + stop old at once (seeds 000/003/004)", false),
    ];
    for (n, (label, restart)) in seeds.into_iter().enumerate() {
        let swaps = (n * SWAPS..(n + 1) * SWAPS)
            .map(|i| {
                let versions = Some((previous_tag(i), tag(i)));
                under_load(&mut site, versions, SETTLE, |site| {
                    (script_swap(site, i, restart), ())
                })
                .0
            })
            .collect();
        progress(label);
        methods.push(Method {
            label: label.into(),
            swaps,
            switches: true,
            tool: None,
        });
    }
    (methods, latencies)
}

/// The app (the "slow" image, ready 3 s after it starts) answers its health path at the
/// returned instant (polled every 5 ms from outside); bluegreen logs it healthy at the other.
fn readiness_ms(site: &Site) -> f64 {
    let port = if site.status_json()["live_color"] == "blue" {
        site.green_port
    } else {
        site.blue_port
    };
    let ready = std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let body = client
                .get(format!("http://127.0.0.1:{port}/actuator/health"))
                .send()
                .ok()
                .filter(|response| response.status().is_success())
                .and_then(|response| response.text().ok())
                .unwrap_or_default();
            if version_in(&body) == Some("slow") {
                return Instant::now();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the slow app on {port} never became ready");
    });
    let run = tool::deploy(site, "slow");
    let ready = ready.join().unwrap();
    ms(run.healthy_at.saturating_duration_since(ready))
}

/// The address of the live color's container on Docker's network.
fn live_container_ip(site: &Site) -> Option<String> {
    let live = site.status_json()["live_color"].as_str()?.to_owned();
    let output = Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &format!("{}-{live}", site.app),
        ])
        .output()
        .ok()?;
    let ip = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (!ip.is_empty()).then_some(ip)
}

/// bluegreen's figures on `site`: the first deploy, swaps under load, swaps without load,
/// then readiness.
fn tool_method(label: String, mut site: Site, settle: Duration) -> Method {
    site.as_deploy_user();
    for tuned in [
        "BLUEGREEN_HEALTH_INTERVAL",
        "BLUEGREEN_DRAIN_TIMEOUT",
        "BLUEGREEN_STOP_TIMEOUT",
    ] {
        site.env.retain(|(name, _)| name != tuned);
    }
    site.deploy("v1").success();
    let (swaps, loaded) = (0..SWAPS)
        .map(|i| {
            under_load(&mut site, Some((previous_tag(i), tag(i))), settle, |site| {
                let attempts = live_container_ip(site).map(load::Attempts::watch);
                let mut run = tool::deploy(site, tag(i));
                run.old_attempts_until_ms = attempts
                    .and_then(load::Attempts::last)
                    .map(|last| ms(last.saturating_duration_since(run.healthy_at)));
                (run.healthy_at, run)
            })
        })
        .unzip();
    let unloaded = (SWAPS..2 * SWAPS)
        .map(|i| tool::deploy(&site, tag(i)))
        .collect();
    let readiness_ms = (0..SWAPS).map(|_| readiness_ms(&site)).collect();
    progress(&label);
    Method {
        label,
        swaps,
        switches: true,
        tool: Some(ToolFigures {
            loaded,
            unloaded,
            readiness_ms,
        }),
    }
}

/// `BENCH_METHODS` (e.g. `e` or `cde`) runs only those methods; unset: all of them.
/// `BENCH_TRACE` set: every bluegreen log line goes to stderr with its time since the start.
fn wanted(method: char) -> bool {
    std::env::var("BENCH_METHODS").map_or(true, |only| only.contains(method))
}

fn progress(label: &str) {
    eprintln!("bench: measured {label}");
}

fn main() {
    let started = Instant::now();
    println!(
        "# Swap benchmark: {SWAPS} swaps per method, each under wrk (2 threads × 32 keep-alive \
         connections on nginx, loopback, each sending every 10 ms)"
    );
    shared();
    let (mut methods, latencies) = if "0ab".chars().any(wanted) {
        script_methods()
    } else {
        (Vec::new(), Vec::new())
    };

    if wanted('c') {
        let mut nginx = Site::new("bench-nginx");
        nginx.set("BLUEGREEN_TRAFFIC_SWITCH", "nginx");
        methods.push(tool_method(
            "(c) bluegreen `traffic_switch: nginx`".into(),
            nginx,
            SETTLE,
        ));
    }

    if wanted('d') {
        let mut nftables = Site::new("bench-nft");
        nftables.use_nftables_switch();
        methods.push(tool_method(
            "(d) bluegreen `traffic_switch: nftables`".into(),
            nftables,
            SETTLE,
        ));
    }

    if wanted('e') {
        // No traffic_switch setting (the sandbox's sites set nginx unless told otherwise); a
        // service_port of its own, so a switch by nftables never takes this machine's 8080.
        let mut default = Site::new("bench-default");
        default.use_auto_switch();
        default.set("BLUEGREEN_SERVICE_PORT", &free_port().to_string());
        methods.push(tool_method(
            "(e) bluegreen default (traffic_switch: auto)".into(),
            default,
            SETTLE,
        ));
    }

    if !wanted('f') {
    } else if sid::available() {
        let mut site = Site::new("bench-sid");
        site.set("BLUEGREEN_TRAFFIC_SWITCH", "nginx");
        let container = sid::SidNginx::replace_nginx_of(&mut site);
        let label = format!(
            "(f) bluegreen `traffic_switch: nginx` on {} with `keepalive_min_timeout {}`",
            container.version(),
            sid::KEEPALIVE_MIN_TIMEOUT
        );
        methods.push(tool_method(label, site, SID_SETTLE));
        drop(container);
    } else {
        println!(
            "\n(f) skipped: no {} image (scripts/sid-nginx.sh builds it)",
            sid::IMAGE
        );
    }

    report::print_figures(&methods, SWAPS);
    report::print_targets(&methods);
    report::print_latencies(latencies);
    report::print_swaps(&methods);
    println!(
        "\nDeploy wall: from starting `bluegreen deploy` to its exit. Docker's part: the summary \
         line's pull, start, health and stop times (start and stop: the docker commands' own \
         time on the server). Tool overhead: wall − Docker's part. \
         Healthy → serves: the tool's (or script's) healthy line → the first answer of the new \
         version through nginx on a new connection (probed every {probe} ms, under load). \
         Keep-alive client: one connection probing every {probe} ms, the last request it sent \
         that the old color answered, after the new one served. Readiness: the \"slow\" app ready (polled every 5 ms from outside) → \
         bluegreen logs it healthy, default health_interval. Failures: wrk's non-2xx and socket \
         errors from 0.5 s before each swap to {:.0} s after it ({:.0} s for (f)).",
        SETTLE.as_secs_f64(),
        SID_SETTLE.as_secs_f64(),
        probe = load::PROBE_EVERY.as_millis()
    );
    println!("bench took {:.0} s", started.elapsed().as_secs_f64());
}
