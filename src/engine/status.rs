//! `bluegreen status`: live color, live image, lock holder, recent history.

use anyhow::Result;
use serde::Serialize;

use super::observe::{self, ColorContainer};
use super::record::{HistoryEntry, LockRecord};
use super::Ctx;
use crate::color::Color;
use crate::remote::Host;

#[derive(Debug, Serialize)]
pub struct Status {
    pub app: String,
    pub live_color: Option<Color>,
    pub live_image: Option<String>,
    pub previous_color: Option<Color>,
    pub previous_image: Option<String>,
    pub lock: Option<LockRecord>,
    pub containers: Vec<ContainerStatus>,
    pub notes: Vec<String>,
    pub history: Vec<Numbered>,
}

/// A history entry with the number `rollback --to N` takes (successful entries only).
#[derive(Debug, Serialize)]
pub struct Numbered {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<usize>,
    #[serde(flatten)]
    pub entry: HistoryEntry,
}

/// Numbers the successful entries of `history` (newest first) from 1, as `rollback --to`
/// counts them.
pub fn number(history: Vec<HistoryEntry>) -> Vec<Numbered> {
    let mut next = 0;
    history
        .into_iter()
        .map(|entry| {
            let number = entry.restorable().then(|| {
                next += 1;
                next
            });
            Numbered { number, entry }
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct ContainerStatus {
    pub color: Color,
    pub name: String,
    pub state: String,
    pub image: String,
}

pub async fn status<H: Host>(ctx: &Ctx<'_, H>) -> Result<Status> {
    let observed = observe::observe(ctx).await?;
    let live_image = observed
        .live
        .and_then(|live| observed.containers.get(&live).map(|c| c.image_ref.clone()))
        .or_else(|| {
            observed
                .state
                .live_image
                .clone()
                .filter(|_| observed.state.live_color == observed.live)
        });
    let previous_color = observed
        .live
        .map(Color::other)
        .filter(|_| observed.state.previous_color.is_some());
    let containers = Color::BOTH
        .iter()
        .filter_map(|color| {
            observed
                .containers
                .get(color)
                .map(|c: &ColorContainer| (color, c))
        })
        .map(|(color, c)| ContainerStatus {
            color: *color,
            name: c.name.clone(),
            state: c.status.clone(),
            image: c.image_ref.clone(),
        })
        .collect();
    Ok(Status {
        app: ctx.config.app_name.clone(),
        live_color: observed.live,
        live_image,
        previous_color,
        previous_image: observed
            .state
            .previous_image
            .clone()
            .filter(|_| previous_color.is_some()),
        lock: observed.lock,
        containers,
        notes: observed.notes,
        history: number(observed.history),
    })
}

impl Status {
    /// For a terminal: every value that came from the server passes through [`shown`], so a
    /// file there cannot move the cursor, retitle the window or forge a line.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let show = |c: Option<Color>| c.map_or("none".to_owned(), |c| c.to_string());
        out.push_str(&format!("app:        {}\n", shown(&self.app)));
        out.push_str(&format!(
            "live:       {} {}\n",
            show(self.live_color),
            shown(self.live_image.as_deref().unwrap_or(""))
        ));
        out.push_str(&format!(
            "previous:   {} {}\n",
            show(self.previous_color),
            shown(self.previous_image.as_deref().unwrap_or(""))
        ));
        let lock = self.lock.as_ref().map_or("free".to_owned(), |l| {
            format!("held by {}", shown(&l.holder.describe()))
        });
        out.push_str(&format!("lock:       {lock}\n"));
        for c in &self.containers {
            out.push_str(&format!(
                "container:  {} {} ({}) {}\n",
                c.color,
                shown(&c.name),
                shown(&c.state),
                shown(&c.image)
            ));
        }
        for note in &self.notes {
            out.push_str(&format!("note:       {}\n", shown(note)));
        }
        out.push_str(&self.history_lines());
        out
    }

    /// The history, numbered as `rollback --to N` takes it (only successful entries get N).
    fn history_lines(&self) -> String {
        if self.history.is_empty() {
            return "history:    none yet\n".into();
        }
        let mut out =
            String::from("history (newest first; `rollback --to N` takes a numbered entry):\n");
        for Numbered { number, entry: h } in &self.history {
            let number = number.map_or(String::new(), |n| n.to_string());
            let color = h.color.map_or("-".to_owned(), |c| c.to_string());
            let impact = h
                .impact
                .as_ref()
                .map(|impact| format!(" ({} requests through nginx)", impact.short()))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {number:>2}  {} {:<8} {:<9} {:<6} {}{}\n",
                shown(&h.time),
                shown(&h.action),
                shown(&h.result),
                color,
                shown(h.image.as_deref().unwrap_or("")),
                shown(&impact)
            ));
        }
        out
    }
}

/// `text` with every control character (escape, bell, carriage return, newline…) written as
/// a visible escape (`\u{1b}`), never sent to the terminal as is.
pub fn shown(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(result: &str, image: Option<&str>) -> HistoryEntry {
        HistoryEntry {
            time: "2026-12-06T10:00:00Z".into(),
            action: "deploy".into(),
            color: Some(Color::Green),
            image: image.map(str::to_owned),
            result: result.into(),
            previous_color: None,
            reason: None,
            seconds: 1.0,
            impact: None,
            sha: None,
        }
    }

    #[test]
    fn only_successful_entries_are_numbered_as_rollback_to_counts_them() {
        let history = vec![
            entry("success", Some("a@sha256:3")),
            entry("failed", Some("a@sha256:9")),
            entry("unchanged", Some("a@sha256:3")),
            entry("success", Some("a@sha256:2")),
        ];
        let expected: Vec<usize> = record_numbers(&history);
        let numbered = number(history);
        let numbers: Vec<Option<usize>> = numbered.iter().map(|n| n.number).collect();
        assert_eq!(numbers, [Some(1), None, None, Some(2)]);
        assert_eq!(expected, [1, 2]);
        let json = serde_json::to_value(&numbered).unwrap();
        assert_eq!(json[0]["number"], 1);
        assert_eq!(json[0]["image"], "a@sha256:3");
        assert!(json[1].get("number").is_none());
        let status = Status {
            app: "app".into(),
            live_color: Some(Color::Green),
            live_image: None,
            previous_color: None,
            previous_image: None,
            lock: None,
            containers: vec![],
            notes: vec![],
            history: numbered,
        };
        let human = status.human();
        assert!(
            human.contains(
                "history (newest first; `rollback --to N` takes a numbered entry):\n   1  \
                 2026-12-06T10:00:00Z deploy   success   green  a@sha256:3\n      \
                 2026-12-06T10:00:00Z deploy   failed    green  a@sha256:9\n"
            ),
            "{human}"
        );
    }

    fn record_numbers(history: &[HistoryEntry]) -> Vec<usize> {
        crate::engine::record::numbered(history)
            .map(|(n, _)| n)
            .collect()
    }
}
