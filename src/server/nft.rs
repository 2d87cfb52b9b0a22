//! The nftables traffic switch: nginx proxies to a fixed local `service_port`; one DNAT rule
//! in a table of our own points that port at the live color. Replacing the table is a single
//! `nft -f` transaction, so the switch is atomic and needs no nginx reload: established
//! connections keep their old mapping (and finish), new ones reach the new color.

use super::command::{ServerCommand, Stdin};

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
}
