//! Commands that switch traffic: write the switch file atomically, test, reload, drain.

use super::command::{Script, ServerCommand, Stdin};
use crate::color::Color;

/// Writes stdin to the file through a temp file in the same directory and a rename, so nginx
/// never reads a half-written switch file. A symlink is followed (its target is replaced, the
/// link stays); an existing file's owner and mode are kept.
pub const WRITE_SCRIPT: Script = Script {
    name: "bluegreen-write-switch-file",
    text: include_str!("nginx/write_switch.sh"),
};

/// Waits until nothing holds a connection to the old color's port or is still trying to open
/// one, and no nginx worker from before the reload is still shutting down (with
/// `keepalive_min_timeout`, old workers keep serving idle keep-alive clients, and proxying to
/// the old color, for up to that long), at most `$2` tenths of a second.
///
/// Attempts count because a SYN that the old color's full listen queue dropped just before the
/// switch is sent again 1 s later (then 3 s, 7 s…) to the same color: stopping it first answers
/// that request with a reset. An attempt on a socket of this host shows in `ss`; one that a
/// DNAT switch (or any address translation) sends to the port only in the connection tracking
/// table (readable by root, hence a privileged drain with `traffic_switch: nftables`), counted
/// while the local socket that makes it still exists (the table keeps abandoned ones 2 minutes).
/// The table is read only while such a socket (to 127.0.0.1, where the switch's rule applies)
/// exists: it also lists every closed connection for 2 minutes (36,000 after the benchmark's
/// load, 80 ms to list), and listing it on every poll made the drain under load 0.5 s longer.
///
/// The workers counted are the children of the nginx master that listens on `$3` (found once by
/// its socket; every shutting-down nginx worker when it cannot be found, e.g. nginx in a network
/// namespace of its own). Counts the connections with `ss`, which has the kernel filter them by
/// port (without it, from the socket table in /proc, which under load lists tens of thousands of
/// sockets on each poll). `$3` 0: this run did not reload nginx, so no worker is counted
/// (finding the master walks every process). Prints `drained N` (polls needed), `busy N W`
/// (connections and attempts, and old workers, left at the deadline) or `unknown` (no socket
/// table).
pub const DRAIN_SCRIPT: Script = Script {
    name: "bluegreen-drain",
    text: include_str!("nginx/drain.sh"),
};

pub fn render_switch(template: &str, port: u16, color: Color, service: &str) -> String {
    let mut content = template
        .replace("{port}", &port.to_string())
        .replace("{color}", color.as_str())
        .replace("{service}", service);
    if !content.ends_with('\n') {
        content.push('\n');
    }
    content
}

pub fn write_switch_file(path: &str, content: &str, purpose: &str) -> ServerCommand {
    ServerCommand::script(purpose, &WRITE_SCRIPT, &[path])
        .stdin(Stdin::Text(content.to_owned()))
        .privileged()
}

pub fn remove_switch_file(path: &str) -> ServerCommand {
    ServerCommand::new("remove the new switch file", &["rm", "-f", path]).privileged()
}

pub fn test_config(command_line: &str) -> ServerCommand {
    ServerCommand::operator_shell("test nginx configuration", command_line).privileged()
}

/// The purpose of [`reload`], by which a list of commands shows it reloads nginx.
pub const RELOAD_PURPOSE: &str = "reload nginx";

pub fn reload(command_line: &str) -> ServerCommand {
    ServerCommand::operator_shell(RELOAD_PURPOSE, command_line).privileged()
}

/// `nginx_port`: where nginx listens (the verify URL's port), to find its master; `None`: this
/// run did not reload nginx, so there are no workers from before its reload to wait for.
/// `translated`: traffic reaches the port through a DNAT rule, so the drain runs with
/// privileges to read the connection tracking table (see [`DRAIN_SCRIPT`]).
pub fn drain(
    old_port: u16,
    timeout: std::time::Duration,
    nginx_port: Option<u16>,
    translated: bool,
) -> ServerCommand {
    let tries = (timeout.as_millis() / 100).max(1).to_string();
    let command = ServerCommand::script(
        format!("drain connections to port {old_port}"),
        &DRAIN_SCRIPT,
        &[
            &old_port.to_string(),
            &tries,
            &nginx_port.unwrap_or(0).to_string(),
        ],
    );
    if translated {
        command.privileged()
    } else {
        command
    }
}

/// Which color a switch file points at: an exact rendering of one color, else the one whose
/// port (`:8081`) alone appears in it.
pub fn color_of_switch(
    content: &str,
    renderings: [(Color, String); 2],
    ports: [(Color, u16); 2],
) -> Option<Color> {
    if let Some((color, _)) = renderings
        .iter()
        .find(|(_, text)| text.trim() == content.trim())
    {
        return Some(*color);
    }
    match ports.map(|(color, port)| (color, mentions_port(content, port))) {
        [(color, true), (_, false)] | [(_, false), (color, true)] => Some(color),
        _ => None,
    }
}

/// Whether `content` names `:{port}` (and not a longer port that starts with it).
pub fn mentions_port(content: &str, port: u16) -> bool {
    let needle = format!(":{port}");
    content
        .match_indices(&needle)
        .any(|(at, _)| !content[at + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "set $service_url http://127.0.0.1:{port};";

    /// What the drain script needs when `ss` is missing (it reads /proc instead).
    const WITHOUT_SS: &[&str] = &[
        "sh", "awk", "cat", "find", "head", "tr", "grep", "cut", "sleep", "wc", "sed",
    ];

    #[test]
    fn renders_the_default_template() {
        assert_eq!(
            render_switch(TEMPLATE, 8082, Color::Green, "green"),
            "set $service_url http://127.0.0.1:8082;\n"
        );
        assert_eq!(
            render_switch(
                "upstream app { server 127.0.0.1:{port}; } # {color}/{service}",
                8081,
                Color::Blue,
                "app_blue"
            ),
            "upstream app { server 127.0.0.1:8081; } # blue/app_blue\n"
        );
    }

    #[test]
    fn commands_are_exact() {
        assert_eq!(
            test_config("nginx -t").render(true),
            "sudo -n sh -c 'nginx -t'"
        );
        assert_eq!(
            reload("nginx -s reload").render(false),
            "sh -c 'nginx -s reload'"
        );
        assert_eq!(
            write_switch_file("/etc/nginx/conf.d/service-url.inc", "x", "switch to green").render(false),
            "sh -c <bluegreen-write-switch-file> bluegreen-write-switch-file /etc/nginx/conf.d/service-url.inc < (content)"
        );
        assert_eq!(
            drain(8081, std::time::Duration::from_secs(30), Some(80), false).render(false),
            "sh -c <bluegreen-drain> bluegreen-drain 8081 300 80"
        );
    }

    #[test]
    fn reads_the_color_of_a_switch_file() {
        let renderings = |t: &str| {
            [
                (Color::Blue, render_switch(t, 8081, Color::Blue, "blue")),
                (Color::Green, render_switch(t, 8082, Color::Green, "green")),
            ]
        };
        let ports = [(Color::Blue, 8081), (Color::Green, 8082)];
        let live = "set $service_url http://127.0.0.1:8082;\n";
        assert_eq!(
            color_of_switch(live, renderings(TEMPLATE), ports),
            Some(Color::Green)
        );
        let hand_written = "# edited by hand\nset $service_url http://localhost:8081;\n";
        assert_eq!(
            color_of_switch(hand_written, renderings(TEMPLATE), ports),
            Some(Color::Blue)
        );
        assert_eq!(
            color_of_switch("proxy_pass http://x:80810;", renderings(TEMPLATE), ports),
            None
        );
        assert_eq!(
            color_of_switch(":8081 :8082", renderings(TEMPLATE), ports),
            None
        );
    }

    /// The real write script, here: the file is replaced by a rename (a new inode, so nginx
    /// never reads it half-written) keeping its mode; through a symlink the target is replaced
    /// and the link stays; a new file gets 0644; no temporary file is left.
    #[test]
    fn the_write_script_replaces_the_file_keeping_its_mode_and_link() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("service-url.inc");
        let path = file.to_str().unwrap();
        std::fs::write(&file, "old\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let before = std::fs::metadata(&file).unwrap().ino();
        let write = |path: &str, content: &str| {
            let output =
                crate::testing::run_here(&write_switch_file(path, content, "switch"), None);
            assert_eq!(output, "");
        };
        write(path, "set $service_url http://127.0.0.1:8082;\n");
        let after = std::fs::metadata(&file).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "set $service_url http://127.0.0.1:8082;\n"
        );
        assert_ne!(after.ino(), before, "written in place, not renamed");
        assert_eq!(after.mode() & 0o777, 0o640);
        let link = dir.path().join("link.inc");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        write(link.to_str().unwrap(), "through the link");
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "through the link\n"
        );
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o640);
        let new = dir.path().join("new.inc");
        write(new.to_str().unwrap(), "new");
        assert_eq!(std::fs::metadata(&new).unwrap().mode() & 0o777, 0o644);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["link.inc", "new.inc", "service-url.inc"]);
    }

    /// The drain script itself, on this machine, with `ss` and without it (from /proc): an
    /// established connection to the port keeps it busy until the deadline; once closed, the
    /// port is drained. (The port is also the "nginx" port: its holder, this test, has no
    /// worker shutting down, so only connections count.)
    #[test]
    fn the_drain_script_waits_for_established_connections() {
        let without_ss = crate::testing::path_with_only(WITHOUT_SS);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let drain_output = |path: Option<&std::path::Path>, nginx_port: Option<u16>| {
            let command = drain(
                port,
                std::time::Duration::from_millis(300),
                nginx_port,
                false,
            );
            crate::testing::run_here(&command, path)
        };
        for (path, nginx_port) in [
            (None, Some(port)),
            (Some(without_ss.path()), Some(port)),
            (None, None),
        ] {
            let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (accepted, _) = listener.accept().unwrap();
            let busy = drain_output(path, nginx_port);
            assert_eq!(busy.trim(), "busy 1 0", "PATH {path:?}, {nginx_port:?}");
            drop((client, accepted));
            let drained = drain_output(path, nginx_port);
            assert_eq!(drained.trim(), "drained 0", "PATH {path:?}, {nginx_port:?}");
        }
    }

    /// A listener whose accept queue is full, so the kernel drops every SYN to it: that client
    /// keeps retrying (after 1 s, then 3 s…), as nginx does toward an old color overwhelmed just
    /// before the switch. The queue holds one connection (backlog 0) that its client has
    /// already closed: it waits in the queue in CLOSE-WAIT, no longer a connection the drain
    /// counts, and keeps the queue full for as long as the listener lives (so the attempt stays
    /// an attempt however slowly the test runs; a queue with room would complete it at the
    /// first retry).
    struct FullListener {
        listener: std::net::TcpListener,
    }

    impl FullListener {
        async fn new() -> FullListener {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let listener = socket.listen(0).unwrap().into_std().unwrap();
            listener.set_nonblocking(false).unwrap();
            drop(std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap());
            let full = FullListener { listener };
            let port = full.port();
            crate::testing::wait_for(&format!("the queued connection to {port} to close"), || {
                crate::testing::ss_lists(&["state", "close-wait", &format!("( sport = :{port} )")])
            });
            full
        }

        fn port(&self) -> u16 {
            self.listener.local_addr().unwrap().port()
        }
    }

    /// A connection attempt to `port` that stays pending (its SYN dropped) while the task runs;
    /// returns once this host lists it.
    fn attempt(port: u16) -> tokio::task::JoinHandle<()> {
        let attempt = tokio::spawn(async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            let connected = socket.connect(([127, 0, 0, 1], port).into()).await;
            std::future::pending::<()>().await;
            drop(connected);
        });
        crate::testing::wait_for(&format!("an attempt to {port}"), || {
            crate::testing::ss_lists(&["state", "syn-sent", &format!("( dport = :{port} )")])
        });
        attempt
    }

    fn drain_now(command: &ServerCommand, path: Option<&std::path::Path>, sudo: bool) -> String {
        crate::testing::run_here_with_sudo(command, path, sudo)
            .trim()
            .to_owned()
    }

    /// A SYN the old color's full queue dropped is sent again to it: the drain waits for the
    /// attempt as for a connection (before, it saw no connection and let the color be stopped,
    /// and the retried SYN met a closed port: a 502). With `ss` and without it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_drain_script_waits_for_connection_attempts() {
        let without_ss = crate::testing::path_with_only(WITHOUT_SS);
        for path in [None, Some(without_ss.path())] {
            let full = FullListener::new().await;
            let pending = attempt(full.port());
            let command = drain(
                full.port(),
                std::time::Duration::from_millis(300),
                None,
                false,
            );
            assert_eq!(
                drain_now(&command, path, false),
                "busy 1 0",
                "PATH {path:?}"
            );
            pending.abort();
            let _ = pending.await;
            assert_eq!(
                drain_now(&command, path, false),
                "drained 0",
                "PATH {path:?}"
            );
        }
    }

    /// The same attempt made through a DNAT rule (the nftables switch: nginx dials the service
    /// port, the rule sends it to the old color) shows only in the connection tracking table:
    /// the privileged drain counts it while the dialing socket lives, and not once it is gone
    /// (the table keeps the entry 2 minutes). With `ss` and without it (run as root: sudo
    /// resets PATH). Needs `sudo -n nft`, as the nftables switch does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_drain_script_waits_for_attempts_sent_through_dnat() {
        let without_ss = crate::testing::path_with_only(WITHOUT_SS);
        let nft = |script: String| crate::testing::load_nft(&script);
        for (path, sudo) in [(None, true), (Some(without_ss.path()), false)] {
            let full = FullListener::new().await;
            let service_port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let table = format!("bluegreen_drain_test_{}", std::process::id());
            nft(crate::server::nft::ruleset(
                &table,
                service_port,
                full.port(),
            ));
            let pending = attempt(service_port);
            let command = drain(
                full.port(),
                std::time::Duration::from_millis(300),
                None,
                true,
            );
            assert!(command.render(true).starts_with("sudo -n "));
            let busy = drain_now(&command, path, sudo);
            pending.abort();
            let _ = pending.await;
            let drained = drain_now(&command, path, sudo);
            nft(format!("delete table ip {table}\n"));
            assert_eq!(
                busy, "busy 1 0",
                "the attempt through the rule, PATH {path:?}"
            );
            assert_eq!(drained, "drained 0", "an abandoned attempt, PATH {path:?}");
        }
    }
}
