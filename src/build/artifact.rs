//! Process mode's release: the local artifact (the one jar the build made, or `artifact`),
//! read once and named by its content: `release:` and the first 12 hex digits of its sha256.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::failure::Failure;
use crate::settings::{Config, ProcessMode};

/// The prefix that marks a release where container modes have an image reference.
pub const RELEASE_PREFIX: &str = "release:";

#[derive(Clone, Debug, PartialEq)]
pub struct Release {
    /// First 12 hex digits of the artifact's sha256.
    pub id: String,
    /// The artifact's file name, kept on the server (`releases/{id}/{file_name}`).
    pub file_name: String,
    pub bytes: Vec<u8>,
}

impl Release {
    pub fn from_bytes(file_name: &str, bytes: Vec<u8>) -> Release {
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let id: String = digest.as_ref()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Release {
            id,
            file_name: file_name.to_owned(),
            bytes,
        }
    }

    /// `release:0123abcd4567`, what state.json, history and the summary show.
    pub fn reference(&self) -> String {
        format!("{RELEASE_PREFIX}{}", self.id)
    }

    /// Reads the artifact the settings name (or the one jar the build made).
    pub fn read(config: &Config, mode: &ProcessMode) -> Result<Release> {
        let path = match &mode.artifact {
            Some(path) if path.is_absolute() => path.clone(),
            Some(path) => config.context.join(path),
            None => find_jar(&config.context)?,
        };
        let bytes = std::fs::read(&path).map_err(|error| {
            Failure::config(format!(
                "artifact: cannot read {}: {error}; nothing on the server was touched; build it \
                 first or set artifact to the file to upload",
                path.display()
            ))
        })?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "app.jar".into());
        Ok(Release::from_bytes(&file_name, bytes))
    }
}

/// Process mode: the release a deploy of the local artifact uploads; `None` in other modes.
pub fn local_release(config: &Config) -> Result<Option<Release>> {
    match &config.mode {
        crate::settings::Mode::Process(mode) => Release::read(config, mode).map(Some),
        _ => Ok(None),
    }
}

/// The release id in a reference (`release:ID`), when it is one.
pub fn release_id(reference: &str) -> Option<&str> {
    reference.strip_prefix(RELEASE_PREFIX)
}

/// The single jar under `build/libs/` (Gradle) or `target/` (Maven), `*-plain.jar` excluded.
pub fn find_jar(context: &Path) -> Result<PathBuf> {
    let mut jars = Vec::new();
    for dir in ["build/libs", "target"] {
        let Ok(entries) = std::fs::read_dir(context.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // A hidden jar is no build's output (and the server's glob would skip it).
            if name.ends_with(".jar") && !name.ends_with("-plain.jar") && !name.starts_with('.') {
                jars.push(entry.path());
            }
        }
    }
    jars.sort();
    match jars.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Failure::config(format!(
            "artifact: no jar under {0}/build/libs or {0}/target; nothing on the server was \
             touched; build the jar first (build_command) or set artifact to the file to upload",
            context.display()
        ))
        .into()),
        several => Err(Failure::config(format!(
            "artifact: {} jars found ({}), so which one to upload cannot be told; nothing on the \
             server was touched; set artifact to the one to upload",
            several.len(),
            several
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_is_named_by_its_content() {
        let release = Release::from_bytes("app.jar", b"hello".to_vec());
        // sha256("hello") = 2cf24dba5fb0a30e...
        assert_eq!(release.reference(), "release:2cf24dba5fb0");
        assert_eq!(release_id("release:2cf24dba5fb0"), Some("2cf24dba5fb0"));
        assert_eq!(release_id("myorg/app:dev"), None);
    }

    #[test]
    fn the_one_jar_is_found_and_plain_jars_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let libs = dir.path().join("build/libs");
        std::fs::create_dir_all(&libs).unwrap();
        let none = find_jar(dir.path()).unwrap_err().to_string();
        assert!(none.starts_with("artifact: no jar under"), "{none}");
        std::fs::write(libs.join("app-1.0.jar"), "x").unwrap();
        std::fs::write(libs.join("app-1.0-plain.jar"), "x").unwrap();
        assert_eq!(find_jar(dir.path()).unwrap(), libs.join("app-1.0.jar"));
        std::fs::create_dir_all(dir.path().join("target")).unwrap();
        std::fs::write(dir.path().join("target/other.jar"), "x").unwrap();
        let several = find_jar(dir.path()).unwrap_err().to_string();
        assert!(several.contains("2 jars found"), "{several}");
    }
}
