//! The typed, validated configuration. Built once from [`RawSettings`]; every problem is
//! collected and reported together, each naming its setting, before anything touches a server.

use std::path::PathBuf;
use std::time::Duration;

use super::limits;
use super::sources::RawSettings;
use super::values::{self, Secret};
pub use super::verify_url::VerifyUrl;

#[derive(Clone, Debug)]
pub enum KeySource {
    Content(Secret),
    File(PathBuf),
}

#[derive(Clone, Debug)]
pub enum HostKeyCheck {
    KnownHosts(String),
    Fingerprint(String),
    AcceptNew,
}

#[derive(Clone, Debug)]
pub struct ContainerMode {
    pub container_port: u16,
    pub env_file: Option<String>,
    pub run_args: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct ComposeMode {
    pub file: String,
    pub project: Option<String>,
    pub blue_service: String,
    pub green_service: String,
}

/// Process mode: no Docker on the server; each color is the operator's `run_command`, run
/// from an uploaded release of `artifact`.
#[derive(Clone, Debug)]
pub struct ProcessMode {
    pub run_command: String,
    /// The local file to upload; `None`: the one jar under build/libs or target (found at deploy).
    pub artifact: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub enum Mode {
    Container(ContainerMode),
    Compose(ComposeMode),
    Process(ProcessMode),
}

/// How traffic is moved from one color to the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrafficSwitch {
    /// Rewrite the switch file nginx includes, `nginx -t`, graceful reload.
    Nginx,
    /// Replace one nftables DNAT rule for `service_port`; nginx is not reloaded.
    /// `owns_switch_file`: chosen by `auto`, so bluegreen also points the switch file at
    /// `service_port` (once, with one reload); an explicit `nftables` leaves nginx to the user.
    Nftables {
        service_port: u16,
        owns_switch_file: bool,
    },
    /// The zero-error switch the server supports, decided on the server at connect time
    /// ([`crate::engine::traffic`]): nftables where `nft` works with privileges, else nginx.
    Auto { service_port: u16 },
}

#[derive(Clone, Debug)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub key: KeySource,
    pub host_key: HostKeyCheck,
    /// A bastion (`user@host:port`) the SSH connection goes through.
    pub proxy_jump: Option<String>,
    pub sudo: bool,
    pub image: String,
    pub registry: String,
    pub docker_username: Option<String>,
    pub docker_token: Option<Secret>,
    pub environment: String,
    pub build_command: String,
    pub context: PathBuf,
    pub dockerfile: String,
    pub build_args: Vec<String>,
    pub platform: String,
    pub app_name: String,
    pub mode: Mode,
    pub blue_port: u16,
    pub green_port: u16,
    pub health_path: String,
    pub health_timeout: Duration,
    pub health_interval: Duration,
    pub health_expect: Option<String>,
    pub nginx_switch_file: String,
    pub nginx_switch_template: String,
    pub nginx_test_command: String,
    pub nginx_reload_command: String,
    pub verify_url: VerifyUrl,
    pub traffic_switch: TrafficSwitch,
    /// What `traffic_switch: auto` chose on the server, and why (set once connected).
    pub traffic_switch_choice: Option<String>,
    pub drain_timeout: Duration,
    /// How long the old color keeps running after the switch while the new one is watched.
    pub bake_time: Duration,
    /// The share of 5xx (in percent) during the bake above which traffic switches back.
    pub bake_max_error_rate: f64,
    pub stop_timeout: Duration,
    pub keep_old: bool,
    pub lock_timeout: Duration,
    pub command_timeout: Duration,
    pub state_dir: String,
    pub github_token: Option<Secret>,
    pub deployment: bool,
    /// `env` and `secret_env`: added to the app's environment.
    pub app_env: AppEnv,
    pub pre_switch_command: Option<String>,
    pub post_deploy_command: Option<String>,
}

/// What the app gets in its environment beyond the image's own: plain values (visible in
/// `plan` and on argv) and secrets (only ever on stdin, masked).
#[derive(Clone, Debug, Default)]
pub struct AppEnv {
    pub plain: Vec<(String, String)>,
    pub secret: Vec<(String, Secret)>,
}

/// All problems found while checking settings; `Display` lists one per line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let noun = if self.0.len() == 1 {
            "problem"
        } else {
            "problems"
        };
        writeln!(f, "{} configuration {noun}:", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects problems while reading typed values, so all are reported at once.
struct Checker<'a> {
    raw: &'a RawSettings,
    problems: Vec<String>,
}

impl Checker<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.raw.get(name).map(str::to_owned)
    }

    fn required(&mut self, name: &str, hint: &str) -> String {
        self.text(name).unwrap_or_else(|| {
            self.problems.push(format!("{name}: is required ({hint})"));
            String::new()
        })
    }

    fn parsed<T: Default>(&mut self, name: &str, parse: impl Fn(&str) -> Result<T, String>) -> T {
        match self.raw.get(name).map(parse) {
            Some(Ok(value)) => value,
            Some(Err(message)) => {
                self.problems.push(format!("{name}: {message}"));
                T::default()
            }
            None => T::default(),
        }
    }

    fn check(&mut self, name: &str, value: &str, check: impl Fn(&str) -> Result<(), String>) {
        if let Err(message) = check(value) {
            self.problems.push(format!("{name}: {message}"));
        }
    }

    fn fail(&mut self, name: &str, message: impl std::fmt::Display) {
        self.problems.push(format!("{name}: {message}"));
    }
}

fn lines(text: Option<String>) -> Vec<String> {
    text.map(|text| {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// What the command at hand needs: `deploy` needs an image, `status` can name the app instead.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Image,
    AppOrImage,
    /// `build` talks to no server: SSH settings may be absent.
    BuildOnly,
}

/// Settings only a server connection needs.
const SERVER_SETTINGS: &[&str] = &[
    "host",
    "username",
    "key",
    "key_file",
    "known_hosts",
    "known_hosts_file",
    "host_fingerprint",
];

impl Config {
    pub fn from_raw(raw: &RawSettings, needs: Needs) -> Result<Config, ConfigErrors> {
        let mut c = Checker {
            raw,
            problems: Vec::new(),
        };
        let host = c.required(
            "host",
            "the server address, e.g. ec2-1-2-3-4.compute.amazonaws.com",
        );
        if host.contains(char::is_whitespace) || host.starts_with('-') {
            c.fail("host", format!("`{host}` is not a host name or address"));
        }
        let port = c.parsed("port", values::parse_port);
        let username = c.text("username").unwrap_or_default();
        if username.is_empty()
            || username.starts_with('-')
            || username.contains(char::is_whitespace)
        {
            c.fail("username", format!("`{username}` is not a user name"));
        }
        let key = read_key(&mut c);
        let host_key = read_host_key(&mut c, &host, port);
        let proxy_jump = read_proxy_jump(&mut c, &host_key);
        let sudo = match c.text("sudo").as_deref() {
            Some("auto") | None => username != "root",
            Some(other) => c.parsed("sudo", |_| {
                values::parse_bool(other).map_err(|e| format!("{e} or auto"))
            }),
        };
        let image = c.text("image").unwrap_or_default();
        let process_mode = c.text("run_command").is_some();
        if image.is_empty() && process_mode {
            if c.text("app_name").is_none() {
                c.fail(
                    "app_name",
                    "is required in process mode (run_command set, no image): it names the \
                     server state directory, e.g. shop",
                );
            }
        } else if image.is_empty() && (needs != Needs::AppOrImage || c.text("app_name").is_none()) {
            c.fail(
                "image",
                "is required (the image repository, e.g. myorg/myapp)",
            );
        } else if !image.is_empty() {
            c.check("image", &image, values::check_image_repository);
        }
        let environment = c.text("environment").unwrap_or_default();
        c.check("environment", &environment, values::check_tag_like);
        let app_name = c
            .text("app_name")
            .unwrap_or_else(|| image.rsplit('/').next().unwrap_or("").to_owned());
        if !app_name.is_empty() {
            c.check("app_name", &app_name, values::check_tag_like);
        }
        let mode = read_mode(&mut c);
        let blue_port = c.parsed("blue_port", values::parse_port);
        let green_port = c.parsed("green_port", values::parse_port);
        if blue_port != 0 && blue_port == green_port {
            c.fail(
                "green_port",
                format!("must differ from blue_port (both are {blue_port})"),
            );
        }
        let health_path = c.text("health_path").unwrap_or_default();
        if !health_path.starts_with('/') {
            c.fail("health_path", format!("`{health_path}` must start with /"));
        } else {
            c.check("health_path", &health_path, limits::check_url_path);
        }
        let health_interval = c.parsed("health_interval", values::parse_duration);
        if health_interval.is_zero() && c.text("health_interval").is_some() {
            c.fail("health_interval", "must be greater than zero");
        }
        let template = c.text("nginx_switch_template").unwrap_or_default();
        c.check("nginx_switch_template", &template, check_template);
        let verify_text = c
            .text("verify_url")
            .unwrap_or_else(|| format!("http://127.0.0.1{health_path}"));
        let verify_url = VerifyUrl::parse(&verify_text).unwrap_or_else(|message| {
            c.fail("verify_url", message);
            VerifyUrl {
                host: "127.0.0.1".into(),
                port: 80,
                path: health_path.clone(),
            }
        });
        let build_args = lines(c.text("build_args"));
        for arg in &build_args {
            if !arg.contains('=') || arg.starts_with('=') {
                c.fail("build_args", format!("`{arg}` is not KEY=VALUE"));
            }
        }
        let platform = c.text("platform").unwrap_or_default();
        if !platform.contains('/') {
            c.fail(
                "platform",
                format!("`{platform}` is not os/arch, e.g. linux/amd64"),
            );
        }
        let traffic_switch = match c.text("traffic_switch").as_deref() {
            Some("nftables") => {
                let service_port = c.parsed("service_port", values::parse_port);
                if service_port == blue_port || service_port == green_port {
                    c.fail(
                        "service_port",
                        format!("must differ from blue_port and green_port (it is {service_port})"),
                    );
                }
                TrafficSwitch::Nftables {
                    service_port,
                    owns_switch_file: false,
                }
            }
            Some("nginx") => TrafficSwitch::Nginx,
            Some("auto") | None => TrafficSwitch::Auto {
                service_port: c.parsed("service_port", values::parse_port),
            },
            Some(other) => {
                c.fail(
                    "traffic_switch",
                    format!("`{other}` is not auto, nginx or nftables"),
                );
                TrafficSwitch::Nginx
            }
        };
        let state_dir = c
            .text("state_dir")
            .unwrap_or_else(|| format!("~/.bluegreen/{app_name}"));
        let config = Config {
            port,
            username,
            key,
            host_key,
            proxy_jump,
            sudo,
            registry: c
                .text("registry")
                .unwrap_or_else(|| values::registry_of(&image)),
            docker_username: c.text("docker_username"),
            // Process mode pulls nothing: a DOCKER_TOKEN the workflow passes anyway is ignored
            // (the caller says so), not refused for want of docker_username.
            docker_token: (c.text("docker_token").filter(|_| !process_mode)).map(Secret::new),
            environment,
            build_command: c.text("build_command").unwrap_or_default(),
            context: PathBuf::from(values::expand_home(&c.text("context").unwrap_or_default())),
            dockerfile: c.text("dockerfile").unwrap_or_default(),
            build_args,
            platform,
            mode,
            blue_port,
            green_port,
            health_path,
            health_timeout: c.parsed("health_timeout", values::parse_duration),
            health_interval,
            health_expect: c.text("health_expect"),
            nginx_switch_file: c.text("nginx_switch_file").unwrap_or_default(),
            nginx_switch_template: template,
            nginx_test_command: c.text("nginx_test_command").unwrap_or_default(),
            nginx_reload_command: c.text("nginx_reload_command").unwrap_or_default(),
            verify_url,
            traffic_switch,
            traffic_switch_choice: None,
            drain_timeout: c.parsed("drain_timeout", values::parse_duration),
            bake_time: c.parsed("bake_time", values::parse_duration),
            bake_max_error_rate: c.parsed("bake_max_error_rate", values::parse_percent),
            stop_timeout: whole_seconds(&mut c, "stop_timeout", 0),
            keep_old: c.parsed("keep_old", values::parse_bool),
            lock_timeout: whole_seconds(&mut c, "lock_timeout", 1),
            command_timeout: whole_seconds(&mut c, "command_timeout", 1),
            state_dir,
            github_token: c.text("github_token").map(Secret::new),
            deployment: c.parsed("deployment", values::parse_bool),
            host,
            image,
            app_name,
            app_env: AppEnv {
                plain: env_lines(&mut c, "env"),
                secret: env_lines(&mut c, "secret_env")
                    .into_iter()
                    .map(|(key, value)| (key, Secret::new(value)))
                    .collect(),
            },
            pre_switch_command: hook(&mut c, "pre_switch_command"),
            post_deploy_command: hook(&mut c, "post_deploy_command"),
        };
        check_env_sizes(&mut c, &config);
        if config.docker_token.is_some() && config.docker_username.is_none() {
            c.fail("docker_username", "is required when docker_token is set");
        }
        if needs == Needs::BuildOnly {
            c.problems
                .retain(|p| !SERVER_SETTINGS.contains(&p.split(':').next().unwrap_or("")));
        }
        if c.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(c.problems))
        }
    }

    /// The color whose port this is.
    pub fn color_of_port(&self, port: u16) -> Option<crate::color::Color> {
        crate::color::Color::BOTH
            .into_iter()
            .find(|color| self.port_of(*color) == port)
    }

    pub fn port_of(&self, color: crate::color::Color) -> u16 {
        match color {
            crate::color::Color::Blue => self.blue_port,
            crate::color::Color::Green => self.green_port,
        }
    }
}

/// A duration the server counts in whole seconds (`timeout`, `flock -w`, `docker stop -t`):
/// `1ms` would silently become 1 s (or 0 s), so a fraction or a value below `least` seconds
/// is refused rather than rounded.
fn whole_seconds(c: &mut Checker, name: &str, least: u64) -> Duration {
    let duration = c.parsed(name, values::parse_duration);
    let Some(text) = c.text(name) else {
        return duration;
    };
    if values::parse_duration(&text).is_err() {
        return duration;
    }
    if duration.as_secs() < least {
        c.fail(
            name,
            format!("`{text}` is too short: at least {least}s (the server counts whole seconds)"),
        );
    } else if duration.subsec_nanos() != 0 {
        c.fail(
            name,
            format!("`{text}` is not a whole number of seconds (the server counts whole seconds; use e.g. 2s)"),
        );
    }
    duration
}

fn read_key(c: &mut Checker) -> KeySource {
    match (c.text("key"), c.text("key_file")) {
        (Some(key), _) => {
            if !key.contains("PRIVATE KEY") {
                c.fail(
                    "key",
                    "does not look like an SSH private key (no PRIVATE KEY header)",
                );
            }
            KeySource::Content(Secret::new(key))
        }
        (None, Some(path)) => {
            let path = values::expand_home(&path);
            match std::fs::read_to_string(&path) {
                Ok(text) if text.contains("PRIVATE KEY") => {}
                Ok(_) => c.fail(
                    "key_file",
                    format!("{path} does not look like an SSH private key"),
                ),
                Err(error) => c.fail("key_file", format!("cannot read {path}: {error}")),
            }
            KeySource::File(PathBuf::from(path))
        }
        (None, None) => {
            c.fail(
                "key",
                "one of key or key_file is required (the SSH private key)",
            );
            KeySource::File(PathBuf::new())
        }
    }
}

/// `[user@]host[:port]`; the bastion's host key is checked against `known_hosts` like the
/// server's, so a pinned `host_fingerprint` (one key) cannot cover it.
fn read_proxy_jump(c: &mut Checker, host_key: &HostKeyCheck) -> Option<String> {
    let jump = c.text("proxy_jump")?;
    let (user, host_port) = match jump.rsplit_once('@') {
        Some((user, host_port)) => (Some(user), host_port),
        None => (None, jump.as_str()),
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.starts_with('[') => (host, Some(port)),
        _ => (host_port, None),
    };
    let plain = |text: &str| {
        !text.is_empty()
            && !text.starts_with('-')
            && text
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "._-[]:".contains(ch))
    };
    let port_ok = port.is_none_or(|p| values::parse_port(p).is_ok());
    // A user name ssh would take for something else (`-o…`, a path) fails later as "No such
    // file or directory"; the portable user name characters only.
    let user_ok = user.is_none_or(|user| {
        !user.is_empty()
            && !user.starts_with('-')
            && user
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
    });
    if !plain(host) || !port_ok || !user_ok || jump.contains(char::is_whitespace) {
        c.fail(
            "proxy_jump",
            format!("`{jump}` is not user@host:port (e.g. ec2-user@bastion.example.com:22)"),
        );
    }
    if matches!(host_key, HostKeyCheck::Fingerprint(_)) {
        c.fail(
            "proxy_jump",
            "needs known_hosts (or known_hosts_file) holding both the bastion's and the server's \
             keys; host_fingerprint pins only the server's",
        );
    }
    Some(jump)
}

fn read_host_key(c: &mut Checker, host: &str, port: u16) -> HostKeyCheck {
    let accept_new = c.parsed("accept_new_host_key", values::parse_bool);
    let known_hosts = match (c.text("known_hosts"), c.text("known_hosts_file")) {
        (Some(text), _) => Some(("known_hosts", text)),
        (None, Some(path)) => match std::fs::read_to_string(values::expand_home(&path)) {
            Ok(text) => Some(("known_hosts_file", text)),
            Err(error) => {
                c.fail("known_hosts_file", format!("cannot read {path}: {error}"));
                None
            }
        },
        (None, None) => None,
    };
    if let Some((name, text)) = known_hosts {
        if let Err(message) = crate::remote::hostkey::check_known_hosts(&text) {
            c.fail(name, message);
        }
        return HostKeyCheck::KnownHosts(text);
    }
    if let Some(fingerprint) = c.text("host_fingerprint") {
        let hash = fingerprint.strip_prefix("SHA256:").unwrap_or("");
        if hash.len() != 43 {
            c.fail(
                "host_fingerprint",
                format!("`{fingerprint}` is not SHA256:<43 base64 characters>"),
            );
        }
        return HostKeyCheck::Fingerprint(fingerprint);
    }
    if accept_new {
        return HostKeyCheck::AcceptNew;
    }
    let port_flag = if port == 22 {
        String::new()
    } else {
        format!("-p {port} ")
    };
    c.fail(
        "known_hosts",
        format!(
            "no host key setting: give known_hosts (get it with `ssh-keyscan {port_flag}{host}`), \
             host_fingerprint, or accept_new_host_key: true"
        ),
    );
    HostKeyCheck::AcceptNew
}

fn read_mode(c: &mut Checker) -> Mode {
    let container_port = c.parsed("container_port", values::parse_port);
    if let Some(run_command) = c.text("run_command") {
        if c.text("compose_file").is_some() {
            c.fail(
                "run_command",
                "cannot be combined with compose_file (run_command selects process mode, \
                 compose_file compose mode); remove one",
            );
        }
        for word in placeholders(&run_command) {
            if !["port", "color", "artifact"].contains(&word.as_str()) {
                c.fail(
                    "run_command",
                    format!(
                        "unknown placeholder `{{{word}}}` (use {{port}}, {{color}}, {{artifact}})"
                    ),
                );
            }
        }
        let artifact = c
            .text("artifact")
            .map(|path| PathBuf::from(values::expand_home(&path)));
        if let Some(name) = (artifact.as_ref())
            .and_then(|path| path.file_name())
            .map(|name| name.to_string_lossy())
            .filter(|name| name.starts_with('.'))
        {
            // The server keeps the file under its own name and finds it with a `*` glob,
            // which skips hidden files: the color would never start.
            c.fail(
                "artifact",
                format!(
                    "`{name}` is a hidden file name (starts with `.`); the server would never \
                     find it to start; rename the file"
                ),
            );
        }
        return Mode::Process(ProcessMode {
            run_command,
            artifact,
        });
    }
    match c.text("compose_file") {
        Some(file) => {
            let services = (
                c.text("blue_service").unwrap_or_default(),
                c.text("green_service").unwrap_or_default(),
            );
            if services.0 == services.1 {
                c.fail(
                    "green_service",
                    format!("must differ from blue_service (both are `{}`)", services.0),
                );
            }
            Mode::Compose(ComposeMode {
                file,
                project: c.text("compose_project"),
                blue_service: services.0,
                green_service: services.1,
            })
        }
        None => Mode::Container(ContainerMode {
            container_port,
            env_file: c.text("env_file"),
            run_args: lines(c.text("run_args")),
        }),
    }
}

/// `KEY=VALUE` lines; the key must be a valid environment variable name. A secret's value is
/// never repeated in a message.
fn env_lines(c: &mut Checker, name: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (number, line) in lines(c.text(name)).into_iter().enumerate() {
        let Some((key, value)) = line.split_once('=') else {
            c.fail(name, format!("line {} is not KEY=VALUE", number + 1));
            continue;
        };
        let key = key.trim();
        let valid = key.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_')
            && key
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if !valid {
            c.fail(
                name,
                format!(
                    "line {}: `{key}` is not an environment variable name",
                    number + 1
                ),
            );
            continue;
        }
        pairs.push((key.to_owned(), value.to_owned()));
    }
    pairs
}

/// `env` and `secret_env` values the server would refuse (too long for execve, docker's env
/// file or the one SSH command line), named here rather than failing mid-deploy.
fn check_env_sizes(c: &mut Checker, config: &Config) {
    let route = match config.mode {
        Mode::Container(_) => limits::EnvRoute::Container,
        Mode::Compose(_) => limits::EnvRoute::Compose,
        Mode::Process(_) => limits::EnvRoute::Process,
    };
    let plain: Vec<(String, &str)> = (config.app_env.plain.iter())
        .map(|(key, value)| (key.clone(), value.as_str()))
        .collect();
    let secret: Vec<(String, &str)> = (config.app_env.secret.iter())
        .map(|(key, value)| (key.clone(), value.expose()))
        .collect();
    for problem in limits::check_env_sizes(&plain, false, route) {
        c.fail("env", problem);
    }
    for problem in limits::check_env_sizes(&secret, true, route) {
        c.fail("secret_env", problem);
    }
}

/// A hook command: placeholders `{color}`, `{port}`, `{container}`, `{image}` only.
fn hook(c: &mut Checker, name: &str) -> Option<String> {
    let command = c.text(name)?;
    for word in placeholders(&command) {
        if !["color", "port", "container", "image"].contains(&word.as_str()) {
            c.fail(
                name,
                format!("unknown placeholder `{{{word}}}` (use {{color}}, {{port}}, {{container}}, {{image}})"),
            );
        }
    }
    Some(command)
}

fn placeholders(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let word_len = after
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
            .unwrap_or(after.len());
        if word_len > 0 && after[word_len..].starts_with('}') {
            found.push(after[..word_len].to_owned());
        }
        rest = after;
    }
    found
}

/// Only `{port}`, `{color}` and `{service}` are placeholders; nginx's own `{ … }` blocks pass.
pub fn check_template(template: &str) -> Result<(), String> {
    if let Some(word) = placeholders(template)
        .into_iter()
        .find(|word| !["port", "color", "service"].contains(&word.as_str()))
    {
        return Err(format!(
            "unknown placeholder `{{{word}}}` (use {{port}}, {{color}}, {{service}})"
        ));
    }
    if template.trim().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(())
}

#[cfg(test)]
mod process_mode_tests {
    use super::*;
    use crate::testing::raw;

    #[test]
    fn run_command_selects_process_mode_without_an_image() {
        let config = Config::from_raw(
            &raw(&[
                ("run_command", "java -jar {artifact} --server.port={port}"),
                ("app_name", "shop"),
                ("artifact", "build/libs/shop.jar"),
            ]),
            Needs::Image,
        )
        .unwrap();
        let Mode::Process(mode) = &config.mode else {
            panic!("not process mode");
        };
        assert_eq!(mode.artifact, Some(PathBuf::from("build/libs/shop.jar")));
        assert_eq!(config.state_dir, "~/.bluegreen/shop");
    }

    #[test]
    fn process_mode_problems_name_their_settings() {
        let errors = Config::from_raw(
            &raw(&[
                ("run_command", "java -jar {jar}"),
                ("compose_file", "/srv/compose.yml"),
            ]),
            Needs::Image,
        )
        .unwrap_err()
        .0;
        assert!(errors
            .iter()
            .any(|e| e.starts_with("app_name: is required in process mode")));
        assert!(errors
            .iter()
            .any(|e| e.contains("cannot be combined with compose_file")));
        assert!(errors
            .iter()
            .any(|e| e.contains("unknown placeholder `{jar}`")));
        assert!(
            !errors.iter().any(|e| e.starts_with("image:")),
            "{errors:?}"
        );
    }
}
