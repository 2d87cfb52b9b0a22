//! The nftables traffic switch: nginx proxies to a fixed local `service_port`; one DNAT rule
//! in a table of our own points that port at the live color. Replacing the table is a single
//! `nft -f` transaction, so the switch is atomic and needs no nginx reload: established
//! connections keep their old mapping (and finish), new ones reach the new color.

use super::command::{Script, ServerCommand, Stdin};

/// `bluegreen_` + the app name with every character nft identifiers forbid replaced; when a
/// character had to be replaced, a short hash of the real name keeps `shop-api`, `shop.api`
/// and `shop_api` in tables of their own.
pub fn table_name(app_name: &str) -> String {
    let clean: String = app_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == app_name {
        format!("bluegreen_{clean}")
    } else {
        format!("bluegreen_{clean}_{:08x}", fnv1a(app_name))
    }
}

/// A stable 32-bit hash (FNV-1a): the same name gives the same table on every run.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// A complete ruleset for the table; the leading create+delete makes the load idempotent.
pub fn ruleset(table: &str, service_port: u16, target_port: u16) -> String {
    format!(
        "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{\n  chain output {{\n    \
         type nat hook output priority -100; policy accept;\n    \
         ip daddr 127.0.0.1 tcp dport {service_port} dnat to 127.0.0.1:{target_port}\n  }}\n}}\n"
    )
}

/// The port a listed table sends traffic to (`dnat to 127.0.0.1:8082`).
pub fn target_port(listing: &str) -> Option<u16> {
    let rest = listing.split("dnat to").nth(1)?;
    let address = rest.split_whitespace().next()?;
    address.rsplit(':').next()?.parse().ok()
}

pub fn apply(ruleset: &str, purpose: &str) -> ServerCommand {
    ServerCommand::new(purpose, &["nft", "-f", "-"])
        .stdin(Stdin::Text(ruleset.to_owned()))
        .privileged()
}

pub fn list(table: &str) -> ServerCommand {
    ServerCommand::new(
        "read the nftables switch",
        &["nft", "list", "table", "ip", table],
    )
    .privileged()
}

pub fn delete(table: &str) -> ServerCommand {
    ServerCommand::new(
        "remove the nftables switch",
        &["nft", "delete", "table", "ip", table],
    )
    .privileged()
}

/// `$1` our table, `$2` service_port, `$3` the addresses 127.0.0.1 reaches, then the colors'
/// ports: prints `rule FAMILY TABLE` for every other table with a nat rule for the port,
/// `listener ADDRESS COMM PID` for every listener nginx's connections to it would reach, and
/// when anything was found, `free PORT` (the next port with neither).
pub const USERS_SCRIPT: Script = Script {
    name: "bluegreen-service-port-users",
    text: include_str!("nft/service_port_users.sh"),
};

/// Who else uses `service_port` on the server (one service_port per app).
pub fn service_port_users(table: &str, service_port: u16, colors: [u16; 2]) -> ServerCommand {
    let reach = super::ports::reachable_addresses("127.0.0.1").join(" ");
    let [blue, green] = colors.map(|port| port.to_string());
    ServerCommand::script(
        format!("find what else uses service_port {service_port}"),
        &USERS_SCRIPT,
        &[table, &service_port.to_string(), &reach, &blue, &green],
    )
    .privileged()
}

/// Another user of service_port, as [`USERS_SCRIPT`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortUser {
    /// A nat rule for the port in another table (`table ip bluegreen_shop`).
    Rule { family: String, table: String },
    Listener {
        address: String,
        name: String,
        pid: u32,
    },
}

impl PortUser {
    /// For messages: "the nftables table ip bluegreen_shop (app shop) has a nat rule for it".
    pub fn describe(&self) -> String {
        match self {
            PortUser::Rule { family, table } => match table.strip_prefix("bluegreen_") {
                Some(app) => format!(
                    "another app's DNAT rule uses it (nftables table {family} {table}, app {app})"
                ),
                None => format!("a nat rule in nftables table {family} {table} uses it"),
            },
            PortUser::Listener { address, name, pid } => {
                format!("process {name} (pid {pid}) listens on {address}")
            }
        }
    }
}

/// The users and the free port the script suggests.
pub fn parse_users(output: &str) -> (Vec<PortUser>, Option<u16>) {
    let mut users = Vec::new();
    let mut free = None;
    for line in output.lines() {
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["rule", family, table] => users.push(PortUser::Rule {
                family: (*family).to_owned(),
                table: (*table).to_owned(),
            }),
            ["listener", address, name, pid] => users.push(PortUser::Listener {
                address: (*address).to_owned(),
                name: (*name).to_owned(),
                pid: pid.parse().unwrap_or(0),
            }),
            ["free", port] => free = port.parse().ok(),
            _ => {}
        }
    }
    (users, free)
}

/// When another user holds service_port: what it is, and the fix (`None`: it is ours alone).
pub fn conflict(service_port: u16, output: &str) -> Option<(String, String)> {
    let (users, free) = parse_users(output);
    let first = users.first()?;
    let more = match users.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    let suggestion = free.map_or("a free port".to_owned(), |port| {
        format!("a free port, e.g. {port}")
    });
    Some((
        format!(
            "service_port {service_port} is not this app's alone: {}{more}",
            first.describe()
        ),
        format!(
            "set service_port to {suggestion} (one DNAT rule per port: a second rule for it \
             sends one app's site to the other app)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_atomic_ruleset() {
        assert_eq!(table_name("shop-api.v2"), "bluegreen_shop_api_v2_ab41a31e");
        assert_eq!(table_name("shop_api"), "bluegreen_shop_api");
        let names = ["shop-api", "shop_api", "shop.api"].map(table_name);
        assert!(names[0] != names[1] && names[1] != names[2] && names[0] != names[2]);
        assert_eq!(
            ruleset("bluegreen_api", 8080, 8082),
            "table ip bluegreen_api {}\ndelete table ip bluegreen_api\ntable ip bluegreen_api {\n  chain output {\n    \
             type nat hook output priority -100; policy accept;\n    \
             ip daddr 127.0.0.1 tcp dport 8080 dnat to 127.0.0.1:8082\n  }\n}\n"
        );
        assert_eq!(
            target_port(&ruleset("bluegreen_api", 8080, 8082)),
            Some(8082)
        );
        assert_eq!(target_port("table ip bluegreen_api {\n}\n"), None);
        assert_eq!(
            apply("x", "point traffic at green").render(true),
            "sudo -n nft -f - < (content)"
        );
        assert_eq!(
            list("bluegreen_api").render(false),
            "nft list table ip bluegreen_api"
        );
    }

    /// Deletes the tables when the test ends, passing or not.
    struct Tables(Vec<String>);

    impl Drop for Tables {
        fn drop(&mut self) {
            for table in &self.0 {
                let _ = std::process::Command::new("nft")
                    .args(["delete", "table", "ip", table])
                    .output();
            }
        }
    }

    fn unused_port() -> u16 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    }

    /// The real script against real tables: another app's DNAT table for the port is found
    /// (ours is not), a listener on 127.0.0.1 is found, and the free port suggested is neither.
    #[test]
    fn the_users_script_finds_another_apps_rule_and_a_listener() {
        let pid = std::process::id();
        let (ours, other) = (
            format!("bluegreen_ut_us_{pid}"),
            format!("bluegreen_ut_them_{pid}"),
        );
        let _tables = Tables(vec![ours.clone(), other.clone()]);
        let shared = unused_port();
        crate::testing::load_nft(&ruleset(&ours, shared, 1));
        let run = |port: u16| {
            let command = service_port_users(&ours, port, [1, 2]);
            parse_users(&crate::testing::run_here(&command, None))
        };
        assert_eq!(
            run(shared),
            (vec![], None),
            "our own table is no other user"
        );

        crate::testing::load_nft(&ruleset(&other, shared, 2));
        let (users, free) = run(shared);
        assert_eq!(
            users,
            vec![PortUser::Rule {
                family: "ip".into(),
                table: other.clone()
            }]
        );
        let free = free.expect("a free port is suggested");
        assert!(free > shared && run(free).0.is_empty(), "{free}");
        let (cause, fix) = conflict(shared, &format!("rule ip {other}\nfree {free}\n")).unwrap();
        assert!(
            cause.contains(&format!("service_port {shared} is not this app's alone"))
                && cause.contains(&format!("app ut_them_{pid}"))
                && fix.contains(&format!("e.g. {free}")),
            "{cause} / {fix}"
        );

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let held = listener.local_addr().unwrap().port();
        let (users, _) = run(held);
        assert!(
            matches!(users.as_slice(), [PortUser::Listener { address, pid: p, .. }]
                if address == "127.0.0.1" && *p == pid),
            "{users:?}"
        );
    }
}
