//! The table of every setting: its one snake_case name, its default and its help.
//!
//! Every entry point (YAML file, `BLUEGREEN_*` environment, `--flags`, `INPUT_*` action inputs)
//! is generated from this table, so a setting cannot exist in one place and be missing in another.

pub struct SettingSpec {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub help: &'static str,
    /// Secrets are masked in the Actions log and never echoed back in errors.
    pub secret: bool,
}

const fn s(name: &'static str, default: Option<&'static str>, help: &'static str) -> SettingSpec {
    SettingSpec {
        name,
        default,
        help,
        secret: false,
    }
}

const fn secret(name: &'static str, help: &'static str) -> SettingSpec {
    SettingSpec {
        name,
        default: None,
        help,
        secret: true,
    }
}

pub const SETTINGS: &[SettingSpec] = &[
    s("host", None, "server address (the EC2 host)"),
    s("port", Some("22"), "SSH port"),
    s("username", Some("ubuntu"), "SSH user"),
    s(
        "proxy_jump",
        None,
        "bastion user@host:port reached first (same key; its host key must be in known_hosts)",
    ),
    secret("key", "SSH private key, content"),
    s("key_file", None, "SSH private key, path"),
    s(
        "known_hosts",
        None,
        "known_hosts lines for the server, content",
    ),
    s(
        "known_hosts_file",
        None,
        "known_hosts lines for the server, path",
    ),
    s(
        "host_fingerprint",
        None,
        "SHA256:... fingerprint of the server's host key",
    ),
    s(
        "accept_new_host_key",
        Some("false"),
        "trust the host key on first use",
    ),
    s(
        "sudo",
        Some("auto"),
        "run privileged server commands with sudo -n: auto, true, false",
    ),
    s("image", None, "image repository, e.g. myorg/myapp"),
    s(
        "registry",
        None,
        "registry host to log in to (default: the image's host part, else docker.io)",
    ),
    s("docker_username", None, "registry user"),
    secret(
        "docker_token",
        "registry token/password (given to docker on stdin only)",
    ),
    s(
        "environment",
        Some("dev"),
        "deploy environment; also the moving image tag",
    ),
    s(
        "build_command",
        Some("auto"),
        "jar build: auto, none, or a shell command",
    ),
    s("context", Some("."), "build context directory"),
    s(
        "dockerfile",
        Some("Dockerfile"),
        "Dockerfile path, relative to context",
    ),
    s(
        "build_args",
        None,
        "docker build arguments, one KEY=VALUE per line",
    ),
    s("platform", Some("linux/amd64"), "image platform"),
    s(
        "app_name",
        None,
        "names the containers and the server state directory",
    ),
    s(
        "compose_file",
        None,
        "compose file on the server (compose mode)",
    ),
    s("compose_project", None, "compose project name"),
    s(
        "blue_service",
        Some("blue"),
        "compose service of the blue color",
    ),
    s(
        "green_service",
        Some("green"),
        "compose service of the green color",
    ),
    s(
        "container_port",
        Some("8080"),
        "port the app listens on inside the container",
    ),
    s(
        "env_file",
        None,
        "env file on the server passed to docker run",
    ),
    s("run_args", None, "extra docker run arguments, one per line"),
    s(
        "run_command",
        None,
        "process mode (no Docker on the server): the command that starts one color; {port} {color} {artifact}",
    ),
    s(
        "artifact",
        None,
        "process mode: the local file uploaded per release (default: the one jar in build/libs or target)",
    ),
    s(
        "env",
        None,
        "KEY=VALUE lines added to the app's environment",
    ),
    secret(
        "secret_env",
        "KEY=VALUE lines added to the app's environment as secrets: masked, never on any argv",
    ),
    s("blue_port", Some("8081"), "host port of the blue color"),
    s("green_port", Some("8082"), "host port of the green color"),
    s(
        "health_path",
        Some("/actuator/health"),
        "readiness path on the color's port",
    ),
    s(
        "health_timeout",
        Some("120s"),
        "how long a new color may take to become healthy",
    ),
    s(
        "health_interval",
        Some("1s"),
        "time between readiness probes",
    ),
    s(
        "health_expect",
        None,
        "substring the health body must contain",
    ),
    s(
        "nginx_switch_file",
        Some("/etc/nginx/conf.d/service-url.inc"),
        "the file written to switch traffic",
    ),
    s(
        "nginx_switch_template",
        Some("set $service_url http://127.0.0.1:{port};"),
        "content of the switch file",
    ),
    s(
        "nginx_test_command",
        Some("nginx -t"),
        "validates the nginx configuration",
    ),
    s(
        "nginx_reload_command",
        Some("nginx -s reload"),
        "graceful nginx reload",
    ),
    s(
        "traffic_switch",
        Some("auto"),
        "how traffic moves: auto (nftables where nft and privileges exist, else nginx), nginx (switch file + graceful reload) or nftables (DNAT of service_port, no reload)",
    ),
    s(
        "service_port",
        Some("8080"),
        "nftables switch: the fixed local port nginx proxies to",
    ),
    s(
        "verify_url",
        None,
        "URL fetched on the server through nginx after the switch",
    ),
    s(
        "pre_switch_command",
        None,
        "run on the server after the new color is healthy, before traffic moves (e.g. migrations); {color} {port} {container} {image}; a failure aborts safely",
    ),
    s(
        "post_deploy_command",
        None,
        "run on the server after a successful deploy; a failure is reported, not rolled back",
    ),
    s(
        "drain_timeout",
        Some("30s"),
        "upper bound to wait for in-flight requests on the old color",
    ),
    s(
        "bake_time",
        Some("0"),
        "after a verified switch, keep the old color running this long while watching the new one's 5xx through nginx; 0 = off",
    ),
    s(
        "bake_max_error_rate",
        Some("1%"),
        "during the bake, a higher share of 5xx through nginx switches back automatically (exit 1)",
    ),
    s(
        "stop_timeout",
        Some("30s"),
        "grace period given to the old container on stop",
    ),
    s(
        "keep_old",
        Some("true"),
        "keep the old color's container (stopped) for rollback",
    ),
    s(
        "lock_timeout",
        Some("10m"),
        "how long to wait for another deploy's lock",
    ),
    s(
        "command_timeout",
        Some("5m"),
        "the longest one server command may run (pull included)",
    ),
    s(
        "state_dir",
        None,
        "server directory for lock, state and history",
    ),
    secret(
        "github_token",
        "token for GitHub Deployments and the run-aware lock",
    ),
    s(
        "deployment",
        Some("true"),
        "create a GitHub Deployment for the environment",
    ),
];

pub fn find(name: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|spec| spec.name == name)
}

/// `health_timeout` → `--health-timeout`.
pub fn flag_name(name: &str) -> String {
    name.replace('_', "-")
}

/// `health_timeout` → `BLUEGREEN_HEALTH_TIMEOUT`.
pub fn env_name(name: &str) -> String {
    format!("BLUEGREEN_{}", name.to_ascii_uppercase())
}

/// The setting a misspelled name most likely meant (`helth_path` → `health_path`), by optimal
/// string alignment distance: a swapped pair of letters (`imgae`) is one typo, not two.
pub fn closest(name: &str) -> Option<&'static str> {
    let wanted = name.to_ascii_lowercase().replace('-', "_");
    SETTINGS
        .iter()
        .map(|setting| (strsim::osa_distance(&wanted, setting.name), setting.name))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// ` (did you mean `x`?)` when a setting name is close, else nothing.
pub fn did_you_mean(name: &str) -> String {
    closest(name).map_or_else(String::new, |c| format!(" (did you mean `{c}`?)"))
}

/// `health_timeout` → `INPUT_HEALTH_TIMEOUT`, as the Actions runner names inputs.
pub fn input_name(name: &str) -> String {
    format!("INPUT_{}", name.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_documents_every_setting() {
        let readme = include_str!("../../README.md");
        for setting in SETTINGS {
            assert!(
                readme.contains(&format!("| {} |", setting.name))
                    || readme.contains(&format!("{} /", setting.name))
                    || readme.contains(&format!("/ {} |", setting.name)),
                "README.md's settings table lacks `{}`",
                setting.name
            );
        }
    }

    #[test]
    fn misspelled_names_get_a_suggestion() {
        assert_eq!(closest("helth_path"), Some("health_path"));
        assert_eq!(closest("imgae"), Some("image"));
        assert_eq!(closest("HEALTH-TIMEOUT"), Some("health_timeout"));
        assert_eq!(closest("completely_unrelated"), None);
        // Two swapped pairs: two typos, four edits by plain Levenshtein distance.
        assert_eq!(closest("helath_ptah"), Some("health_path"));
        assert_eq!(did_you_mean("hots"), " (did you mean `host`?)");
    }

    #[test]
    fn names_map_to_every_source() {
        assert_eq!(flag_name("health_timeout"), "health-timeout");
        assert_eq!(env_name("health_timeout"), "BLUEGREEN_HEALTH_TIMEOUT");
        assert_eq!(input_name("docker_token"), "INPUT_DOCKER_TOKEN");
        assert!(find("docker_token").unwrap().secret && !find("host").unwrap().secret);
    }
}
