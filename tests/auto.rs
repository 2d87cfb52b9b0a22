//! `traffic_switch: auto`, the default, on the real sandbox server (root, nft installed): it
//! picks nftables, moves a site an nginx switch served until now to it with one last reload,
//! then swaps under load with no reload and no failed request; a rule lost to a reboot is put
//! back by the next deploy; a taken service_port keeps the nginx switch, and says why.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use crate::support::load::Load;
use crate::support::Site;

fn nft_table_exists(site: &Site) -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", &site.nft_table()])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn auto_moves_an_nginx_site_to_nftables_then_swaps_without_reload_or_failure() {
    let mut site = Site::new("auto");
    site.deploy("v1").success();
    assert!(!nft_table_exists(&site), "the nginx switch made no rule");
    site.use_auto_switch();
    let service_port = site.setting("BLUEGREEN_SERVICE_PORT");

    let plan = site.run(&["plan", "--image-ref", &crate::support::shared().image("v2")]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout
            .contains("# traffic_switch auto chose nftables: nft works on the server"),
        "{}",
        plan.stdout
    );

    let first = site.deploy("v2");
    first.success();
    assert!(
        first.stderr.contains("traffic_switch auto chose nftables"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains(" -s reload"),
        "the one last reload: {}",
        first.stderr
    );
    let file = std::fs::read_to_string(&site.switch_file).unwrap();
    assert!(
        file.contains(&format!("127.0.0.1:{service_port};")),
        "the switch file now sends nginx to service_port: {file}"
    );
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));

    let load = Load::start(site.nginx_port, 8);
    std::thread::sleep(Duration::from_millis(300));
    site.swap_without_reload(&[("v3", "blue"), ("v1", "green")]);
    std::thread::sleep(Duration::from_millis(300));
    let report = load.finish();
    assert!(report.ok > 100, "{report:?}");
    assert_eq!((report.non_2xx, report.errors), (0, 0), "{report:?}");
    assert_eq!(report.versions, ["v2", "v3", "v1"], "{report:?}");

    let doctor = site.run(&["doctor"]);
    assert!(
        doctor
            .stdout
            .lines()
            .chain(doctor.stderr.lines())
            .any(|l| l.contains("✓") && l.contains("traffic_switch auto chose nftables")),
        "{}{}",
        doctor.stdout,
        doctor.stderr
    );

    // A reboot empties the kernel's ruleset: nginx proxies to a port nothing answers on.
    crate::support::sh(Command::new("nft").args(["delete", "table", "ip", &site.nft_table()]));
    assert_eq!(site.served(), None, "without the rule nothing serves");
    let healed = site.deploy("v1");
    healed.success();
    assert!(
        healed
            .stderr
            .contains("the nftables rule that sends that port to a color is gone"),
        "{}",
        healed.stderr
    );
    assert_eq!(site.served(), Some(("v1".into(), "green".into())));

    site.run(&["rollback"]).success();
    assert_eq!(site.served(), Some(("v3".into(), "blue".into())));
}

#[test]
fn auto_keeps_the_nginx_switch_when_service_port_is_taken_and_says_why() {
    let mut site = Site::new("auto-busy");
    site.use_auto_switch();
    let service_port = site.setting("BLUEGREEN_SERVICE_PORT");
    let _taken = TcpListener::bind(format!("127.0.0.1:{service_port}")).unwrap();
    let run = site.deploy("v1");
    run.success();
    assert!(
        run.stderr.contains(&format!(
            "traffic_switch auto chose nginx: port {service_port} (service_port) is in use"
        )),
        "{}",
        run.stderr
    );
    assert!(!nft_table_exists(&site));
    let file = std::fs::read_to_string(&site.switch_file).unwrap();
    assert!(
        file.contains(&format!("127.0.0.1:{};", site.blue_port)),
        "{file}"
    );
    assert_eq!(site.served(), Some(("v1".into(), "blue".into())));
}
