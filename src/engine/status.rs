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
    pub history: Vec<HistoryEntry>,
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
        history: observed.history,
    })
}

impl Status {
    pub fn human(&self) -> String {
        let mut out = String::new();
        let show = |c: Option<Color>| c.map_or("none".to_owned(), |c| c.to_string());
        out.push_str(&format!("app:        {}\n", self.app));
        out.push_str(&format!(
            "live:       {} {}\n",
            show(self.live_color),
            self.live_image.as_deref().unwrap_or("")
        ));
        out.push_str(&format!(
            "previous:   {} {}\n",
            show(self.previous_color),
            self.previous_image.as_deref().unwrap_or("")
        ));
        let lock = self.lock.as_ref().map_or("free".to_owned(), |l| {
            format!("held by {}", l.holder.describe())
        });
        out.push_str(&format!("lock:       {lock}\n"));
        for c in &self.containers {
            out.push_str(&format!(
                "container:  {} {} ({}) {}\n",
                c.color, c.name, c.state, c.image
            ));
        }
        for note in &self.notes {
            out.push_str(&format!("note:       {note}\n"));
        }
        out.push_str("history:\n");
        for h in self.history.iter().take(10) {
            let color = h.color.map_or("-".to_owned(), |c| c.to_string());
            let impact = h
                .impact
                .as_ref()
                .map(|impact| format!(" ({} requests through nginx)", impact.short()))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {} {:<8} {:<7} {:<6} {}{impact}\n",
                h.time,
                h.action,
                h.result,
                color,
                h.image.as_deref().unwrap_or("")
            ));
        }
        out
    }
}
