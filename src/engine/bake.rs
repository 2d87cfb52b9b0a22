//! The bake window: after a verified switch the old color keeps running for `bake_time` while
//! `verify_url` is requested through nginx at a fixed cadence. The new color's share of failed
//! requests (5xx, or no answer from nginx at all) above `bake_max_error_rate` fails the step,
//! and the runbook switches back. These are the tool's own probe requests, not the site's
//! traffic: a light, honest sample, with no metrics stack needed.

use std::time::{Duration, Instant};

use super::cancel::Cancelled;
use super::counts::Counts;
use super::impact::Watch;
use super::Ctx;
use crate::color::Color;
use crate::remote::Host;

/// Time between two probe requests.
pub const CADENCE: Duration = Duration::from_millis(100);
/// Fewer requests than this prove nothing either way: the bake goes on until there are as many.
const MIN_REQUESTS: u32 = 10;
/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The requests the bake judges as failed: 5xx, or no answer from nginx at all
/// (a 4xx is the app's answer, not a failure to serve).
fn errors(counts: &Counts) -> u32 {
    counts.server_errors + counts.unanswered
}

/// The failed share, in percent.
fn error_percent(counts: &Counts) -> f64 {
    if counts.requests == 0 {
        return 0.0;
    }
    f64::from(errors(counts)) * 100.0 / f64::from(counts.requests)
}

/// "5xx to 12 of 40 requests (30%)", naming the unanswered ones when there are any.
fn describe_errors(counts: &Counts) -> String {
    let share = format_percent(error_percent(counts));
    match counts.unanswered {
        0 => format!(
            "5xx to {} of {} requests ({share})",
            counts.server_errors, counts.requests
        ),
        n => format!(
            "5xx to {} and nothing to {n} of {} requests ({share})",
            counts.server_errors, counts.requests
        ),
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
    error_percent(counts) <= max_percent
}

/// How a bake ended.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// The line for the summary: what the probe requests got.
    Passed(String),
    /// Why the color failed the bake; the caller switches back.
    Failed(String),
}

/// Probes through nginx for `bake_time` (and at least [`MIN_REQUESTS`] requests); `watch`
/// counts the requests into the run's impact too. A signal ends the bake as a cancellation.
pub async fn bake<H: Host>(
    ctx: &Ctx<'_, H>,
    color: Color,
    watch: &Watch,
) -> Result<Verdict, Cancelled> {
    let bake_time = ctx.config.bake_time;
    let max = ctx.config.bake_max_error_rate;
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut counts = Counts::default();
    while started.elapsed() < bake_time || counts.requests < MIN_REQUESTS {
        let answer = watch.request(ctx).await;
        counts.add(answer.ok().map(|reply| reply.status));
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            ctx.printer.progress(&format!(
                "baking {color}: {:.0}s of {}s, {} of {} requests through nginx failed",
                started.elapsed().as_secs_f64(),
                bake_time.as_secs_f64(),
                errors(&counts),
                counts.requests
            ));
        }
        ctx.cancel.sleep(CADENCE).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    if within(&counts, max) {
        return Ok(Verdict::Passed(format!(
            "baked {seconds:.1}s: {} failed of {} probe requests through nginx (bake_max_error_rate {})",
            errors(&counts),
            counts.requests,
            format_percent(max)
        )));
    }
    Ok(Verdict::Failed(format!(
        "{color} answered {} during the bake ({seconds:.1}s of probe requests through nginx), \
         above bake_max_error_rate {}",
        describe_errors(&counts),
        format_percent(max)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(answers: &[Option<u16>]) -> Counts {
        let mut counts = Counts::default();
        for answer in answers {
            counts.add(*answer);
        }
        counts
    }

    #[test]
    fn counts_5xx_and_unanswered_as_failed_but_not_4xx() {
        let c = counts(&[Some(200), Some(404), Some(500), Some(503), None]);
        assert_eq!(errors(&c), 3);
        assert_eq!(error_percent(&c), 60.0);
        assert_eq!(
            describe_errors(&c),
            "5xx to 2 and nothing to 1 of 5 requests (60%)"
        );
    }

    #[test]
    fn judges_the_share_against_the_limit() {
        let mut answers = vec![Some(200); 199];
        answers.push(Some(500));
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
