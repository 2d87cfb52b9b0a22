//! Evidence of where traffic goes: the TCP connections each color has accepted, read from the
//! kernel's socket tables (`/proc/<pid>/net/tcp*`). A connection lingers there (TIME_WAIT) for a
//! minute after it closed, so comparing two readings shows which color received new
//! connections in between — whatever nginx's configuration looks like, and without asking the
//! app to name its color.
//!
//! Under load a color has tens of thousands of such sockets, so the comparison happens on the
//! server: the first reading is kept in a private temporary file there ([`save`]) and the later
//! ones print only how many connections each color gained since ([`since`]).

use super::command::{Script, ServerCommand};
use crate::color::Color;

/// Arguments: `save|since FILE TARGET blue_port blue_pid green_port green_pid` (pid 0: none).
/// A reading is, for each color, every non-listening socket on its host port (the host's
/// network namespace, where nginx on the host connects) and, when it runs in a network
/// namespace of its own (a container), every non-listening socket on a listening port inside
/// it (where nginx in another container connects). Read with `ss`, which has the kernel filter
/// by port (formatting every socket of `/proc/net/tcp` took seconds under load); without `ss`,
/// from `/proc`.
///
/// `save` writes the reading to a new private file (removing such files older than ten minutes,
/// which only a killed run leaves) and prints `file PATH`. `since` prints `blue N`, `green N`:
/// the sockets not in FILE; it removes FILE once TARGET (`blue`, `green`, or `any`) gained one.
/// `forget` removes FILE. All end with `done` when the script ran to its end.
pub const CONNECTIONS_SCRIPT: Script = Script {
    name: "bluegreen-connections",
    text: include_str!("routes/connections.sh"),
};

/// What a reading is about: the colors' host ports and container (or process) ids.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sockets {
    pub ports: [u16; 2],
    /// 0: no process of its own to look into.
    pub pids: [u32; 2],
}

impl Sockets {
    fn args(&self) -> [String; 4] {
        [
            self.ports[0].to_string(),
            self.pids[0].to_string(),
            self.ports[1].to_string(),
            self.pids[1].to_string(),
        ]
    }
}

fn command(
    purpose: &str,
    mode: &str,
    file: &str,
    target: &str,
    sockets: &Sockets,
) -> ServerCommand {
    let [a, b, c, d] = sockets.args();
    ServerCommand::script(
        purpose,
        &CONNECTIONS_SCRIPT,
        &[mode, file, target, &a, &b, &c, &d],
    )
    .privileged()
}

/// Keeps the colors' connections now on the server, as the reading to compare with.
pub fn save(sockets: &Sockets) -> ServerCommand {
    command("read the colors' connections", "save", "-", "-", sockets)
}

/// How many connections each color gained since the reading in `file`; `target`: whose gain
/// ends the comparison (`None`: this is the only comparison).
pub fn since(file: &str, target: Option<Color>, sockets: &Sockets) -> ServerCommand {
    let target = target.map_or("any".to_owned(), |c| c.to_string());
    command(
        "count the colors' new connections",
        "since",
        file,
        &target,
        sockets,
    )
}

/// Removes the reading in `file` (a comparison that ends no other way: the response named its
/// color, or the run failed).
pub fn forget(file: &str) -> ServerCommand {
    ServerCommand::script(
        "remove the first reading of the connections",
        &CONNECTIONS_SCRIPT,
        &["forget", file, "-"],
    )
    .privileged()
}

/// The first reading, kept on the server: its file there.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Baseline {
    pub file: String,
}

impl Baseline {
    pub fn parse(output: &str) -> Option<Baseline> {
        let file = output.lines().find_map(|l| l.strip_prefix("file "))?;
        output
            .lines()
            .any(|l| l.trim() == "done")
            .then(|| Baseline {
                file: file.trim().to_owned(),
            })
    }
}

/// The connections each color gained since a [`Baseline`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Gained {
    pub blue: usize,
    pub green: usize,
    /// The script ran to its end (`done`): a zero means "none", not "unknown".
    pub complete: bool,
}

impl Gained {
    pub fn parse(output: &str) -> Gained {
        let mut found = Gained::default();
        for line in output.lines() {
            match line.trim().split_once(' ') {
                Some(("blue", n)) => found.blue = n.parse().unwrap_or(0),
                Some(("green", n)) => found.green = n.parse().unwrap_or(0),
                _ if line.trim() == "done" => found.complete = true,
                _ => {}
            }
        }
        found
    }

    /// How many connections `color` gained.
    pub fn of(&self, color: Color) -> usize {
        match color {
            Color::Blue => self.blue,
            Color::Green => self.green,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOCKETS: Sockets = Sockets {
        ports: [8081, 8082],
        pids: [0, 4242],
    };

    #[test]
    fn commands_are_exact() {
        assert_eq!(
            save(&SOCKETS).render(true),
            "sudo -n sh -c <bluegreen-connections> bluegreen-connections save - - 8081 0 8082 4242"
        );
        assert_eq!(
            since("/tmp/bluegreen-connections.ab", Some(Color::Green), &SOCKETS).render(false),
            "sh -c <bluegreen-connections> bluegreen-connections since /tmp/bluegreen-connections.ab green 8081 0 8082 4242"
        );
    }

    #[test]
    fn parses_the_readings() {
        assert_eq!(
            Baseline::parse("file /tmp/bluegreen-connections.x1\ndone\n"),
            Some(Baseline {
                file: "/tmp/bluegreen-connections.x1".into()
            })
        );
        assert_eq!(Baseline::parse("file /tmp/x\n"), None);
        let gained = Gained::parse("blue 0\ngreen 2\ndone\n");
        assert!(gained.complete && !Gained::parse("blue 0\n").complete);
        assert_eq!((gained.of(Color::Blue), gained.of(Color::Green)), (0, 2));
    }

    /// The script itself, run here against this machine's socket tables, with `ss`.
    #[test]
    fn the_script_counts_what_each_color_gained_since_the_first_reading() {
        counts_what_each_color_gained(None);
    }

    /// The same on a server without `ss`: from `/proc`.
    #[test]
    fn without_ss_the_script_reads_proc() {
        let bin = crate::testing::path_with_only(&["sh", "awk", "mktemp", "find", "rm", "grep"]);
        counts_what_each_color_gained(Some(bin.path()));
    }

    /// `path`: the only directory of the script's PATH (`None`: this machine's).
    fn counts_what_each_color_gained(path: Option<&std::path::Path>) {
        use std::net::{TcpListener, TcpStream};
        let listeners = [(); 2].map(|_| TcpListener::bind("127.0.0.1:0").unwrap());
        let ports = [0, 1].map(|i| listeners[i].local_addr().unwrap().port());
        let sockets = Sockets {
            ports,
            pids: [0, 0],
        };
        let run = |command: ServerCommand| crate::testing::run_here(&command, path);
        let mut open = Vec::new();
        let mut connect = |color: usize| {
            open.push(TcpStream::connect(("127.0.0.1", ports[color])).unwrap());
            open.push(listeners[color].accept().unwrap().0);
        };
        connect(0);
        let baseline = Baseline::parse(&run(save(&sockets))).unwrap();
        let file = std::path::Path::new(&baseline.file);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        connect(1);
        connect(1);
        let gained = Gained::parse(&run(since(&baseline.file, Some(Color::Blue), &sockets)));
        assert_eq!((gained.blue, gained.green, gained.complete), (0, 2, true));
        assert!(file.exists(), "kept until the target gains a connection");
        connect(0);
        let gained = Gained::parse(&run(since(&baseline.file, Some(Color::Blue), &sockets)));
        assert_eq!((gained.blue, gained.green), (1, 2));
        assert!(!file.exists(), "removed once the target gained one");
        let baseline = Baseline::parse(&run(save(&sockets))).unwrap();
        assert!(std::path::Path::new(&baseline.file).exists());
        run(forget(&baseline.file));
        assert!(!std::path::Path::new(&baseline.file).exists());
    }
}
