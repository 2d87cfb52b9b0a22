//! The JSON records kept on the server: `state.json`, `history.jsonl`, `lock.json`.

use serde::{Deserialize, Serialize};

use super::counts::Impact;
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
    /// What the probe requests through nginx got during the run (absent in older entries and
    /// when nothing was counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
    /// The commit the image was built from, when known (absent in older entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
}

impl HistoryEntry {
    /// A successful deploy or rollback with a known image: what `rollback --to` can go back to.
    pub fn restorable(&self) -> bool {
        self.result == "success" && self.image.is_some()
    }
}

/// The successful entries of `history` (newest first), numbered from 1: the `N` that
/// `rollback --to N` takes and `status` shows.
pub fn numbered(history: &[HistoryEntry]) -> impl Iterator<Item = (usize, &HistoryEntry)> {
    history
        .iter()
        .filter(|entry| entry.restorable())
        .enumerate()
        .map(|(at, entry)| (at + 1, entry))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_written_before_the_impact_count_still_parse() {
        let old = r#"{"time":"2026-11-20T10:00:00Z","action":"deploy","color":"green","image":"a@sha256:1","result":"success","seconds":3.5}"#;
        let new = r#"{"time":"2026-11-21T10:00:00Z","action":"deploy","color":"blue","image":"a@sha256:2","result":"success","seconds":3.1,"impact":{"requests":40,"non_2xx":0,"server_errors":0,"unanswered":0,"blue":{"requests":30,"non_2xx":0,"server_errors":0,"unanswered":0}}}"#;
        let entries = parse_history(&[old.to_owned(), new.to_owned()]);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].impact, None);
        let impact = entries[0].impact.as_ref().expect("the newer entry has it");
        assert_eq!((impact.total.requests, impact.blue.requests), (40, 30));
        assert_eq!(impact.green.requests, 0);
    }
}
