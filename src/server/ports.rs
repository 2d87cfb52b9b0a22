//! What listens on the colors' ports: nothing, a container (named, with its image and whether
//! bluegreen started it), or a plain process (name and pid). Migration from hand-made scripts
//! depends on telling these apart before anything is touched.

use super::command::{Script, ServerCommand};

/// Prints one line per port argument: `PORT free`, `PORT container NAME IMAGE APP-LABEL` or
/// `PORT process COMM PID`. Asks `ss` (the kernel filters by port), else reads the socket
/// tables in /proc.
pub const PORTS_SCRIPT: Script = Script {
    name: "bluegreen-port-holders",
    text: include_str!("ports/port_holders.sh"),
};

pub fn holders(ports: &[u16]) -> ServerCommand {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let args: Vec<&str> = ports.iter().map(String::as_str).collect();
    ServerCommand::script("find what holds the color ports", &PORTS_SCRIPT, &args).privileged()
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
            holders(&[8081, 8082]).render(true),
            "sudo -n sh -c <bluegreen-port-holders> bluegreen-port-holders 8081 8082"
        );
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
        let without_ss =
            crate::testing::path_with_only(&["sh", "awk", "cat", "find", "head", "tr"]);
        for path in [None, Some(without_ss.path())] {
            let stdout = crate::testing::run_here(&holders(&[held, free]), path);
            assert!(
                matches!(parse(&stdout, held), PortHolder::Process { pid, .. } if pid == std::process::id()),
                "PATH {path:?}: {stdout}"
            );
            assert_eq!(parse(&stdout, free), PortHolder::Free, "{stdout}");
        }
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
