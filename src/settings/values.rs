//! Parsers for the typed values settings hold: durations, ports, booleans, image names, secrets.

use std::fmt;
use std::time::Duration;

/// A secret value: its `Debug` and `Display` never show the content.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `90` (seconds), `250ms`, `90s`, `2m`, `1h`.
const MAX_DURATION_SECS: f64 = 7.0 * 24.0 * 3600.0;

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "`{text}` is not a duration (use e.g. 90, 250ms, 90s, 2m, 1h)"
        ));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (use e.g. 90, 250ms, 90s, 2m, 1h)"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "`{text}`: unknown duration unit `{other}` (use ms, s, m or h)"
            ))
        }
    };
    // A week is longer than any wait here could sensibly be; it also keeps every later
    // arithmetic on durations far from overflow.
    if !(0.0..=MAX_DURATION_SECS).contains(&seconds) {
        return Err(format!("`{text}` is too long (at most 7 days)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A share in percent: `1%`, `0.5%` (the `%` is required, so `1` cannot mean 100%).
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let not_percent = || format!("`{text}` is not a percentage (use e.g. 1% or 0.5%)");
    let number = text.strip_suffix('%').ok_or_else(not_percent)?;
    let value: f64 = number.trim().parse().map_err(|_| not_percent())?;
    if !(0.0..=100.0).contains(&value) {
        return Err(format!("`{text}` is not between 0% and 100%"));
    }
    Ok(value)
}

/// `~` and `~/…` in a local path mean the home directory, as in a shell.
pub fn expand_home(path: &str) -> String {
    let home = || std::env::var("HOME").ok().filter(|h| !h.is_empty());
    match path.strip_prefix('~') {
        Some("") => home().unwrap_or_else(|| path.to_owned()),
        Some(rest) if rest.starts_with('/') => {
            home().map_or_else(|| path.to_owned(), |home| format!("{home}{rest}"))
        }
        _ => path.to_owned(),
    }
}

/// The registry an image reference names (`reg.example.com/team/app` → `reg.example.com`),
/// or Docker Hub when its first segment is not a host.
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.to_owned(),
        _ => "docker.io".to_owned(),
    }
}

pub fn parse_port(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u32>() {
        Ok(port) if (1..=65535).contains(&port) => Ok(port as u16),
        _ => Err(format!("`{text}` is not a port (1-65535)")),
    }
}

pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(format!("`{text}` is not true or false")),
    }
}

/// An image repository as written in `image`: `[registry/]path`, no tag or digest.
pub fn check_image_repository(text: &str) -> Result<(), String> {
    if text.contains('@') || last_segment_has_tag(text) {
        return Err(format!(
            "`{text}`: give the repository only (e.g. myorg/myapp); the tag comes from `environment`"
        ));
    }
    check_reference_chars(text)
}

/// A full reference as given to `deploy --image-ref`: `repo:tag` or `repo@sha256:…`.
pub fn check_image_reference(text: &str) -> Result<(), String> {
    if text.starts_with('-') {
        return Err(format!("`{text}` is not an image reference"));
    }
    if let Some((_, digest)) = text.split_once('@') {
        let hex = digest.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "`{text}`: a digest must be sha256: and 64 hex digits"
            ));
        }
    }
    check_reference_chars(text.split('@').next().unwrap_or(text))
}

fn last_segment_has_tag(text: &str) -> bool {
    text.rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'))
}

fn check_reference_chars(text: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/:".contains(c);
    let path_ok = text.rsplit('/').next().is_some_and(|last| {
        let name = last.split(':').next().unwrap_or("");
        !name.is_empty() && name.chars().all(|c| !c.is_ascii_uppercase())
    });
    if text.is_empty() || !text.chars().all(allowed) || text.starts_with('/') || !path_ok {
        return Err(format!("`{text}` is not a valid image reference"));
    }
    Ok(())
}

/// Docker tags: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; also safe in container names.
pub fn check_tag_like(text: &str) -> Result<(), String> {
    let mut chars = text.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok
        || text.len() > 100
        || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(format!(
            "`{text}` may only contain letters, digits, `_`, `.`, `-`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        assert!(parse_duration("8d").is_err());
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("1%"), Ok(1.0));
        assert_eq!(parse_percent(" 0.5% "), Ok(0.5));
        assert_eq!(parse_percent("100%"), Ok(100.0));
        assert!(parse_percent("1").is_err());
        assert!(parse_percent("101%").is_err());
        assert!(parse_percent("-1%").is_err());
        assert!(parse_percent("lots%").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("8081"), Ok(8081));
        assert!(parse_port("0").is_err());
        assert!(parse_port("70000").is_err());
        assert!(parse_port("http").is_err());
    }

    #[test]
    fn image_names() {
        assert!(check_image_repository("myorg/myapp").is_ok());
        assert!(check_image_repository("127.0.0.1:5000/team/app").is_ok());
        assert!(check_image_repository("myorg/myapp:dev").is_err());
        assert!(check_image_repository("MyOrg/My App").is_err());
        assert!(check_image_reference("127.0.0.1:5000/app:dev").is_ok());
        let digest = format!("app@sha256:{}", "a".repeat(64));
        assert!(check_image_reference(&digest).is_ok());
        assert!(check_image_reference("app@sha256:123").is_err());
        assert!(check_image_reference("--help").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "*** Secret(***)");
    }

    #[test]
    fn home_is_expanded_in_local_paths() {
        let home = std::env::var("HOME").unwrap();
        assert_eq!(expand_home("~/.ssh/id"), format!("{home}/.ssh/id"));
        assert_eq!(expand_home("~"), home);
        assert_eq!(expand_home("/etc/x"), "/etc/x");
        assert_eq!(expand_home("~other/x"), "~other/x");
    }

    #[test]
    fn the_registry_is_the_images_host() {
        assert_eq!(registry_of("reg.example.com/team/app"), "reg.example.com");
        assert_eq!(registry_of("127.0.0.1:5000/app"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/app"), "localhost");
        assert_eq!(registry_of("myorg/myapp"), "docker.io");
        assert_eq!(registry_of("ubuntu"), "docker.io");
    }
}
