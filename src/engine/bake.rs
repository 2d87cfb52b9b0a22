//! The bake window: after a verified switch the old color keeps running for `bake_time` while
//! `verify_url` is requested through nginx at a fixed cadence. The new color's share of failed
//! requests (5xx, or no answer from nginx at all) above `bake_max_error_rate` fails the step,
//! and the runbook switches back. These are the tool's own probe requests, not the site's
//! traffic: a light, honest sample, with no metrics stack needed.

use std::time::{Duration, Instant};

use super::cancel::Cancelled;
use super::Ctx;
use crate::color::Color;
use crate::remote::Host;

/// Time between two probe requests.
pub const CADENCE: Duration = Duration::from_millis(100);
/// Fewer requests than this prove nothing either way: the bake goes on until there are as many.
const MIN_REQUESTS: u32 = 10;
/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What the probe requests through nginx got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u32,
    /// Answered 5xx.
    pub server_errors: u32,
    /// nginx did not answer at all (refused, timed out).
    pub unanswered: u32,
}

impl Counts {
    pub fn failed(&self) -> u32 {
        self.server_errors + self.unanswered
    }

    /// The failed share, in percent.
    pub fn failed_percent(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        f64::from(self.failed()) * 100.0 / f64::from(self.requests)
    }

    fn add(&mut self, answer: Result<u16, String>) {
        self.requests += 1;
        match answer {
            Ok(status) if status >= 500 => self.server_errors += 1,
            Ok(_) => {}
            Err(_) => self.unanswered += 1,
        }
    }

    /// "5xx to 12 of 40 requests (30%)", naming the unanswered ones when there are any.
    fn describe_failures(&self) -> String {
        let share = format_percent(self.failed_percent());
        match self.unanswered {
            0 => format!(
                "5xx to {} of {} requests ({share})",
                self.server_errors, self.requests
            ),
            n => format!(
                "5xx to {} and nothing to {n} of {} requests ({share})",
                self.server_errors, self.requests
            ),
        }
    }
}

/// `1%`, `0.5%`, `33.3%`: at most one decimal, none when whole.
pub fn format_percent(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}%")
    } else {
        format!("{rounded:.1}%")
    }
}

/// Whether `counts` stay within `max_percent`.
pub fn within(counts: &Counts, max_percent: f64) -> bool {
    counts.failed_percent() <= max_percent
}

/// How a bake ended.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// The line for the summary: what the probe requests got.
    Passed(String),
    /// Why the color failed the bake; the caller switches back.
    Failed(String),
}

/// Probes through nginx for `bake_time` (and at least [`MIN_REQUESTS`] requests).
/// A signal ends the bake as a cancellation.
pub async fn bake<H: Host>(ctx: &Ctx<'_, H>, color: Color) -> Result<Verdict, Cancelled> {
    let bake_time = ctx.config.bake_time;
    let max = ctx.config.bake_max_error_rate;
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut counts = Counts::default();
    while started.elapsed() < bake_time || counts.requests < MIN_REQUESTS {
        let answer = ctx
            .host
            .http_get(&super::verify::verify_request(ctx))
            .await
            .map(|reply| reply.status);
        counts.add(answer);
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            ctx.printer.progress(&format!(
                "baking {color}: {:.0}s of {}s, {} of {} requests through nginx failed",
                started.elapsed().as_secs_f64(),
                bake_time.as_secs_f64(),
                counts.failed(),
                counts.requests
            ));
        }
        ctx.cancel.sleep(CADENCE).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    if within(&counts, max) {
        return Ok(Verdict::Passed(format!(
            "baked {seconds:.1}s: {} failed of {} probe requests through nginx (bake_max_error_rate {})",
            counts.failed(),
            counts.requests,
            format_percent(max)
        )));
    }
    Ok(Verdict::Failed(format!(
        "{color} answered {} during the bake ({seconds:.1}s of probe requests through nginx), \
         above bake_max_error_rate {}",
        counts.describe_failures(),
        format_percent(max)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(answers: &[Result<u16, String>]) -> Counts {
        let mut counts = Counts::default();
        for answer in answers {
            counts.add(answer.clone());
        }
        counts
    }

    #[test]
    fn counts_5xx_and_unanswered_as_failed_but_not_4xx() {
        let c = counts(&[Ok(200), Ok(404), Ok(500), Ok(503), Err("refused".into())]);
        assert_eq!(
            c,
            Counts {
                requests: 5,
                server_errors: 2,
                unanswered: 1
            }
        );
        assert_eq!(c.failed_percent(), 60.0);
        assert_eq!(
            c.describe_failures(),
            "5xx to 2 and nothing to 1 of 5 requests (60%)"
        );
    }

    #[test]
    fn judges_the_share_against_the_limit() {
        let mut answers = vec![Ok(200); 199];
        answers.push(Ok(500));
        assert!(within(&counts(&answers), 1.0));
        assert!(!within(&counts(&answers), 0.4));
        assert!(within(&Counts::default(), 0.0));
    }

    #[test]
    fn formats_percentages() {
        assert_eq!(format_percent(1.0), "1%");
        assert_eq!(format_percent(0.5), "0.5%");
        assert_eq!(format_percent(100.0 / 3.0), "33.3%");
    }
}
