//! The JSON records kept on the server: `state.json`, `history.jsonl`, `lock.json`.

use serde::{Deserialize, Serialize};

use crate::color::Color;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StateFile {
    pub live_color: Option<Color>,
    pub live_image: Option<String>,
    pub previous_color: Option<Color>,
    pub previous_image: Option<String>,
    pub updated: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HistoryEntry {
    pub time: String,
    pub action: String,
    pub color: Option<Color>,
    pub image: Option<String>,
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_color: Option<Color>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub seconds: f64,
}

/// Who holds the deploy lock; written by the holder, shown to those who wait.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    pub who: String,
    pub image: String,
    pub since: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
    pub client_pid: u32,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct LockRecord {
    pub server_pid: u32,
    pub holder: Holder,
}

impl Holder {
    pub fn describe(&self) -> String {
        let run = self
            .run_url
            .as_deref()
            .map(|url| format!(", run {url}"))
            .unwrap_or_default();
        format!(
            "{} deploying {} since {}{run}",
            self.who, self.image, self.since
        )
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn parse_history(lines: &[String]) -> Vec<HistoryEntry> {
    let mut entries: Vec<HistoryEntry> = lines
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    entries.reverse();
    entries
}
