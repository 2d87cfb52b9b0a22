//! The README's recipes for the seeds' nginx layouts, each as it is written there, under load:
//! seed 002's `sites-enabled` symlink and seed 003's nginx in a container with an `upstream`.

use std::path::Path;

use crate::support::{load::Load, OldScriptContainer, Site};

/// An nginx.conf like the site's own, with `http` content of the recipe's choosing.
fn nginx_conf(dir: &Path, http: &str) -> String {
    let dir = dir.display();
    format!(
        "worker_processes 2;\npid {dir}/nginx.pid;\ndaemon off;\nevents {{ worker_connections 1024; }}\n\
         http {{\n    access_log off;\n    client_body_temp_path {dir}/tmp-body;\n    proxy_temp_path {dir}/tmp-proxy;\n\
         fastcgi_temp_path {dir}/tmp-fastcgi;\n    uwsgi_temp_path {dir}/tmp-uwsgi;\n    scgi_temp_path {dir}/tmp-scgi;\n{http}\n}}\n"
    )
}

fn server_block(nginx_port: u16, upstream: &str) -> String {
    format!(
        "server {{\n    listen 127.0.0.1:{nginx_port};\n    location / {{\n        proxy_pass {upstream};\n\
         proxy_http_version 1.1;\n        proxy_set_header Connection \"\";\n    }}\n}}\n"
    )
}

/// Seed 002: `sites-available/{blue,green}` hold whole server blocks, `sites-enabled/default`
/// is a symlink to one of them. Recipe: `nginx_switch_file: …/sites-enabled/default`,
/// `nginx_switch_template: include …/sites-available/{color};`. The first deploy replaces the
/// link with a file that includes the color (the sites-available files are never written).
#[test]
fn seed_002_sites_enabled_symlink() {
    let mut site = Site::new("seed002");
    let dir = site.dir.clone();
    for dir_name in ["sites-available", "sites-enabled"] {
        std::fs::create_dir_all(dir.join(dir_name)).unwrap();
    }
    let blue_block = server_block(
        site.nginx_port,
        &format!("http://127.0.0.1:{}", site.blue_port),
    );
    let green_block = server_block(
        site.nginx_port,
        &format!("http://127.0.0.1:{}", site.green_port),
    );
    std::fs::write(dir.join("sites-available/blue"), &blue_block).unwrap();
    std::fs::write(dir.join("sites-available/green"), &green_block).unwrap();
    let enabled = dir.join("sites-enabled/default");
    std::os::unix::fs::symlink(dir.join("sites-available/blue"), &enabled).unwrap();
    std::fs::write(
        dir.join("nginx.conf"),
        nginx_conf(&dir, &format!("include {}/sites-enabled/*;", dir.display())),
    )
    .unwrap();
    // The old script's app on blue (seed 002 runs compose services; any container will do).
    let _legacy = OldScriptContainer::start(&site, &format!("{}-legacy", site.app));
    site.restart_nginx();
    site.set("BLUEGREEN_NGINX_SWITCH_FILE", enabled.to_str().unwrap());
    site.set(
        "BLUEGREEN_NGINX_SWITCH_TEMPLATE",
        &format!("include {}/sites-available/{{color}};", dir.display()),
    );
    crate::support::wait_until(
        "nginx serves the old setup",
        std::time::Duration::from_secs(30),
        || site.served() == Some(("v1".into(), "blue".into())),
    );

    let load = Load::start(site.nginx_port, 4);
    site.deploy("v2").success();
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));
    site.deploy("v3").success();
    let report = load.finish();
    assert_eq!(site.served(), Some(("v3".into(), "blue".into())));
    assert_eq!(report.non_2xx, 0, "{report:?}");
    assert!(report.ok > 50, "{report:?}");
    // The color files are untouched; the link became a file naming the live color.
    assert_eq!(
        std::fs::read_to_string(dir.join("sites-available/blue")).unwrap(),
        blue_block
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("sites-available/green")).unwrap(),
        green_block
    );
    assert!(!std::fs::symlink_metadata(&enabled)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(&enabled).unwrap().trim(),
        format!("include {}/sites-available/blue;", dir.display())
    );
}

/// Seed 003: nginx in a container proxying to an `upstream`. Recipe: mount the switch file's
/// directory (not the file), `nginx_switch_template: upstream backend { server …:{port}; }`
/// included at `http` level, `nginx_test_command`/`nginx_reload_command` as the container runs
/// them (here the same nginx binary, started in a mount namespace like a container).
#[test]
fn seed_003_containerized_nginx_with_a_directory_mount() {
    let mut site = Site::new("seed003");
    let dir = site.dir.clone();
    std::fs::write(
        &site.switch_file,
        format!(
            "upstream backend {{ server 127.0.0.1:{}; }}\n",
            site.blue_port
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("nginx.conf"),
        nginx_conf(
            &dir,
            &format!(
                "include {}/conf.d/*.inc;\n{}",
                dir.display(),
                server_block(site.nginx_port, "http://backend")
            ),
        ),
    )
    .unwrap();
    // The old script's backend_blue, in place and serving.
    let _legacy = OldScriptContainer::start(&site, &format!("{}-backend_blue", site.app));
    let inside = dir.join("container-conf.d");
    std::fs::create_dir_all(&inside).unwrap();
    site.restart_nginx_like_a_container(&dir.join("conf.d"), &inside);
    site.set(
        "BLUEGREEN_NGINX_SWITCH_TEMPLATE",
        "upstream backend { server 127.0.0.1:{port}; }",
    );
    crate::support::wait_until(
        "nginx serves the old setup",
        std::time::Duration::from_secs(30),
        || site.served() == Some(("v1".into(), "blue".into())),
    );
    let load = Load::start(site.nginx_port, 4);
    site.deploy("v2").success();
    assert_eq!(site.served(), Some(("v2".into(), "green".into())));
    let second = site.deploy("v3");
    second.success();
    let report = load.finish();
    // Verified through the containerized nginx: the new color was shown to get the requests.
    assert!(
        second.stderr.contains("served by blue") || second.stderr.contains("blue received"),
        "{}",
        second.stderr
    );
    assert_eq!(site.served(), Some(("v3".into(), "blue".into())));
    assert_eq!(report.non_2xx, 0, "{report:?}");
    assert!(report.ok > 50, "{report:?}");
}
