//! Helpers for unit tests only.

use crate::settings::{Config, Needs, RawSettings, Sources};

pub const KNOWN_HOSTS: &str =
    "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKk3TwExampleExampleExample";
pub const KEY: &str =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

pub fn raw(pairs: &[(&str, &str)]) -> RawSettings {
    let mut sources = Sources::default();
    sources.flags.insert("host".into(), "127.0.0.1".into());
    sources.flags.insert("key".into(), KEY.into());
    sources
        .flags
        .insert("known_hosts".into(), KNOWN_HOSTS.into());
    for (name, value) in pairs {
        sources.flags.insert((*name).into(), (*value).into());
    }
    RawSettings::gather(&sources).unwrap()
}

pub fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_raw(&raw(pairs), Needs::Image).unwrap()
}
pub mod fake_host;
