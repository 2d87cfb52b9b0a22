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

use tokio::sync::Notify;

use super::counts::Impact;
use super::runbook::{Hook, Step};
use super::verify::{self, Proof};
use super::Ctx;
use crate::color::Color;
use crate::remote::http::HttpReply;
use crate::remote::Host;

/// Time between two probe requests.
pub const CADENCE: Duration = Duration::from_millis(50);

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
/// verification's evidence (connections gained between its readings) must be its own, and the bake
/// counts its requests itself.
fn sends_its_own_requests(step: &Step) -> bool {
    matches!(step, Step::Switch(_) | Step::Verify(_) | Step::Bake(_))
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
}
