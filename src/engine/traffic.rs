//! `traffic_switch: auto`: the zero-error switch this server supports, decided on the server
//! when the run connects. nftables moves traffic without an nginx reload (a reload makes old
//! workers close idle keep-alive client connections, and a client sending at that moment sees
//! a reset); it needs `nft` with privileges, a switch template that proxies to
//! `127.0.0.1:{port}` (a DNAT on the server can only move loopback traffic) and a free
//! `service_port`. Anything missing: the nginx switch, and the reason is said.

use anyhow::Result;

use crate::remote::{Host, Output};
use crate::server::command::{Script, ServerCommand};
use crate::settings::{Config, TrafficSwitch};

/// Prints `nft usable|unprivileged|absent`, then `listeners N` on the port `$1`.
pub const PROBE_SCRIPT: Script = Script {
    name: "bluegreen-switch-probe",
    text: include_str!("traffic/probe_switch.sh"),
};

/// The switch `auto` chose, and why, in words for the log, `plan` and `doctor`.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub switch: TrafficSwitch,
    pub reason: String,
}

impl Choice {
    pub fn line(&self) -> String {
        let name = match self.switch {
            TrafficSwitch::Nftables { .. } => "nftables",
            _ => "nginx",
        };
        format!("traffic_switch auto chose {name}: {}", self.reason)
    }
}

pub fn probe(service_port: u16) -> ServerCommand {
    ServerCommand::script(
        "find the zero-error traffic switch",
        &PROBE_SCRIPT,
        &[&service_port.to_string()],
    )
    .privileged()
}

/// Why the switch template rules nftables out (it must send nginx to `127.0.0.1:{port}`).
fn template_problem(template: &str) -> Option<&'static str> {
    let loopback = ["127.0.0.1:{port}", "localhost:{port}"]
        .iter()
        .any(|target| template.contains(target));
    if !loopback || template.contains("{color}") || template.contains("{service}") {
        return Some(
            "nginx_switch_template does not send nginx to 127.0.0.1:{port}, so a DNAT rule on \
             the server could not move its traffic",
        );
    }
    None
}

/// Decides from the settings and the probe's output (`probe`: `None` when the template or the
/// ports already rule nftables out, so the server was not asked).
pub fn decide(config: &Config, service_port: u16, probe: Option<&Output>) -> Choice {
    let nginx = |reason: String| Choice {
        switch: TrafficSwitch::Nginx,
        reason: format!("{reason}; each switch is an nginx reload"),
    };
    if let Some(problem) = template_problem(&config.nginx_switch_template) {
        return nginx(problem.to_owned());
    }
    if service_port == config.blue_port || service_port == config.green_port {
        return nginx(format!(
            "service_port {service_port} is also a color's port; set service_port to a free port \
             for the nftables switch"
        ));
    }
    let Some(output) = probe else {
        return nginx("the server was not asked".into());
    };
    let text = output.stdout.as_str();
    let says = |line: &str| text.lines().any(|l| l.trim() == line);
    if !output.success() || says("nft unprivileged") {
        return nginx(
            "nft needs root, and the SSH user is not root and `sudo -n` was refused".into(),
        );
    }
    if says("nft absent") {
        return nginx(
            "nft is not installed on the server (`apt-get install nftables` gives the \
             zero-error switch)"
                .into(),
        );
    }
    if !says("nft usable") {
        return nginx(format!(
            "the server's answer was not understood: {}",
            output.tail(2)
        ));
    }
    if !says("listeners 0") {
        return nginx(format!(
            "port {service_port} (service_port) is in use on the server; set service_port to a \
             free port for the nftables switch"
        ));
    }
    Choice {
        switch: TrafficSwitch::Nftables {
            service_port,
            owns_switch_file: true,
        },
        reason: format!(
            "nft works on the server: nginx is pointed once at 127.0.0.1:{service_port}, and \
             every switch replaces one DNAT rule, with no nginx reload"
        ),
    }
}

/// Resolves `auto` with one server command; other settings need nothing (`None`).
pub async fn resolve<H: Host>(host: &H, config: &Config) -> Result<Option<Choice>> {
    let output = match probe_command(config) {
        Some(command) => Some(host.run(&command).await?),
        None => None,
    };
    Ok(choose(config, output.as_ref()))
}

/// [`resolve`], unless `later` (the deploy lock's holder asks instead: [`probe_command`]).
pub async fn resolve_unless<H: Host>(
    later: bool,
    host: &H,
    config: &Config,
) -> Result<Option<Choice>> {
    match later {
        true => Ok(None),
        false => resolve(host, config).await,
    }
}

/// The command that asks the server, when `auto` needs to ask (the settings do not already
/// rule nftables out).
pub fn probe_command(config: &Config) -> Option<ServerCommand> {
    let TrafficSwitch::Auto { service_port } = config.traffic_switch else {
        return None;
    };
    let ruled_out = template_problem(&config.nginx_switch_template).is_some()
        || service_port == config.blue_port
        || service_port == config.green_port;
    (!ruled_out).then(|| probe(service_port))
}

/// What `auto` chooses given the probe's answer (`None`: not asked); `None` for other settings.
pub fn choose(config: &Config, probe: Option<&Output>) -> Option<Choice> {
    let TrafficSwitch::Auto { service_port } = config.traffic_switch else {
        return None;
    };
    Some(decide(config, service_port, probe))
}

/// `config` with `choice` made (a copy; `None` when there was nothing to choose), the choice
/// said in the log.
pub fn resolved(
    config: &Config,
    choice: Option<&Choice>,
    printer: &crate::printer::Printer,
) -> Option<Config> {
    let choice = choice?;
    printer.info(&choice.line());
    let mut config = config.clone();
    config.traffic_switch = choice.switch;
    config.traffic_switch_choice = Some(choice.line());
    Some(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::config;

    /// The real probe script, here (as root, where `nft list tables` works): nft is usable
    /// and the port this test listens on has one listener, a free port none; on a server
    /// without `nft` and `ss`, nft is absent and the listener is counted from /proc.
    #[test]
    fn the_probe_script_finds_nft_and_the_listeners() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let held = listener.local_addr().unwrap().port();
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let run = |port: u16, path: Option<&std::path::Path>| {
            crate::testing::run_here(&probe(port), path)
        };
        assert_eq!(run(held, None), "nft usable\nlisteners 1\n");
        assert_eq!(run(free, None), "nft usable\nlisteners 0\n");
        let bare = crate::testing::path_with_only(&["sh", "awk"]);
        assert_eq!(run(held, Some(bare.path())), "nft absent\nlisteners 1\n");
        assert_eq!(run(free, Some(bare.path())), "nft absent\nlisteners 0\n");
    }

    fn answer(code: i32, stdout: &str) -> Output {
        Output {
            code: Some(code),
            stdout: stdout.into(),
            stderr: "sudo: a password is required".into(),
        }
    }

    #[test]
    fn picks_nftables_only_where_it_can_move_the_traffic() {
        let plain = config(&[("image", "reg/api")]);
        let usable = answer(0, "nft usable\nlisteners 0\n");
        let chosen = decide(&plain, 8080, Some(&usable));
        assert_eq!(
            chosen.switch,
            TrafficSwitch::Nftables {
                service_port: 8080,
                owns_switch_file: true
            }
        );
        assert!(chosen
            .line()
            .starts_with("traffic_switch auto chose nftables: nft works"));

        let cases = [
            (
                answer(0, "nft absent\nlisteners 0\n"),
                "nft is not installed",
            ),
            (
                answer(0, "nft unprivileged\nlisteners 0\n"),
                "nft needs root",
            ),
            (answer(1, ""), "`sudo -n` was refused"),
            (
                answer(0, "nft usable\nlisteners 1\n"),
                "port 8080 (service_port) is in use",
            ),
        ];
        for (output, reason) in cases {
            let chosen = decide(&plain, 8080, Some(&output));
            assert_eq!(chosen.switch, TrafficSwitch::Nginx, "{reason}");
            assert!(chosen.reason.contains(reason), "{}", chosen.reason);
            assert!(chosen
                .line()
                .starts_with("traffic_switch auto chose nginx: "));
        }
    }

    #[test]
    fn a_template_or_port_that_rules_nftables_out_needs_no_server_question() {
        let upstream = config(&[
            ("image", "reg/api"),
            ("nginx_switch_template", "set $backend {color};"),
        ]);
        let chosen = decide(&upstream, 8080, None);
        assert_eq!(chosen.switch, TrafficSwitch::Nginx);
        assert!(chosen
            .reason
            .contains("does not send nginx to 127.0.0.1:{port}"));
        let same_port = config(&[("image", "reg/api"), ("blue_port", "8080")]);
        assert!(decide(&same_port, 8080, None)
            .reason
            .contains("service_port 8080 is also a color's port"));
    }
}
