//! After a reboot the site serves again with no deploy (INTERFACE.md "After a reboot"): each
//! deploy and rollback keeps `{state_dir}/boot` current, registered as a systemd unit (or an
//! `@reboot` crontab line). Process mode with the nftables switch, where a reboot loses both
//! the DNAT rule and the app: on an EC2-like server really rebooted (`docker restart` of a
//! systemd container), and on the sandbox by taking the rule and the app away by hand.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{process_site, Processes};
use crate::support::ec2::Ec2;
use crate::support::{sh, wait_until, Site};

/// An app for process mode: serves `{"version":…,"color":…}` on `/` and the health path, and
/// its `GREETING` variable on `/greeting`, from a directory it writes, with `httpd` (a command line; `$1` is the port).
fn app(dir: &Path, version: &str, httpd: &str) -> PathBuf {
    let path = dir.join(format!("app-{version}.sh"));
    std::fs::write(
        &path,
        format!(
            "mkdir -p www/actuator\n\
             printf '{{\"version\":\"{version}\",\"color\":\"%s\"}}' \"$BLUEGREEN_COLOR\" > www/index.html\n\
             cp www/index.html www/actuator/health\n\
             printf '%s' \"$GREETING\" > www/greeting\n\
             cd www && exec {httpd}\n"
        ),
    )
    .unwrap();
    path
}

fn version_served(body: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    Some(json["version"].as_str()?.to_owned())
}

fn run(env: &[(String, String)], dir: &Path, args: &[&str]) -> crate::support::Run {
    let mut command = Command::new(crate::support::binary());
    command.args(args).current_dir(dir).env_clear();
    for key in ["PATH", "HOME", "USER"] {
        if let Ok(value) = std::env::var(key) {
            command.env(key, value);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    crate::support::Run::from(command.output().unwrap())
}

#[test]
fn an_ec2_like_server_serves_the_last_verified_version_after_a_reboot() {
    let server = Ec2::start("reboot");
    server.exec(
        "printf 'server {\\n listen 80 default_server;\\n location / { proxy_pass http://127.0.0.1:8080; }\\n}\\n' \
         > /etc/nginx/sites-enabled/default && nginx -t -q && systemctl reload nginx",
    );
    let httpd = "busybox httpd -f -p 127.0.0.1:$1";
    let (v1, v2) = (app(&server.dir, "v1", httpd), app(&server.dir, "v2", httpd));
    let mut server = server;
    let env = |server: &Ec2| {
        let mut env = server.ssh_env();
        for (key, value) in [
            ("BLUEGREEN_APP_NAME", "shop"),
            ("BLUEGREEN_RUN_COMMAND", "sh {artifact} {port}"),
            ("BLUEGREEN_BLUE_PORT", "8081"),
            ("BLUEGREEN_GREEN_PORT", "8082"),
            ("BLUEGREEN_TRAFFIC_SWITCH", "nftables"),
            ("BLUEGREEN_SERVICE_PORT", "8080"),
            ("BLUEGREEN_HEALTH_PATH", "/actuator/health"),
            ("BLUEGREEN_HEALTH_INTERVAL", "250ms"),
            ("BLUEGREEN_VERIFY_URL", "http://127.0.0.1/actuator/health"),
            ("BLUEGREEN_STOP_TIMEOUT", "2s"),
        ] {
            env.push((key.to_owned(), value.to_owned()));
        }
        env
    };
    let deploy = |server: &Ec2, artifact: &Path| {
        let mut env = env(server);
        env.push(("BLUEGREEN_ARTIFACT".into(), artifact.display().to_string()));
        run(&env, &server.dir, &["deploy"])
    };
    deploy(&server, &v1).success();
    let second = deploy(&server, &v2);
    second.success();
    assert!(!second.stderr.contains("no boot hook"), "{}", second.stderr);
    assert_eq!(
        server.get("/").and_then(|(_, body)| version_served(&body)),
        Some("v2".into())
    );
    // The rollback is the last verified change: the boot must restore v1, not the newest deploy.
    run(&env(&server), &server.dir, &["rollback"]).success();
    assert_eq!(
        server.get("/").and_then(|(_, body)| version_served(&body)),
        Some("v1".into())
    );
    assert_eq!(
        server
            .exec("systemctl is-enabled bluegreen-boot-shop.service")
            .trim(),
        "enabled"
    );
    let doctor = run(&env(&server), &server.dir, &["doctor"]);
    assert!(
        doctor.stdout.contains(
            "✓ after a reboot the systemd unit bluegreen-boot-shop.service runs ~/.bluegreen/shop/boot"
        ),
        "{}\n{}",
        doctor.stdout,
        doctor.stderr
    );

    server.reboot();
    let rebooted = Instant::now();
    let serves_v1 = || {
        server
            .get("/")
            .filter(|(status, _)| *status == 200)
            .and_then(|(_, body)| version_served(&body))
            == Some("v1".into())
    };
    while !serves_v1() {
        assert!(
            rebooted.elapsed() < Duration::from_secs(15),
            "the site does not serve v1 15 s after the reboot:\n{}",
            server.inspect(
                "systemctl status --no-pager bluegreen-boot-shop.service; \
                 journalctl -b --no-pager -u bluegreen-boot-shop.service | tail -20; \
                 nft list ruleset; ss -ltnp; cat /root/.bluegreen/shop/*.log"
            )
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("served again {:?} after the restart", rebooted.elapsed());
    // The oneshot unit is active once its script has ended, which may be a moment after the
    // app it started serves.
    let unit_state =
        || server.exec("systemctl show -p ActiveState --value bluegreen-boot-shop.service");
    let ended = Instant::now();
    while unit_state().trim() != "active" {
        assert!(
            ended.elapsed() < Duration::from_secs(10),
            "the boot unit is {} 10 s after the site served",
            unit_state().trim()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.exec("nft list tables").contains("bluegreen_shop"));
    // What the boot started is the tool's own live color: the next deploy swaps as usual.
    deploy(&server, &v2).success();
    assert_eq!(
        server.get("/").and_then(|(_, body)| version_served(&body)),
        Some("v2".into())
    );
}

#[test]
fn a_simulated_reboot_is_undone_by_the_boot_script() {
    let mut site = process_site("boot");
    let _processes = Processes(site.state_dir.clone());
    // The default switch, `auto`: nftables here, whose DNAT rule a reboot clears.
    site.use_auto_switch();
    site.set("BLUEGREEN_RUN_COMMAND", "sh {artifact} {port}");
    site.set("BLUEGREEN_SECRET_ENV", "GREETING=kept-secret-4711");
    let httpd = "busybox httpd -f -p 127.0.0.1:$1";
    let (v1, v2) = (app(&site.dir, "v1", httpd), app(&site.dir, "v2", httpd));
    for artifact in [&v1, &v2] {
        site.set("BLUEGREEN_ARTIFACT", &artifact.display().to_string());
        let deploy = site.run(&["deploy"]);
        deploy.success();
        // This sandbox has neither systemd as PID 1 nor cron: the deploy says so.
        assert!(
            deploy
                .stderr
                .contains("warning: no boot hook (no systemd and no crontab)"),
            "{}",
            deploy.stderr
        );
    }
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));

    simulate_reboot(&site);
    assert_eq!(site.served(), None, "the reboot left the site serving");
    let boot = site.state_dir.join("boot");
    let output = sh(&mut Command::new(&boot));
    assert!(output.contains("traffic goes to green"), "{output}");
    wait_until("the site serves v2 again", Duration::from_secs(10), || {
        site.served() == Some(("v2".into(), "green".into()))
    });
    // The app came back with its environment, a secret included, which the boot script itself
    // does not hold: it stays in the color's private file (0600).
    assert_eq!(
        site.get("/greeting").map(|(_, body)| body),
        Ok("kept-secret-4711".to_owned())
    );
    assert!(!std::fs::read_to_string(&boot)
        .unwrap()
        .contains("kept-secret"));
    let env = std::fs::metadata(site.state_dir.join("green.env")).unwrap();
    assert_eq!(env.permissions().mode() & 0o777, 0o600);
}

/// What a reboot takes away: the site's nftables table and the live color's process group.
fn simulate_reboot(site: &Site) {
    let table = site.nft_table();
    sh(Command::new("nft").args(["delete", "table", "ip", &table]));
    // `PID START BOOT`: the supervisor's pid (its group), its start time and the boot id.
    let recorded = std::fs::read_to_string(site.state_dir.join("green.pid")).unwrap();
    let pid = recorded.split_whitespace().next().unwrap();
    sh(Command::new("kill").args(["-s", "KILL", "--", &format!("-{pid}")]));
    let port = site.green_port;
    wait_until("green's port is free", Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
}
