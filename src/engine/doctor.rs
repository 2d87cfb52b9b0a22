//! `bluegreen doctor`: read-only checks of the server and the settings, one ✓/✗ line each with
//! the fix. Facts come from one server script ([`crate::server::doctor`]); judging them is pure.

use std::collections::BTreeMap;

use anyhow::Result;

use super::Ctx;
use crate::color::Color;
use crate::failure::Failure;
use crate::remote::Host;
use crate::server::command::ServerCommand;
use crate::server::doctor as facts;
use crate::server::ports::{self, PortHolder};
use crate::settings::{Config, Mode, TrafficSwitch};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Pass,
    Fail,
    /// Works, but something better is available: the line says what.
    Advice,
}

#[derive(Debug, PartialEq)]
pub struct Check {
    pub mark: Mark,
    pub what: String,
    pub fix: Option<String>,
}

impl Check {
    fn pass(what: impl Into<String>) -> Check {
        Check {
            mark: Mark::Pass,
            what: what.into(),
            fix: None,
        }
    }

    fn fail(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            mark: Mark::Fail,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }

    fn advice(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            mark: Mark::Advice,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn line(&self) -> String {
        let mark = match self.mark {
            Mark::Pass => "✓",
            Mark::Fail => "✗",
            Mark::Advice => "!",
        };
        match &self.fix {
            Some(fix) => format!("{mark} {} — {fix}", self.what),
            None => format!("{mark} {}", self.what),
        }
    }
}

/// Runs every check, prints one line each, and fails (exit 1) when any check failed.
pub async fn doctor<H: Host>(ctx: &Ctx<'_, H>) -> Result<()> {
    verdict(&run_checks(ctx).await?)
}

/// Every check, each printed as one line as it is judged.
pub async fn run_checks<H: Host>(ctx: &Ctx<'_, H>) -> Result<Vec<Check>> {
    let config = ctx.config;
    let mut checks = vec![Check::pass(format!(
        "SSH login as {}@{}:{} with the host key verified",
        config.username, config.host, config.port
    ))];
    if ctx.host.sudo() {
        let sudo = ServerCommand::new("check passwordless sudo", &["sudo", "-n", "true"]);
        checks.push(match ctx.host.run(&sudo).await {
            Ok(output) if output.success() => Check::pass("passwordless sudo works"),
            _ => Check::fail(
                "sudo asks for a password",
                "give the SSH user passwordless sudo (`NOPASSWD:`), or set sudo: false when it \
                 may run docker and nginx itself",
            ),
        });
    }
    checks.extend(local_checks(config));
    let (dump, version) = facts::nginx_variants(&config.nginx_test_command);
    let read = facts::read(
        &config.nginx_switch_file,
        &config.state_dir,
        &dump,
        &version,
    );
    let holders = ports::holders(
        &ports::nginx_address(config),
        &[config.blue_port, config.green_port],
    );
    // Process mode: a color's own process holds its port, which is no problem.
    let processes = async {
        match &config.mode {
            Mode::Process(_) => {
                let status = crate::server::process::status(&config.state_dir);
                Some(ctx.host.run(&status).await)
            }
            _ => None,
        }
    };
    // One service_port per app: another app's DNAT rule for it, or a listener.
    let users = async {
        match super::switch::service_port_users_command(config) {
            Some(command) => Some(ctx.host.run(&command).await),
            None => None,
        }
    };
    let (output, holders, processes, users) = tokio::join!(
        ctx.host.run(&read),
        ctx.host.run(&holders),
        processes,
        users
    );
    let mut sections = facts::sections(&output?.stdout);
    sections.insert("ports".into(), holders?.stdout);
    if let Some(users) = users {
        sections.insert("service_port".into(), users?.stdout);
    }
    if let Some(processes) = processes {
        sections.insert("processes".into(), processes?.stdout);
    }
    checks.extend(evaluate(config, &sections));
    for check in &checks {
        ctx.printer.stdout(&check.line());
    }
    Ok(checks)
}

/// Exit 1 when any check failed, counting them.
pub fn verdict(checks: &[Check]) -> Result<()> {
    let failed = checks.iter().filter(|c| c.mark == Mark::Fail).count();
    if failed > 0 {
        return Err(Failure::deploy(format!(
            "doctor found {failed} problem{} (✗ above, each with its fix); nothing was changed",
            if failed == 1 { "" } else { "s" }
        ))
        .into());
    }
    Ok(())
}

/// What can be checked here, before any build: the Dockerfile a `ship` needs.
fn local_checks(config: &Config) -> Vec<Check> {
    if let Mode::Process(_) = &config.mode {
        return vec![match crate::build::artifact::local_release(config) {
            Ok(Some(release)) => Check::pass(format!(
                "artifact {} is here ({})",
                release.file_name,
                release.reference()
            )),
            Ok(None) => Check::pass("artifact: not needed"),
            Err(error) => Check::advice(
                format!("{error:#}"),
                "`deploy` uploads it; `ship` builds it first",
            ),
        }];
    }
    let dockerfile = config.context.join(&config.dockerfile);
    if dockerfile.is_file() {
        vec![Check::pass(format!("{} is present", dockerfile.display()))]
    } else {
        vec![Check::advice(
            format!("no {} here", dockerfile.display()),
            "`ship` and `build` need one (set context/dockerfile, or run `bluegreen init`); \
             `deploy --image-ref` does not",
        )]
    }
}

/// Judges the facts the server script printed.
pub fn evaluate(config: &Config, sections: &BTreeMap<String, String>) -> Vec<Check> {
    let section = |name: &str| sections.get(name).map(String::as_str).unwrap_or("");
    let mut checks = vec![match &config.mode {
        Mode::Process(mode) => java(&mode.run_command, section("java")),
        _ => docker(section("docker")),
    }];
    if matches!(config.mode, Mode::Compose(_)) {
        checks.push(compose(section("compose")));
    }
    let nginx_config = section("nginx_config");
    checks.push(switch_file_included(
        config,
        section("switch"),
        nginx_config,
    ));
    checks.extend(proxy_pass(config, nginx_config));
    checks.push(single_file_mounts(
        config,
        section("switch"),
        section("mounts"),
    ));
    let own_processes = crate::server::process::parse_status(section("processes"));
    for color in Color::BOTH {
        match own_processes.iter().find(|p| p.color == color && p.running) {
            Some(own) => checks.push(Check::pass(format!(
                "{color} port {}: {color}'s process (pid {}), started by bluegreen",
                config.port_of(color),
                own.pid
            ))),
            None => checks.push(port_holder(config, color, section("ports"))),
        }
    }
    checks.extend(nginx_and_switch(
        config,
        section("nginx_version"),
        nginx_config,
        section("nft"),
    ));
    checks.extend(
        sections
            .get("service_port")
            .map(|users| service_port(config, users)),
    );
    checks.push(disk(config, section("disk")));
    checks
}

/// One service_port per app: what else uses it, and a free one to take instead.
fn service_port(config: &Config, users: &str) -> Check {
    let port = super::switch::service_port(config).unwrap_or_default();
    match crate::server::nft::conflict(port, users) {
        None => Check::pass(format!(
            "service_port {port}: no other nat rule or listener uses it"
        )),
        Some((cause, fix)) => Check::fail(cause, fix),
    }
}

fn docker(text: &str) -> Check {
    let first = text.lines().next().unwrap_or("").trim();
    if first.starts_with(|c: char| c.is_ascii_digit()) {
        Check::pass(format!("Docker Engine {first}"))
    } else {
        Check::fail(
            format!("docker does not answer: {}", one_line(text)),
            "install Docker Engine and start it; give the SSH user its socket (sudo, or the \
             docker group)",
        )
    }
}

/// Process mode needs no Docker; a `java -jar` run_command needs java for the SSH user.
fn java(run_command: &str, text: &str) -> Check {
    if run_command.split_whitespace().next() != Some("java") {
        return Check::pass(
            "process mode: no Docker needed (run_command does not start with java)",
        );
    }
    let first = one_line(text);
    if first.contains("version") {
        Check::pass(format!("process mode, {first}"))
    } else {
        Check::fail(
            format!("java does not run for the SSH user: {first}"),
            "install a JRE on the server (e.g. `apt-get install openjdk-17-jre-headless`) so \
             run_command can start the jar",
        )
    }
}

fn compose(text: &str) -> Check {
    let version = text.trim();
    if version.is_empty() || version == "none" {
        Check::fail(
            "neither `docker compose` nor `docker-compose` is installed",
            "install the Docker Compose plugin (compose_file is set, so compose mode needs it)",
        )
    } else {
        Check::pass(format!("Docker Compose {version}"))
    }
}

fn switch_file_included(config: &Config, switch: &str, nginx_config: &str) -> Check {
    let file = &config.nginx_switch_file;
    if matches!(
        config.traffic_switch,
        TrafficSwitch::Nftables {
            owns_switch_file: false,
            ..
        }
    ) {
        return Check::pass("traffic_switch: nftables: no switch file is needed");
    }
    if !nginx_config.contains("syntax is ok") && !nginx_config.contains("# configuration file") {
        return Check::fail(
            format!(
                "nginx could not show its configuration: {}",
                one_line(nginx_config)
            ),
            "check nginx_test_command (doctor runs it with -T instead of -t)",
        );
    }
    let target = switch
        .lines()
        .find_map(|l| l.strip_prefix("symlink "))
        .unwrap_or(file);
    let listed = |path: &str| nginx_config.contains(&format!("# configuration file {path}:"));
    if listed(file) || listed(target) {
        return Check::pass(format!("nginx includes the switch file {file}"));
    }
    let exists = switch.lines().any(|l| l == "exists");
    let covering_glob = include_patterns(nginx_config)
        .into_iter()
        .find(|pattern| pattern.contains('*') && glob_matches(pattern, file));
    match (exists, covering_glob) {
        (false, Some(pattern)) => Check::pass(format!(
            "nginx includes {pattern}, where the first deploy writes {file}"
        )),
        _ => Check::fail(
            format!("nginx does not include the switch file {file}"),
            format!(
                "add `include {file};` in the server block that proxies to the app \
                 (`bluegreen init` prints the snippet), or set nginx_switch_file to the file it \
                 includes"
            ),
        ),
    }
}

fn proxy_pass(config: &Config, nginx_config: &str) -> Option<Check> {
    let wanted = match config.traffic_switch {
        TrafficSwitch::Nftables {
            service_port,
            owns_switch_file: false,
        } => format!("127.0.0.1:{service_port}"),
        _ => {
            let variable = config
                .nginx_switch_template
                .strip_prefix("set ")?
                .split_whitespace()
                .next()?
                .to_owned();
            variable
        }
    };
    let uses = nginx_config.lines().any(|line| {
        let line = line.trim();
        line.starts_with("proxy_pass") && line.contains(&wanted)
    });
    Some(if uses {
        Check::pass(format!("proxy_pass uses {wanted}"))
    } else {
        Check::fail(
            format!("no proxy_pass uses {wanted}"),
            format!("write `proxy_pass http://{wanted};` (or `proxy_pass {wanted};` for a variable) in the location that serves the app"),
        )
    })
}

fn single_file_mounts(config: &Config, switch: &str, mounts: &str) -> Check {
    let file = &config.nginx_switch_file;
    let target = switch
        .lines()
        .find_map(|l| l.strip_prefix("symlink "))
        .unwrap_or(file);
    for line in mounts.lines() {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or("").trim_start_matches('/');
        for mount in words {
            let Some((source, destination)) = mount.split_once('=') else {
                continue;
            };
            if source == file || source == target {
                let directory = std::path::Path::new(source)
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                return Check::fail(
                    format!(
                        "container {name} mounts {source} as a single file ({destination}): a \
                         switch replaces the file, which that container never sees"
                    ),
                    format!("mount the directory {directory} instead of the file"),
                );
            }
        }
    }
    Check::pass("no container mounts the switch file as a single file")
}

fn port_holder(config: &Config, color: Color, ports: &str) -> Check {
    let port = config.port_of(color);
    let setting = format!("{color}_port");
    let holder = ports::parse(ports, port);
    match &holder {
        PortHolder::Free => Check::pass(format!("{color} port {port} is free")),
        held if held.started_by(&config.app_name) => Check::pass(format!(
            "{color} port {port}: {}, started by bluegreen",
            held.describe()
        )),
        PortHolder::Foreign { .. } => Check::fail(
            format!(
                "{color} port {port} is held by {}, which nginx (at {}) does not reach: not this app",
                holder.describe(),
                ports::nginx_address(config)
            ),
            format!(
                "a deploy refuses and never stops it: move it to another port or choose another \
                 {setting}"
            ),
        ),
        PortHolder::Unknown => Check::advice(
            format!("{color} port {port}: could not tell what holds it"),
            "check with `ss -ltnp` on the server",
        ),
        held => Check::fail(
            format!(
                "{color} port {port} is held by {}, not started by bluegreen",
                held.describe()
            ),
            format!(
                "a deploy keeps it serving while it is the live color, then stops it; on the \
                 idle color it refuses: free it (`{}`) or choose another {setting}",
                held.freeing_command().unwrap_or_default()
            ),
        ),
    }
}

/// nginx's version, and which switch gives zero connection errors on this server.
fn nginx_and_switch(config: &Config, version: &str, nginx_config: &str, nft: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    let version = version
        .split("nginx/")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("")
        .to_owned();
    let nft_usable = nft.trim() == "usable";
    if version.is_empty() {
        checks.push(Check::advice(
            "nginx did not say its version",
            "check nginx_test_command",
        ));
    } else {
        checks.push(Check::pass(format!("nginx {version}")));
    }
    if let Some(choice) = &config.traffic_switch_choice {
        checks.push(Check::pass(choice.clone()));
    }
    match config.traffic_switch {
        TrafficSwitch::Nftables { .. } if !nft_usable => checks.push(Check::fail(
            format!("traffic_switch: nftables, but nft is {}", nft.trim()),
            "install nftables and deploy as root or with sudo, or use traffic_switch: nginx",
        )),
        TrafficSwitch::Nftables { .. } => checks.push(Check::pass(
            "traffic_switch: nftables (one DNAT rule, no reload: zero connection errors)",
        )),
        TrafficSwitch::Nginx | TrafficSwitch::Auto { .. } => {
            let min_timeout = nginx_config.contains("keepalive_min_timeout");
            let alternative = if nft_usable {
                "traffic_switch: nftables or auto (nft works here) moves traffic without a reload"
            } else {
                "traffic_switch: nftables or auto (needs nft and root) moves traffic without a reload"
            };
            if supports_keepalive_min_timeout(&version) && !min_timeout {
                checks.push(Check::advice(
                    "a reload closes idle keep-alive client connections (a client may see a reset)",
                    format!("add `keepalive_min_timeout 5s;` to the http block (nginx {version} has it; old workers then serve up to 5 s longer, and the drain waits for them), or {alternative}"),
                ));
            } else if !min_timeout {
                checks.push(Check::advice(
                    format!("nginx {version} closes idle keep-alive client connections on each reload (a client may see a reset)"),
                    alternative.to_owned(),
                ));
            }
        }
    }
    checks
}

fn supports_keepalive_min_timeout(version: &str) -> bool {
    let parts: Vec<u32> = version.split('.').filter_map(|p| p.parse().ok()).collect();
    parts.len() >= 3 && (parts[0], parts[1], parts[2]) >= (1, 27, 4)
}

fn disk(config: &Config, df: &str) -> Check {
    let available_kib = df
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse::<u64>().ok());
    match available_kib {
        Some(kib) if kib < 512 * 1024 => Check::fail(
            format!(
                "only {} MiB free where {} lives",
                kib / 1024,
                config.state_dir
            ),
            "free disk space (e.g. `docker image prune`): pulls and the state need room",
        ),
        Some(kib) => Check::pass(format!(
            "{:.1} GiB free where {} lives",
            kib as f64 / 1024.0 / 1024.0,
            config.state_dir
        )),
        None => Check::advice("free disk space unknown", "check with `df -h`"),
    }
}

fn include_patterns(nginx_config: &str) -> Vec<String> {
    nginx_config
        .lines()
        .filter_map(|line| line.trim().strip_prefix("include "))
        .map(|rest| rest.trim_end_matches(';').trim().to_owned())
        .collect()
}

/// `*` matches within one path segment, as nginx's glob does.
fn glob_matches(pattern: &str, path: &str) -> bool {
    fn matches(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                matches(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && matches(p, &s[1..]))
            }
            (Some(a), Some(b)) if a == b => matches(&p[1..], &s[1..]),
            _ => false,
        }
    }
    matches(pattern.as_bytes(), path.as_bytes())
}

fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output");
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::testing::config(&[("image", "org/app")])
    }

    fn facts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn healthy_server(config: &Config) -> BTreeMap<String, String> {
        facts(&[
            ("docker", "24.0.7\n"),
            ("switch", "exists\nwritable\n"),
            (
                "nginx_config",
                &format!(
                    "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n\
                     # configuration file /etc/nginx/nginx.conf:\n\
                     include /etc/nginx/conf.d/*.inc;\n  proxy_pass $service_url;\n\
                     # configuration file {}:\nset $service_url http://127.0.0.1:8081;\n",
                    config.nginx_switch_file
                ),
            ),
            ("nginx_version", "nginx version: nginx/1.22.1\n"),
            ("mounts", "/web /srv/html=/usr/share/nginx/html\n"),
            (
                "ports",
                &format!(
                    "8081 container {0}-blue repo@sha256:ab {0}\n8082 free\n",
                    config.app_name
                ),
            ),
            ("disk", "/dev/vda 100 50 20971520 10% /\n"),
            ("nft", "absent\n"),
        ])
    }

    fn marks(checks: &[Check]) -> Vec<(Mark, String)> {
        checks.iter().map(|c| (c.mark, c.line())).collect()
    }

    #[test]
    fn a_ready_server_passes_with_one_piece_of_advice() {
        let config = config();
        let checks = evaluate(&config, &healthy_server(&config));
        let failed: Vec<_> = checks.iter().filter(|c| c.mark == Mark::Fail).collect();
        assert!(failed.is_empty(), "{:?}", marks(&checks));
        let lines: Vec<String> = checks.iter().map(Check::line).collect();
        assert!(
            lines.contains(&"✓ Docker Engine 24.0.7".to_owned()),
            "{lines:?}"
        );
        assert!(lines
            .iter()
            .any(|l| l.starts_with("✓ nginx includes the switch file")));
        assert!(lines.contains(&"✓ proxy_pass uses $service_url".to_owned()));
        assert!(lines.contains(&"✓ green port 8082 is free".to_owned()));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("! nginx 1.22.1 closes idle keep-alive")));
    }

    #[test]
    fn process_mode_checks_java_and_knows_its_own_processes() {
        let config = crate::testing::config(&[
            ("app_name", "shop"),
            ("run_command", "java -jar {artifact} --server.port={port}"),
        ]);
        let mut server = healthy_server(&config);
        server.insert("docker".into(), "docker: not found\n".into());
        server.insert("ports".into(), "8081 process java 4242\n8082 free\n".into());
        server.insert(
            "processes".into(),
            "blue 4241 running 0123abcd4567\n".into(),
        );
        server.insert(
            "java".into(),
            "openjdk version \"17.0.13\" 2024-10-15\n".into(),
        );
        let lines: Vec<String> = evaluate(&config, &server).iter().map(Check::line).collect();
        assert!(
            lines.contains(&"✓ process mode, openjdk version \"17.0.13\" 2024-10-15".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("✓ blue port 8081: blue's process (pid 4241)")),
            "{lines:?}"
        );
        server.insert("java".into(), "sh: 1: java: not found\n".into());
        let lines: Vec<String> = evaluate(&config, &server).iter().map(Check::line).collect();
        assert!(
            lines
                .iter()
                .any(|l| l
                    .starts_with("✗ java does not run for the SSH user: sh: 1: java: not found")),
            "{lines:?}"
        );
    }

    #[test]
    fn each_problem_is_named_with_its_fix() {
        let config = config();
        let mut server = healthy_server(&config);
        server.insert(
            "docker".into(),
            "permission denied while trying to connect\n".into(),
        );
        server.insert(
            "nginx_config".into(),
            "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n\
             # configuration file /etc/nginx/nginx.conf:\n  proxy_pass http://app;\n"
                .into(),
        );
        server.insert(
            "mounts".into(),
            format!(
                "/nginx {}=/etc/nginx/conf.d/x.inc\n",
                config.nginx_switch_file
            ),
        );
        server.insert(
            "ports".into(),
            "8081 container app-blue old/app:prod \n8082 process java 4242\n".into(),
        );
        server.insert("disk".into(), "/dev/vda 100 50 1024 99% /\n".into());
        let lines: Vec<String> = evaluate(&config, &server).iter().map(Check::line).collect();
        let failed: Vec<&String> = lines.iter().filter(|l| l.starts_with('✗')).collect();
        assert_eq!(failed.len(), 7, "{lines:#?}");
        assert!(failed[0].contains("docker does not answer: permission denied"));
        assert!(failed[1].contains("nginx does not include the switch file"));
        assert!(failed[1].contains(&format!("include {};", config.nginx_switch_file)));
        assert!(failed[2].contains("no proxy_pass uses $service_url"));
        assert!(failed[3].contains("mounts") && failed[3].contains("mount the directory"));
        assert!(failed[4].contains("container app-blue (old/app:prod), not started by bluegreen"));
        assert!(failed[4].contains("`docker stop app-blue`"));
        assert!(failed[5].contains("process java (pid 4242), not started by bluegreen"));
        assert!(failed[5].contains("`kill 4242`"));
        assert!(failed[6].contains("only 1 MiB free"));
    }

    #[test]
    fn a_glob_include_covers_a_switch_file_not_yet_written() {
        let mut config = config();
        config.nginx_switch_file = "/etc/nginx/conf.d/service-url.inc".into();
        let mut server = healthy_server(&config);
        server.insert("switch".into(), "missing\nwritable\n".into());
        server.insert(
            "nginx_config".into(),
            "nginx: the configuration file x syntax is ok\ninclude /etc/nginx/conf.d/*.inc;\nproxy_pass $service_url;\n".into(),
        );
        let lines: Vec<String> = evaluate(&config, &server).iter().map(Check::line).collect();
        assert!(
            lines.contains(&"✓ nginx includes /etc/nginx/conf.d/*.inc, where the first deploy writes /etc/nginx/conf.d/service-url.inc".to_owned()),
            "{lines:#?}"
        );
        assert!(!glob_matches("/etc/*.inc", "/etc/nginx/x.inc"));
    }

    #[test]
    fn new_nginx_is_told_the_directive_that_keeps_connections() {
        let config = config();
        let mut server = healthy_server(&config);
        server.insert(
            "nginx_version".into(),
            "nginx version: nginx/1.27.4\n".into(),
        );
        server.insert("nft".into(), "usable\n".into());
        let lines: Vec<String> = evaluate(&config, &server).iter().map(Check::line).collect();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("add `keepalive_min_timeout 5s;`")
                    && l.contains("nft works here")),
            "{lines:#?}"
        );
    }
}
