//! The demo behind `scripts/demo.sh`: brings up the sandbox server on loopback, deploys the
//! demo app v1, then v2 while a steady load runs through nginx, and prints what happened.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use support::{load::Load, shared, Site};

fn main() {
    println!(
        "bluegreen demo: starting the sandbox (sshd, registry, nginx on loopback; demo images)..."
    );
    let started = Instant::now();
    let shared = shared();
    let mut site = Site::new("demo");
    // The default switch (`auto`), as a user without a traffic_switch setting gets it.
    site.use_auto_switch();
    println!(
        "sandbox ready in {:.1}s: ssh 127.0.0.1:{}, registry {}, nginx 127.0.0.1:{}",
        started.elapsed().as_secs_f64(),
        shared.ssh_port,
        shared.registry,
        site.nginx_port
    );

    let deploy = |tag: &str| {
        println!("\n$ bluegreen deploy --image-ref {}", shared.image(tag));
        let run = site.deploy(tag);
        eprint!("{}", run.stderr);
        assert_eq!(run.code, 0, "deploy of {tag} failed");
        run
    };
    deploy("v1");
    println!("\nnginx now serves: {}", serving(site.served()));
    let load = Load::start(site.nginx_port, 8);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let second = deploy("v2");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let report = load.finish();
    println!("\nnginx now serves: {}", serving(site.served()));
    let summary = second
        .stderr
        .lines()
        .rev()
        .find(|l| l.contains("deployed "))
        .unwrap_or("")
        .trim()
        .to_owned();
    println!("\n=== summary ===");
    println!("second deploy: {summary}");
    println!(
        "requests through nginx during the second deploy: {} sent, {} ok, {} non-2xx, {} connection errors, longest gap without a success {:.0} ms, versions seen: {}",
        report.sent, report.ok, report.non_2xx, report.errors, report.longest_gap.as_secs_f64() * 1000.0, report.versions.join(" then ")
    );
    println!("failed requests: {}", report.non_2xx + report.errors);
    println!("status:\n{}", site.run(&["status"]).stdout);
}

/// What nginx serves, for people: `v1 (blue)`.
fn serving(served: Option<(String, String)>) -> String {
    match served {
        Some((version, color)) => format!("{version} ({color})"),
        None => "nothing that names its version and color (no 200 answer)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_nginx_serves_reads_as_version_and_color() {
        assert_eq!(serving(Some(("v1".into(), "blue".into()))), "v1 (blue)");
        assert!(!serving(None).contains("None"));
    }
}
