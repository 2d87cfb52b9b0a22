//! The impact count: from the moment the new color is started until the old one is stopped,
//! `verify_url` is requested through nginx every [`CADENCE`] and the answers are counted per
//! color — requests, non-2xx, 5xx, no answer. The summary line, the step summary and the
//! history show it ("0 failed of 143 probe requests through nginx during the switch").
//!
//! These are the tool's own probe requests (one new connection each), not the site's traffic:
//! a light sample of one URL, shown for what it is.
//!
//! The verification proves routing by the new connections each color accepts (see
//! [`super::verify`]), so the prober is quiet while the steps that read connections or send
//! their own requests run (baseline, switch, verify, bake); those steps count their answers
//! here instead ([`Watch::request`]): one count, no double probing. The prober is a future the
//! runner polls next to the steps ([`Watch::probe`]), so it can never outlive the run nor delay
//! its cancellation.

use std::convert::Infallible;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::runbook::{Hook, Step};
use super::verify::{self, Proof};
use super::Ctx;
use crate::color::Color;
use crate::remote::http::HttpReply;
use crate::remote::Host;

/// Time between two probe requests.
pub const CADENCE: Duration = Duration::from_millis(50);

/// What requests through nginx got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub requests: u32,
    /// Answered with a status outside 2xx (5xx included).
    pub non_2xx: u32,
    /// Answered 5xx.
    pub server_errors: u32,
    /// nginx did not answer at all (refused, timed out).
    pub unanswered: u32,
}

impl Counts {
    /// One answer: its status, `None` when nginx did not answer.
    pub fn add(&mut self, status: Option<u16>) {
        self.requests += 1;
        match status {
            Some(status) if (200..300).contains(&status) => {}
            Some(status) => {
                self.non_2xx += 1;
                if status >= 500 {
                    self.server_errors += 1;
                }
            }
            None => self.unanswered += 1,
        }
    }

    /// Requests without a 2xx answer.
    pub fn failed(&self) -> u32 {
        self.non_2xx + self.unanswered
    }

    fn is_empty(&self) -> bool {
        self.requests == 0
    }

    /// " with 10 × 5xx and 2 unanswered"; empty when every request got a 2xx.
    fn failures(&self) -> String {
        let other = self.non_2xx - self.server_errors;
        let kinds: Vec<String> = [
            (self.server_errors, "× 5xx"),
            (other, "× other non-2xx"),
            (self.unanswered, "unanswered"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, kind)| format!("{n} {kind}"))
        .collect();
        match kinds.as_slice() {
            [] => String::new(),
            [one] => format!(" with {one}"),
            [rest @ .., last] => format!(" with {} and {last}", rest.join(", ")),
        }
    }
}

/// What the probe requests through nginx got during one run, in total and by the color that
/// answered (`unattributed`: between the switch and its verification, when the response did
/// not name its color). Kept in the history entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    #[serde(flatten)]
    pub total: Counts,
    #[serde(default, skip_serializing_if = "Counts::is_empty")]
    pub blue: Counts,
    #[serde(default, skip_serializing_if = "Counts::is_empty")]
    pub green: Counts,
    #[serde(default, skip_serializing_if = "Counts::is_empty")]
    pub unattributed: Counts,
}

impl Impact {
    fn add(&mut self, color: Option<Color>, status: Option<u16>) {
        self.total.add(status);
        match color {
            Some(Color::Blue) => self.blue.add(status),
            Some(Color::Green) => self.green.add(status),
            None => self.unattributed.add(status),
        }
    }

    /// "0 failed of 143", for lists.
    pub fn short(&self) -> String {
        format!(
            "{} failed of {}",
            grouped(self.total.failed()),
            grouped(self.total.requests)
        )
    }

    /// "0 failed of 143 probe requests through nginx during the switch (blue 61, green 82)".
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("blue", &self.blue),
            ("green", &self.green),
            ("color unknown", &self.unattributed),
        ]
        .into_iter()
        .filter(|(_, counts)| !counts.is_empty())
        .map(|(name, counts)| format!("{name} {}{}", grouped(counts.requests), counts.failures()))
        .collect();
        format!(
            "{} probe requests through nginx during the switch ({})",
            self.short(),
            parts.join(", ")
        )
    }
}

/// `12345` → `12,345`.
pub fn grouped(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Which color answers the requests, as far as the run knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not begun; or nothing served before this run (a first deploy), until its switch is
    /// verified: an nginx that pointed nowhere is not the switch's failure.
    Waiting,
    /// This color serves: the old one before the switch, the new one after its verification.
    Serving(Color),
    /// From the switch until it is verified (or for good, when it stays unverified): only a
    /// response that names its color is attributed.
    Switching,
    /// The old color was stopped, or the run failed: counting is over.
    Ended,
}

struct State {
    phase: Phase,
    /// A step sends its own requests (or reads the connections): the prober waits.
    quiet: bool,
    in_flight: bool,
    impact: Impact,
}

impl State {
    fn record(&mut self, answer: &Result<HttpReply, String>) {
        let by_phase = match self.phase {
            Phase::Waiting | Phase::Ended => return,
            Phase::Serving(color) => Some(color),
            Phase::Switching => None,
        };
        let reply = answer.as_ref().ok();
        let named =
            reply.and_then(|r| verify::color_in_response(r.color_header.as_deref(), &r.body));
        self.impact
            .add(named.or(by_phase), reply.map(|reply| reply.status));
    }
}

/// The count of one run; see the module documentation.
pub struct Watch {
    state: Mutex<State>,
    /// Signalled when a probe request finishes.
    idle: Notify,
}

impl Default for Watch {
    fn default() -> Self {
        Watch {
            state: Mutex::new(State {
                phase: Phase::Waiting,
                quiet: false,
                in_flight: false,
                impact: Impact::default(),
            }),
            idle: Notify::new(),
        }
    }
}

/// Steps during which nothing but the step itself may send requests through nginx: the
/// verification's evidence (connections since the baseline) must be its own, and the bake
/// counts its requests itself.
fn sends_its_own_requests(step: &Step) -> bool {
    matches!(
        step,
        Step::Baseline | Step::Switch(_) | Step::Verify(_) | Step::Bake(_)
    )
}

impl Watch {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("the watch's lock is never poisoned")
    }

    /// Before `step` runs; `old`: the color that served before the run (`None`: nothing did).
    /// Waits for a probe request under way when the step must have nginx to itself.
    pub async fn before(&self, step: &Step, old: Option<Color>) {
        let quiet = sends_its_own_requests(step);
        if quiet {
            self.quiet().await;
        }
        let mut state = self.state();
        match step {
            Step::Start(..) | Step::StartKept(..) | Step::WaitHealthy(_) => {
                if let (Phase::Waiting, Some(old)) = (state.phase, old) {
                    state.phase = Phase::Serving(old);
                }
            }
            Step::Switch(_) if matches!(state.phase, Phase::Serving(_)) => {
                state.phase = Phase::Switching;
            }
            Step::Hook(Hook::PostDeploy, _) => state.phase = Phase::Ended,
            _ => {}
        }
        state.quiet = quiet;
    }

    /// After `step` succeeded; `proof`: how the switch was shown to work, once it was.
    pub fn after(&self, step: &Step, proof: Option<Proof>) {
        let mut state = self.state();
        match (step, proof) {
            (Step::Verify(_), Some(Proof::Unverified)) => {}
            (Step::Verify(color), Some(_))
                if matches!(state.phase, Phase::Switching | Phase::Waiting) =>
            {
                state.phase = Phase::Serving(*color);
            }
            (Step::Stop(_) | Step::StopAdopted(_), _) => state.phase = Phase::Ended,
            _ => {}
        }
    }

    /// Counting is over (the run failed); a probe under way is not counted.
    pub fn end(&self) {
        self.state().phase = Phase::Ended;
    }

    /// What was counted; `None` when nothing was.
    pub fn impact(&self) -> Option<Impact> {
        let impact = self.state().impact.clone();
        (impact.total.requests > 0).then_some(impact)
    }

    /// One request through nginx (`verify_url`), counted: what the verification and the bake
    /// send.
    pub async fn request<H: Host>(&self, ctx: &Ctx<'_, H>) -> Result<HttpReply, String> {
        let answer = ctx.host.http_get(&verify::verify_request(ctx)).await;
        self.state().record(&answer);
        answer
    }

    /// The prober: every [`CADENCE`], one counted request through nginx while the run is in
    /// its window and no step has nginx to itself. Never ends: the runner drops it.
    pub async fn probe<H: Host>(&self, ctx: &Ctx<'_, H>) -> Infallible {
        loop {
            tokio::time::sleep(CADENCE).await;
            {
                let mut state = self.state();
                let counting = matches!(state.phase, Phase::Serving(_) | Phase::Switching);
                if state.quiet || !counting {
                    continue;
                }
                state.in_flight = true;
            }
            let answer = ctx.host.http_get(&verify::verify_request(ctx)).await;
            {
                let mut state = self.state();
                state.in_flight = false;
                state.record(&answer);
            }
            self.idle.notify_waiters();
        }
    }

    /// Stops the prober; returns once no probe request is under way.
    async fn quiet(&self) {
        loop {
            let finished = self.idle.notified();
            {
                let mut state = self.state();
                state.quiet = true;
                if !state.in_flight {
                    return;
                }
            }
            finished.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Result<HttpReply, String> {
        Ok(HttpReply {
            status,
            color_header: None,
            body: body.into(),
        })
    }

    #[test]
    fn counts_non_2xx_5xx_and_unanswered() {
        let mut counts = Counts::default();
        for status in [Some(200), Some(204), Some(404), Some(502), None] {
            counts.add(status);
        }
        assert_eq!(
            counts,
            Counts {
                requests: 5,
                non_2xx: 2,
                server_errors: 1,
                unanswered: 1
            }
        );
        assert_eq!(counts.failed(), 3);
        assert_eq!(
            counts.failures(),
            " with 1 × 5xx, 1 × other non-2xx and 1 unanswered"
        );
    }

    #[test]
    fn attributes_by_the_color_named_else_by_phase() {
        let mut state = Watch::default().state.into_inner().unwrap();
        state.record(&reply(200, "{}"));
        assert_eq!(
            state.impact.total.requests, 0,
            "nothing counts before the window"
        );
        state.phase = Phase::Serving(Color::Blue);
        state.record(&reply(200, "{}"));
        state.record(&reply(200, r#"{"color":"green"}"#));
        state.phase = Phase::Switching;
        state.record(&reply(502, "bad gateway"));
        state.record(&Err("timed out".into()));
        state.record(&reply(200, r#"{"color": "green"}"#));
        state.phase = Phase::Serving(Color::Green);
        state.record(&reply(500, "{}"));
        state.phase = Phase::Ended;
        state.record(&reply(200, "{}"));
        let impact = state.impact;
        assert_eq!(impact.total.requests, 6);
        assert_eq!(impact.blue.requests, 1);
        assert_eq!((impact.green.requests, impact.green.server_errors), (3, 1));
        assert_eq!(
            (impact.unattributed.requests, impact.unattributed.failed()),
            (2, 2)
        );
        assert_eq!(
            impact.describe(),
            "3 failed of 6 probe requests through nginx during the switch (blue 1, \
             green 3 with 1 × 5xx, color unknown 2 with 1 × 5xx and 1 unanswered)"
        );
    }

    /// The window through a deploy's steps: before the switch the old color, during it only
    /// named answers, after the verification the new color, nothing once the old one stopped.
    #[tokio::test]
    async fn the_window_follows_the_steps() {
        let watch = Watch::default();
        let answer = reply(200, "{}");
        let start = Step::Start(
            Color::Green,
            super::super::runbook::Image::Pulled,
            "c".into(),
        );
        watch
            .before(&Step::Pull("app:v2".into()), Some(Color::Blue))
            .await;
        watch.state().record(&answer);
        watch.before(&start, Some(Color::Blue)).await;
        watch.state().record(&answer);
        watch
            .before(&Step::Switch(Color::Green), Some(Color::Blue))
            .await;
        assert!(
            watch.state().quiet,
            "the prober waits while the switch and verify run"
        );
        watch.state().record(&answer);
        watch.after(&Step::Verify(Color::Green), Some(Proof::Connections(1)));
        watch
            .before(&Step::Stop(Color::Blue), Some(Color::Blue))
            .await;
        assert!(!watch.state().quiet);
        watch.state().record(&answer);
        watch.after(&Step::Stop(Color::Blue), None);
        watch.state().record(&answer);
        let impact = watch.impact().unwrap();
        let by_bucket = [&impact.blue, &impact.green, &impact.unattributed].map(|c| c.requests);
        assert_eq!(by_bucket, [1, 1, 1], "{}", impact.describe());
    }

    /// Before a first deploy nothing served: counting begins with the verified switch.
    #[tokio::test]
    async fn a_first_deploy_is_counted_from_its_verified_switch() {
        let watch = Watch::default();
        let bad_gateway = reply(502, "");
        watch.before(&Step::WaitHealthy(Color::Blue), None).await;
        watch.state().record(&bad_gateway);
        watch.before(&Step::Switch(Color::Blue), None).await;
        watch.state().record(&bad_gateway);
        assert_eq!(watch.impact(), None);
        watch.after(&Step::Verify(Color::Blue), Some(Proof::Named));
        watch.state().record(&reply(200, "{}"));
        let impact = watch.impact().unwrap();
        assert_eq!((impact.blue.requests, impact.total.failed()), (1, 0));
    }

    #[test]
    fn describes_a_clean_switch_with_grouped_numbers() {
        let mut impact = Impact::default();
        for _ in 0..12_345 {
            impact.add(Some(Color::Green), Some(200));
        }
        impact.add(Some(Color::Blue), Some(200));
        assert_eq!(
            impact.describe(),
            "0 failed of 12,346 probe requests through nginx during the switch (blue 1, green 12,345)"
        );
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000_000), "1,000,000");
    }

    #[test]
    fn history_json_has_totals_and_colors_and_old_entries_parse() {
        let mut impact = Impact::default();
        impact.add(Some(Color::Blue), Some(200));
        impact.add(Some(Color::Green), Some(503));
        let json = serde_json::to_value(&impact).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "requests": 2, "non_2xx": 1, "server_errors": 1, "unanswered": 0,
                "blue": {"requests": 1, "non_2xx": 0, "server_errors": 0, "unanswered": 0},
                "green": {"requests": 1, "non_2xx": 1, "server_errors": 1, "unanswered": 0}
            })
        );
        assert_eq!(serde_json::from_value::<Impact>(json).unwrap(), impact);
    }
}
