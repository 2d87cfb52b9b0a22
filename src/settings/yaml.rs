//! All YAML the project reads: the `bluegreen.yml` settings file.
//!
//! The file is a flat mapping of setting names to scalars; lists (for `build_args`, `run_args`)
//! become one value per line, as the same setting would be written in an action input.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde_norway::Value;

use super::spec;

/// Parses the settings file text; unknown keys and non-scalar values are errors naming the key.
pub fn parse_settings_file(text: &str, origin: &str) -> Result<BTreeMap<String, String>> {
    check_shape(text, origin)?;
    let document: Value =
        serde_norway::from_str(text).with_context(|| format!("{origin}: not valid YAML"))?;
    let mapping = match document {
        Value::Null => return Ok(BTreeMap::new()),
        Value::Mapping(mapping) => mapping,
        _ => bail!("{origin}: expected a mapping of setting names to values"),
    };
    let mut problems = Vec::new();
    let mut values = BTreeMap::new();
    for (key, value) in mapping {
        let Some(key) = key.as_str().map(str::to_owned) else {
            let shown = serde_norway::to_string(&key).unwrap_or_default();
            problems.push(format!(
                "{origin}: keys must be setting names, found `{}`",
                shown.trim()
            ));
            continue;
        };
        if spec::find(&key).is_none() {
            problems.push(format!(
                "{origin}: unknown setting `{key}`{}",
                spec::did_you_mean(&key)
            ));
            continue;
        }
        match scalar_text(&value) {
            Some(text) => {
                values.insert(key, text);
            }
            None => problems.push(format!(
                "{origin}: setting `{key}` must be a string, number, boolean or list of strings"
            )),
        }
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(values)
}

/// The settings file is a flat mapping: anything far bigger or deeper is refused before the
/// parser sees it (deeply nested flow collections make it take minutes).
fn check_shape(text: &str, origin: &str) -> Result<()> {
    const MAX_BYTES: usize = 1024 * 1024;
    const MAX_DEPTH: usize = 16;
    if text.len() > MAX_BYTES {
        bail!(
            "{origin}: {} bytes is too large for a settings file",
            text.len()
        );
    }
    let mut depth = 0usize;
    let mut quote = None::<char>;
    for line in text.lines() {
        let mut in_comment = false;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '#') => in_comment = true,
                _ if in_comment => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '[' | '{') => depth += 1,
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            if depth > MAX_DEPTH {
                bail!("{origin}: nested more than {MAX_DEPTH} levels deep; settings are a flat mapping");
            }
        }
        let indent = line.len() - line.trim_start().len();
        if indent > 8 * MAX_DEPTH {
            bail!(
                "{origin}: nested more than {MAX_DEPTH} levels deep; settings are a flat mapping"
            );
        }
    }
    Ok(())
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) => Some(text.clone()),
        Value::Sequence(items) => {
            let lines: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    Value::Sequence(_) | Value::Mapping(_) | Value::Null => None,
                    other => scalar_text(other),
                })
                .collect();
            lines.map(|lines| lines.join("\n"))
        }
        Value::Mapping(_) | Value::Tagged(_) => None,
    }
}

/// One input as an `action.yml` declares it: its default and its description.
#[cfg(test)]
#[derive(Debug)]
pub struct ActionInput {
    pub default: Option<String>,
    pub description: String,
}

/// The inputs and output names declared by an `action.yml`.
#[cfg(test)]
pub fn action_metadata(text: &str) -> Result<(BTreeMap<String, ActionInput>, Vec<String>)> {
    let document: Value = serde_norway::from_str(text).context("action.yml is not valid YAML")?;
    let inputs = document["inputs"]
        .as_mapping()
        .context("action.yml has no inputs")?
        .iter()
        .map(|(name, input)| {
            let declared = ActionInput {
                default: input["default"].as_str().map(str::to_owned),
                description: input["description"].as_str().unwrap_or_default().to_owned(),
            };
            (name.as_str().unwrap_or_default().to_owned(), declared)
        })
        .collect();
    let outputs = document["outputs"]
        .as_mapping()
        .context("action.yml has no outputs")?
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    Ok((inputs, outputs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_scalars_and_lists() {
        let values = parse_settings_file(
            "host: 1.2.3.4\nport: 2222\nkeep_old: false\nrun_args:\n  - --memory=512m\n  - --cpus=1\n",
            "bluegreen.yml",
        )
        .unwrap();
        assert_eq!(values["host"], "1.2.3.4");
        assert_eq!(values["port"], "2222");
        assert_eq!(values["keep_old"], "false");
        assert_eq!(values["run_args"], "--memory=512m\n--cpus=1");
    }

    #[test]
    fn deep_or_huge_files_are_refused_quickly() {
        let deep = format!("host: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
        let started = std::time::Instant::now();
        let error = parse_settings_file(&deep, "bluegreen.yml").unwrap_err();
        assert!(
            error.to_string().contains("nested more than 16 levels"),
            "{error}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let quoted = parse_settings_file("health_expect: '[[[[[[[[[[[[[[[[[[[[['\n", "f").unwrap();
        assert_eq!(quoted["health_expect"], "[[[[[[[[[[[[[[[[[[[[[");
        let error = parse_settings_file("1: x\n", "bluegreen.yml").unwrap_err();
        assert!(error.to_string().contains("found `1`"), "{error}");
    }

    #[test]
    fn unknown_keys_are_errors_naming_every_key() {
        let error = parse_settings_file("hots: x\nimgae: y\n", "bluegreen.yml").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("unknown setting `hots`"), "{text}");
        assert!(
            text.contains("unknown setting `imgae` (did you mean `image`?)"),
            "{text}"
        );
    }

    /// The runner passes every declared default as `INPUT_*`, which would override
    /// `bluegreen.yml`: so no input declares one except `github_token`, and the description
    /// names the binary's default instead.
    #[test]
    fn action_yml_declares_every_setting_without_a_default() {
        let (inputs, outputs) = action_metadata(include_str!("../../action.yml")).unwrap();
        let mut names: Vec<&str> = spec::SETTINGS.iter().map(|s| s.name).collect();
        names.push("command");
        names.push("to");
        names.sort();
        assert_eq!(inputs.keys().map(String::as_str).collect::<Vec<_>>(), names);
        for (name, input) in &inputs {
            let expected = (name == "github_token").then_some("${{ github.token }}");
            assert_eq!(
                input.default.as_deref(),
                expected,
                "default of input {name}"
            );
        }
        for setting in spec::SETTINGS {
            let description = &inputs[setting.name].description;
            match setting.default {
                Some(default) if setting.name != "github_token" => assert!(
                    description.ends_with(&format!("(default: {default})")),
                    "input {} should name its default {default}: {description}",
                    setting.name
                ),
                _ => assert!(!description.contains("(default:"), "{description}"),
            }
        }
        assert_eq!(
            outputs,
            [
                "result",
                "serving_color",
                "color",
                "previous_color",
                "image",
                "digest",
                "sha"
            ]
        );
    }

    #[test]
    fn nested_mappings_are_rejected() {
        let error = parse_settings_file("host:\n  name: x\n", "f.yml").unwrap_err();
        assert!(error.to_string().contains("setting `host` must be"));
    }
}
