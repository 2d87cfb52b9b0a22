//! What listens on the colors' ports: nothing, a container (named, with its image and whether
//! bluegreen started it), a plain process (name and pid) on an address nginx reaches, or a
//! foreign listener that only binds an address nginx never reaches (127.0.0.3, say). Migration
//! from hand-made scripts depends on telling these apart before anything is touched: only
//! what nginx reaches can be the old app.

use super::command::{Script, ServerCommand};

/// `$1`: the local addresses nginx reaches ([`reachable_addresses`]); then one line per port
/// argument: `PORT free`, `PORT container NAME IMAGE APP-LABEL`, `PORT process COMM PID` or
/// `PORT foreign ADDRESS COMM PID` (listening, but only where nginx does not connect). Asks
/// `ss` (the kernel filters by port), else reads the socket tables in /proc.
pub const PORTS_SCRIPT: Script = Script {
    name: "bluegreen-port-holders",
    text: include_str!("ports/port_holders.sh"),
};

/// `nginx_address`: the host nginx connects to ([`nginx_address`]).
pub fn holders(nginx_address: &str, ports: &[u16]) -> ServerCommand {
    let reach = reachable_addresses(nginx_address).join(" ");
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let mut args = vec![reach.as_str()];
    args.extend(ports.iter().map(String::as_str));
    ServerCommand::script("find what holds the color ports", &PORTS_SCRIPT, &args).privileged()
}

/// The host nginx connects to for a color: the one in the switch template before `:{port}`
/// (`http://127.0.0.1:{port}` → `127.0.0.1`, `[::1]:{port}` → `[::1]`); 127.0.0.1 when the
/// template names none. The nftables switch always reaches the colors at 127.0.0.1.
pub fn nginx_address(config: &crate::settings::Config) -> String {
    if matches!(
        config.traffic_switch,
        crate::settings::TrafficSwitch::Nftables { .. }
    ) {
        return "127.0.0.1".to_owned();
    }
    let template = &config.nginx_switch_template;
    let Some(end) = template.find(":{port}") else {
        return "127.0.0.1".to_owned();
    };
    let before = &template[..end];
    let start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || ".-_[]:".contains(c)))
        .map_or(0, |at| at + 1);
    match &before[start..] {
        "" => "127.0.0.1".to_owned(),
        host => host.to_owned(),
    }
}

/// Where a listener can bind for nginx's connections to `host` to reach it, as `ss` writes
/// local addresses: the host itself, the wildcards of its family (`*` is a dual-stack IPv6
/// socket), and an IPv4 host's mapped form.
pub fn reachable_addresses(host: &str) -> Vec<String> {
    let v4 = |a: &str| {
        vec![
            a.to_owned(),
            "0.0.0.0".into(),
            "*".into(),
            format!("[::ffff:{a}]"),
        ]
    };
    match host {
        "localhost" => {
            let mut all = v4("127.0.0.1");
            all.extend(["[::1]".into(), "[::]".into()]);
            all
        }
        host if host.parse::<std::net::Ipv4Addr>().is_ok() => v4(host),
        host if host.starts_with('[') => vec![host.to_owned(), "[::]".into(), "*".into()],
        host => vec![host.to_owned(), "0.0.0.0".into(), "*".into(), "[::]".into()],
    }
}

/// SIGTERM, then SIGKILL after `$2` tenths of a second if it still runs.
pub const STOP_PROCESS_SCRIPT: Script = Script {
    name: "bluegreen-stop-old-process",
    text: include_str!("ports/stop_old_process.sh"),
};

/// Stops a process an earlier setup started (the old app on the live port).
pub fn stop_process(pid: u32, grace: std::time::Duration) -> ServerCommand {
    let tenths = (grace.as_millis() / 100).max(1).to_string();
    ServerCommand::script(
        format!("stop process {pid}, started by an earlier setup"),
        &STOP_PROCESS_SCRIPT,
        &[&pid.to_string(), &tenths],
    )
    .privileged()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortHolder {
    Free,
    Container {
        name: String,
        image: String,
        /// The `bluegreen.app` label it carries (empty: not started by bluegreen).
        app: String,
    },
    Process {
        name: String,
        pid: u32,
    },
    /// Listening only on an address nginx does not reach (`address`): not this app's old
    /// color, whatever it is; never adopted, never stopped.
    Foreign {
        address: String,
        name: String,
        pid: u32,
    },
    /// Listening, but what holds it could not be read.
    Unknown,
}

impl PortHolder {
    /// For messages: "container shop-api (myorg/shop:prod)", "process java (pid 4242)".
    pub fn describe(&self) -> String {
        match self {
            PortHolder::Free => "nothing".into(),
            PortHolder::Container { name, image, .. } => format!("container {name} ({image})"),
            PortHolder::Process { name, pid } => format!("process {name} (pid {pid})"),
            PortHolder::Foreign { address, name, pid } if *pid > 0 => {
                format!("process {name} (pid {pid}) listening only on {address}")
            }
            PortHolder::Foreign { address, .. } => {
                format!("an unknown process listening only on {address}")
            }
            PortHolder::Unknown => "an unknown process".into(),
        }
    }

    /// The command that frees the port, for messages.
    pub fn freeing_command(&self) -> Option<String> {
        match self {
            PortHolder::Container { name, .. } => Some(format!("docker stop {name}")),
            PortHolder::Process { pid, .. } if *pid > 0 => Some(format!("kill {pid}")),
            _ => None,
        }
    }

    pub fn started_by(&self, app: &str) -> bool {
        matches!(self, PortHolder::Container { app: label, .. } if label == app)
    }
}

/// The holder of `port` in the script's output (`Unknown` when the line is missing).
pub fn parse(output: &str, port: u16) -> PortHolder {
    let Some(line) = output
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&port.to_string()))
    else {
        return PortHolder::Unknown;
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [_, "free"] => PortHolder::Free,
        [_, "container", name, image, rest @ ..] => PortHolder::Container {
            name: (*name).to_owned(),
            image: (*image).to_owned(),
            app: rest.first().map(|s| (*s).to_owned()).unwrap_or_default(),
        },
        [_, "foreign", address, name, pid] => PortHolder::Foreign {
            address: (*address).to_owned(),
            name: (*name).to_owned(),
            pid: pid.parse().unwrap_or(0),
        },
        [_, "process", name, pid] => match pid.parse() {
            Ok(0) | Err(_) => PortHolder::Unknown,
            Ok(pid) => PortHolder::Process {
                name: (*name).to_owned(),
                pid,
            },
        },
        _ => PortHolder::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_parsed() {
        let output = "8081 container shop-blue myorg/shop:prod shop\n8082 process java 4242\n8083 free\n8084 process unknown 0\n";
        assert_eq!(
            parse(output, 8081),
            PortHolder::Container {
                name: "shop-blue".into(),
                image: "myorg/shop:prod".into(),
                app: "shop".into()
            }
        );
        assert!(parse(output, 8081).started_by("shop"));
        assert_eq!(
            parse(output, 8082),
            PortHolder::Process {
                name: "java".into(),
                pid: 4242
            }
        );
        assert_eq!(parse(output, 8083), PortHolder::Free);
        assert_eq!(parse(output, 8084), PortHolder::Unknown);
        assert_eq!(parse(output, 9999), PortHolder::Unknown);
        assert_eq!(
            parse(output, 8082).freeing_command().as_deref(),
            Some("kill 4242")
        );
        assert_eq!(
            parse("8081 container old myorg/shop:1 \n", 8081).describe(),
            "container old (myorg/shop:1)"
        );
    }

    #[test]
    fn the_command_is_exact() {
        assert_eq!(
            holders("127.0.0.1", &[8081, 8082]).render(true),
            "sudo -n sh -c <bluegreen-port-holders> bluegreen-port-holders \
             '127.0.0.1 0.0.0.0 * [::ffff:127.0.0.1]' 8081 8082"
        );
        let config = |template: &str| {
            crate::testing::config(&[("image", "r/a"), ("nginx_switch_template", template)])
        };
        for (template, host) in [
            ("set $service_url http://127.0.0.1:{port};", "127.0.0.1"),
            ("upstream app { server [::1]:{port}; }", "[::1]"),
            ("proxy_pass http://localhost:{port};", "localhost"),
            ("proxy_pass http://app.internal:{port};", "app.internal"),
            ("set $p {port};", "127.0.0.1"),
        ] {
            assert_eq!(nginx_address(&config(template)), host, "{template}");
        }
        assert_eq!(reachable_addresses("[::1]"), ["[::1]", "[::]", "*"]);
    }

    /// The script itself, on this machine: a port this test listens on is held by this
    /// process, a port nobody listens on is free; with `ss` and without it (from /proc).
    #[test]
    fn the_script_finds_the_process_listening() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let held = listener.local_addr().unwrap().port();
        let free = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let without_ss = crate::testing::path_with_only(&[
            "sh", "awk", "cat", "find", "head", "tr", "grep", "sed",
        ]);
        for path in [None, Some(without_ss.path())] {
            let stdout = crate::testing::run_here(&holders("127.0.0.1", &[held, free]), path);
            assert!(
                matches!(parse(&stdout, held), PortHolder::Process { pid, .. } if pid == std::process::id()),
                "PATH {path:?}: {stdout}"
            );
            assert_eq!(parse(&stdout, free), PortHolder::Free, "{stdout}");
        }
    }

    /// A listener only on 127.0.0.3 is foreign (nginx connects to 127.0.0.1); one on
    /// 127.0.0.3 and on 127.0.0.1 is a process; a dual-stack `[::]` one (`*`) is a process.
    /// With `ss` and without it. Fails without the address filter (all were "process").
    #[test]
    fn only_a_listener_nginx_reaches_holds_the_port() {
        let aside = std::net::TcpListener::bind("127.0.0.3:0").unwrap();
        let foreign = aside.local_addr().unwrap().port();
        let both = std::net::TcpListener::bind("127.0.0.3:0").unwrap();
        let shared = both.local_addr().unwrap().port();
        let _reached = std::net::TcpListener::bind(("127.0.0.1", shared)).unwrap();
        let dual = std::net::TcpListener::bind("[::]:0").unwrap();
        let dual = dual.local_addr().unwrap().port();
        let without_ss = crate::testing::path_with_only(&[
            "sh", "awk", "cat", "find", "head", "tr", "grep", "sed",
        ]);
        let me = std::process::id();
        for path in [None, Some(without_ss.path())] {
            let stdout =
                crate::testing::run_here(&holders("127.0.0.1", &[foreign, shared, dual]), path);
            assert!(
                matches!(parse(&stdout, foreign), PortHolder::Foreign { ref address, pid, .. }
                    if address == "127.0.0.3" && pid == me),
                "PATH {path:?}: {stdout}"
            );
            for port in [shared, dual] {
                assert!(
                    matches!(parse(&stdout, port), PortHolder::Process { pid, .. } if pid == me),
                    "PATH {path:?}: {stdout}"
                );
            }
        }
        assert!(parse("8081 foreign 127.0.0.3 python3 42\n", 8081)
            .describe()
            .contains("python3 (pid 42) listening only on 127.0.0.3"));
    }

    /// The real stop script, here: a process that ends on SIGTERM is `stopped` (found as a
    /// zombie: this test, its parent, has not reaped it yet); one that ignores SIGTERM is
    /// `killed` once the grace time is over.
    #[test]
    fn the_stop_script_ends_an_old_process_with_term_or_kill() {
        use std::io::BufRead;
        use std::os::unix::process::ExitStatusExt;
        let grace = std::time::Duration::from_secs(60);
        let mut polite =
            crate::testing::Child::spawn(std::process::Command::new("sleep").arg("600"));
        let stopped = crate::testing::run_here(&stop_process(polite.0.id(), grace), None);
        assert_eq!(stopped, "stopped\n");
        assert_eq!(polite.ended().signal(), Some(15));
        let mut stubborn = crate::testing::Child::spawn(
            std::process::Command::new("sh")
                .args(["-c", "trap '' TERM; echo ready; exec sleep 600"])
                .stdout(std::process::Stdio::piped()),
        );
        let mut ready = String::new();
        std::io::BufReader::new(stubborn.0.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready, "ready\n");
        let grace = std::time::Duration::from_millis(300);
        let killed = crate::testing::run_here(&stop_process(stubborn.0.id(), grace), None);
        assert_eq!(killed, "killed\n");
        assert_eq!(stubborn.ended().signal(), Some(9));
    }
}
