//! The process environment, read once and scrubbed. Settings are read from a snapshot taken
//! before anything else runs; then the secret variables are removed from the process itself,
//! so no child (the jar build, docker, ssh and its master) ever inherits them. A child that
//! needs a secret gets it explicitly, on stdin.

use std::collections::BTreeMap;

/// Every variable that can carry one of our secrets into a child process.
pub const SECRET_VARIABLES: &[&str] = &[
    "INPUT_KEY",
    "INPUT_DOCKER_TOKEN",
    "INPUT_GITHUB_TOKEN",
    "BLUEGREEN_KEY",
    "BLUEGREEN_DOCKER_TOKEN",
    "BLUEGREEN_GITHUB_TOKEN",
    "GITHUB_TOKEN",
    // `secret_env` (the app's secret variables), for when that setting exists.
    "INPUT_SECRET_ENV",
    "BLUEGREEN_SECRET_ENV",
];

/// Returns every variable as it was at start, and removes the secret ones from the process.
///
/// Must run before any other thread exists (before the async runtime starts): changing the
/// environment while another thread reads it is undefined behaviour on Linux.
pub fn take_and_scrub() -> BTreeMap<String, String> {
    let snapshot: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    for name in SECRET_VARIABLES {
        std::env::remove_var(name);
    }
    snapshot
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::spec::{input_name, SETTINGS};

    #[test]
    fn every_secret_setting_has_its_variables_listed() {
        for setting in SETTINGS.iter().filter(|s| s.secret) {
            let env = format!("BLUEGREEN_{}", setting.name.to_uppercase());
            assert!(SECRET_VARIABLES.contains(&env.as_str()), "{env}");
            let input = input_name(setting.name);
            assert!(SECRET_VARIABLES.contains(&input.as_str()), "{input}");
        }
    }
}
