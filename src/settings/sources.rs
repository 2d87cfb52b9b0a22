//! Gathers raw setting values from every source with the documented precedence:
//! flag > environment (`BLUEGREEN_*`) > action input (`INPUT_*`) > file > default.
//! An empty string means unset at every level.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use super::spec::{self, SETTINGS};
use super::yaml;

/// Where a value came from, so errors can say which knob to turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Environment,
    ActionInput,
    File,
    Default,
}

#[derive(Clone, Debug, Default)]
pub struct RawSettings {
    values: BTreeMap<&'static str, (String, Origin)>,
    /// `BLUEGREEN_*` variables that name no setting (a typo is ignored otherwise).
    pub unknown_variables: Vec<String>,
}

/// Everything the loader reads, gathered by the caller so loading itself is pure and testable.
#[derive(Default)]
pub struct Sources {
    pub flags: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    pub read_action_inputs: bool,
    pub file: Option<(String, String)>,
}

impl Sources {
    /// Reads the settings file: `explicit` must exist; otherwise `./bluegreen.yml` when present.
    pub fn read_file(&mut self, explicit: Option<&Path>) -> Result<()> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None if Path::new("bluegreen.yml").exists() => "bluegreen.yml".into(),
            None => return Ok(()),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("config: cannot read settings file {}", path.display()))?;
        self.file = Some((path.display().to_string(), text));
        Ok(())
    }
}

/// `BLUEGREEN_*` names the tool itself gives meaning to without being settings.
const NOT_SETTINGS: &[&str] = &["COLOR", "BIN", "LOG"];

impl RawSettings {
    pub fn gather(sources: &Sources) -> Result<Self> {
        let file_values = match &sources.file {
            Some((origin, text)) => yaml::parse_settings_file(text, origin)?,
            None => BTreeMap::new(),
        };
        let mut values = BTreeMap::new();
        for setting in SETTINGS {
            let name = setting.name;
            let env = |key: String| sources.env.get(&key).cloned();
            let candidates = [
                (sources.flags.get(name).cloned(), Origin::Flag),
                (env(spec::env_name(name)), Origin::Environment),
                (
                    sources
                        .read_action_inputs
                        .then(|| env(spec::input_name(name)))
                        .flatten(),
                    Origin::ActionInput,
                ),
                (file_values.get(name).cloned(), Origin::File),
                (setting.default.map(str::to_owned), Origin::Default),
            ];
            let chosen = candidates
                .into_iter()
                .find_map(|(value, origin)| value.filter(|v| !v.is_empty()).map(|v| (v, origin)));
            if let Some(chosen) = chosen {
                values.insert(name, chosen);
            }
        }
        let unknown_variables = sources
            .env
            .keys()
            .filter_map(|key| key.strip_prefix("BLUEGREEN_").map(|name| (key, name)))
            .filter(|(_, name)| !NOT_SETTINGS.contains(name))
            .filter(|(_, name)| spec::find(&name.to_ascii_lowercase()).is_none())
            .map(|(key, name)| format!("{key} names no setting{}", spec::did_you_mean(name)))
            .collect();
        Ok(Self {
            values,
            unknown_variables,
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|(value, _)| value.as_str())
    }

    /// Where a value came from (flag, environment, action input, file or default).
    #[cfg(test)]
    pub fn origin(&self, name: &str) -> Option<Origin> {
        self.values.get(name).map(|(_, origin)| *origin)
    }

    /// Values of secret settings, for masking.
    pub fn secrets(&self) -> Vec<String> {
        SETTINGS
            .iter()
            .filter(|spec| spec.secret)
            .filter_map(|spec| self.get(spec.name).map(|value| (spec.name, value)))
            .flat_map(|(name, value)| match name {
                // Each secret value is masked on its own: the lines are not secrets as a whole.
                "secret_env" => value
                    .lines()
                    .filter_map(|line| line.split_once('=').map(|(_, v)| v.trim().to_owned()))
                    .filter(|v| !v.is_empty())
                    .collect::<Vec<_>>(),
                _ => vec![value.to_owned()],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> Sources {
        Sources {
            file: Some((
                "f.yml".into(),
                "host: from-file\nport: 2200\nimage: a/b\n".into(),
            )),
            ..Sources::default()
        }
    }

    #[test]
    fn precedence_is_flag_env_input_file_default() {
        let mut sources = sources();
        assert_eq!(
            RawSettings::gather(&sources).unwrap().get("host"),
            Some("from-file")
        );
        sources.read_action_inputs = true;
        sources.env.insert("INPUT_HOST".into(), "from-input".into());
        assert_eq!(
            RawSettings::gather(&sources).unwrap().get("host"),
            Some("from-input")
        );
        sources
            .env
            .insert("BLUEGREEN_HOST".into(), "from-env".into());
        assert_eq!(
            RawSettings::gather(&sources).unwrap().get("host"),
            Some("from-env")
        );
        sources.flags.insert("host".into(), "from-flag".into());
        let raw = RawSettings::gather(&sources).unwrap();
        assert_eq!(raw.get("host"), Some("from-flag"));
        assert_eq!(raw.origin("host"), Some(Origin::Flag));
        assert_eq!(raw.get("username"), Some("ubuntu"));
        assert_eq!(raw.origin("username"), Some(Origin::Default));
    }

    #[test]
    fn a_misspelled_variable_is_named_with_a_suggestion() {
        let mut sources = sources();
        sources
            .env
            .insert("BLUEGREEN_HELTH_PATH".into(), "/up".into());
        let raw = RawSettings::gather(&sources).unwrap();
        assert_eq!(
            raw.unknown_variables,
            ["BLUEGREEN_HELTH_PATH names no setting (did you mean `health_path`?)"]
        );
    }

    #[test]
    fn empty_string_means_unset() {
        let mut sources = sources();
        sources.env.insert("BLUEGREEN_PORT".into(), String::new());
        assert_eq!(
            RawSettings::gather(&sources).unwrap().get("port"),
            Some("2200")
        );
    }

    #[test]
    fn action_inputs_are_ignored_outside_the_action() {
        let mut sources = sources();
        sources.env.insert("INPUT_HOST".into(), "from-input".into());
        assert_eq!(
            RawSettings::gather(&sources).unwrap().get("host"),
            Some("from-file")
        );
    }
}
