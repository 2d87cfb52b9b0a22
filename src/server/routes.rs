//! Evidence of where traffic goes: the TCP connections each color has accepted, read from the
//! kernel's socket tables (`/proc/<pid>/net/tcp*`). A connection lingers there (TIME_WAIT) for a
//! minute after it closed, so comparing two readings shows which color received new
//! connections in between — whatever nginx's configuration looks like, and without asking the
//! app to name its color.

use super::command::{Script, ServerCommand};
use crate::color::Color;

/// Arguments: `blue_port blue_pid green_port green_pid` (pid 0: none). For each color prints
/// `color local-remote` for every non-listening socket on its host port (the host's network
/// namespace, where nginx on the host connects) and, when it runs in a container of its own,
/// every non-listening socket on a listening port inside that container's namespace (where
/// nginx in another container connects).
pub const CONNECTIONS_SCRIPT: Script = Script {
    name: "bluegreen-connections",
    text: r#"sockets() {
  awk -v port="$(printf '%04X' "$2")" -v color="$1" '
    { split($2, local_address, ":") }
    $4 != "0A" && local_address[2] == port { print color, $2 "-" $3 }
  ' /proc/self/net/tcp /proc/self/net/tcp6 2>/dev/null
  if [ "$3" != 0 ] && [ -r "/proc/$3/net/tcp" ]; then
    awk -v color="$1" '
      { split($2, local_address, ":") }
      $4 == "0A" { listening[local_address[2]] = 1; next }
      FNR > 1 { seen[local_address[2]] = seen[local_address[2]] "\n" color " " $2 "-" $3 }
      END { for (port in seen) if (port in listening) printf "%s", seen[port]; print "" }
    ' "/proc/$3/net/tcp" "/proc/$3/net/tcp6" 2>/dev/null
  fi
}
sockets blue "$1" "$2"
sockets green "$3" "$4"
echo done
"#,
};

/// The connections of both colors now. `pids`: the colors' container (or process) ids.
pub fn connections(ports: [u16; 2], pids: [u32; 2]) -> ServerCommand {
    ServerCommand::script(
        "read the colors' connections",
        &CONNECTIONS_SCRIPT,
        &[
            &ports[0].to_string(),
            &pids[0].to_string(),
            &ports[1].to_string(),
            &pids[1].to_string(),
        ],
    )
    .privileged()
}

/// One reading: the connection identities per color.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Connections {
    pub blue: std::collections::BTreeSet<String>,
    pub green: std::collections::BTreeSet<String>,
    /// The script ran to its end (`done`): an empty set means "none", not "unknown".
    pub complete: bool,
}

impl Connections {
    pub fn parse(output: &str) -> Connections {
        let mut found = Connections::default();
        for line in output.lines() {
            match line.trim().split_once(' ') {
                Some(("blue", id)) => {
                    found.blue.insert(id.to_owned());
                }
                Some(("green", id)) => {
                    found.green.insert(id.to_owned());
                }
                _ if line.trim() == "done" => found.complete = true,
                _ => {}
            }
        }
        found
    }

    fn of(&self, color: Color) -> &std::collections::BTreeSet<String> {
        match color {
            Color::Blue => &self.blue,
            Color::Green => &self.green,
        }
    }

    /// How many connections `color` has that `before` did not.
    pub fn new_since(&self, before: &Connections, color: Color) -> usize {
        self.of(color).difference(before.of(color)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_is_exact() {
        assert_eq!(
            connections([8081, 8082], [0, 4242]).render(true),
            "sudo -n sh -c <bluegreen-connections> bluegreen-connections 8081 0 8082 4242"
        );
    }

    #[test]
    fn counts_new_connections_per_color() {
        let before = Connections::parse("blue 0100007F:1F91-0100007F:A000\ndone\n");
        let after = Connections::parse(
            "blue 0100007F:1F91-0100007F:A000\ngreen 0100007F:1F92-0100007F:B000\n\
             green 020011AC:1F90-010011AC:B002\ndone\n",
        );
        assert!(after.complete && !Connections::parse("blue x-y\n").complete);
        assert_eq!(after.new_since(&before, Color::Blue), 0);
        assert_eq!(after.new_since(&before, Color::Green), 2);
    }
}
