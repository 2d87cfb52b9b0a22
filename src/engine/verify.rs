//! Proof that nginx routes to a color. A 2xx through nginx proves nothing by itself: old
//! workers, a switch file nginx does not include, or a bind-mounted config that never changed
//! all answer 2xx from the old color. The proof is the color's own evidence: its name in the
//! response (`X-Bluegreen-Color`, or a JSON body's top-level `"color":"…"`), or new connections accepted by its socket
//! while requests go through nginx (see [`crate::server::routes`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use super::impact::Watch;
use super::observe::ColorContainer;
use super::Ctx;
use crate::color::Color;
use crate::remote::http::{HttpGet, HttpReply};
use crate::remote::{run_ok, Host};
use crate::server::routes::{self, Baseline, Gained, Sockets};

/// How a switch was shown to work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// The response named the color.
    Named,
    /// The color accepted this many new connections while requests went through nginx.
    Connections(usize),
    /// nginx answered 2xx but neither color showed evidence: the old color is kept running.
    Unverified,
}

impl Proof {
    pub fn describe(&self, color: Color) -> String {
        match self {
            Proof::Named => format!("served by {color} (named in the response)"),
            Proof::Connections(n) => format!("{color} received {n} new connections through nginx"),
            Proof::Unverified => format!(
                "unverified: nginx answers, but {color} could not be shown to receive the requests"
            ),
        }
    }
}

/// The new color answered 5xx through nginx for [`FAIL_5XX_AFTER`] without a 2xx between:
/// real users got those answers too, so verification stops at once (the caller switches back).
#[derive(Debug)]
pub struct Answered5xx {
    pub color: Color,
    pub url: String,
    /// The last status, and how many of the requests answered 5xx.
    pub status: u16,
    pub failed: u32,
    pub requests: u32,
    pub seconds: f64,
}

impl std::fmt::Display for Answered5xx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} answered 5xx through nginx ({}): {} of {} requests in {:.1}s, last HTTP {}",
            self.color, self.url, self.failed, self.requests, self.seconds, self.status
        )
    }
}

impl std::error::Error for Answered5xx {}

/// How long 5xx answers through nginx, with no 2xx between, end the verification.
pub const FAIL_5XX_AFTER: Duration = Duration::from_millis(400);

/// The status of a 5xx answer, from [`judge`]'s reason (`HTTP 502`).
fn server_error(reason: &str) -> Option<u16> {
    let status: u16 = reason.strip_prefix("HTTP ")?.parse().ok()?;
    (500..600).contains(&status).then_some(status)
}

fn sockets<H: Host>(ctx: &Ctx<'_, H>, containers: &HashMap<Color, ColorContainer>) -> Sockets {
    let pid = |color| containers.get(&color).map_or(0, |c: &ColorContainer| c.pid);
    Sockets {
        ports: Color::BOTH.map(|c| ctx.config.port_of(c)),
        pids: Color::BOTH.map(pid),
    }
}

/// Reads the colors' connections now and keeps the reading on the server; `containers` gives
/// the processes whose namespaces to read.
pub async fn baseline<H: Host>(
    ctx: &Ctx<'_, H>,
    containers: &HashMap<Color, ColorContainer>,
) -> Result<Baseline> {
    let output = run_ok(ctx.host, &routes::save(&sockets(ctx, containers))).await?;
    Baseline::parse(&output.stdout)
        .ok_or_else(|| anyhow!("reading the colors' connections did not finish"))
}

/// Removes the reading of `baseline` from the server (when no comparison removed it).
pub async fn forget<H: Host>(ctx: &Ctx<'_, H>, baseline: &Baseline) -> Result<()> {
    run_ok(ctx.host, &routes::forget(&baseline.file)).await?;
    Ok(())
}

/// How many connections each color gained since `baseline`; `target`: the color whose gain
/// ends the comparisons (`None`: this is the only one).
pub async fn gained<H: Host>(
    ctx: &Ctx<'_, H>,
    baseline: &Baseline,
    target: Option<Color>,
    containers: &HashMap<Color, ColorContainer>,
) -> Result<Gained> {
    let command = routes::since(&baseline.file, target, &sockets(ctx, containers));
    let output = run_ok(ctx.host, &command).await?;
    Ok(Gained::parse(&output.stdout))
}

/// Which color a response names: header `X-Bluegreen-Color`, or the `color` field at the top
/// of a JSON body (`{"status":"UP","color":"blue"}`). A `color` deeper in the document (a
/// component's, a previous release's) or in a body that is not JSON names nothing.
pub fn color_in_response(header: Option<&str>, body: &str) -> Option<Color> {
    if let Some(color) = header.and_then(Color::parse) {
        return Some(color);
    }
    let document: NamedColor = serde_json::from_str(body).ok()?;
    Color::parse(document.color.as_deref()?)
}

/// The one field of a health or verify document that names the color serving it.
#[derive(serde::Deserialize)]
struct NamedColor {
    color: Option<String>,
}

pub(super) fn verify_request<H: Host>(ctx: &Ctx<'_, H>) -> HttpGet {
    let url = &ctx.config.verify_url;
    HttpGet {
        host: url.host.clone(),
        port: url.port,
        path: url.path.clone(),
        host_header: Some(url.host.clone()),
        timeout: Duration::from_secs(5),
    }
}

/// One request through nginx: `Ok(named color)` on a 2xx, else why not.
pub async fn through_nginx<H: Host>(ctx: &Ctx<'_, H>) -> Result<Option<Color>, String> {
    judge(ctx.host.http_get(&verify_request(ctx)).await)
}

/// An answer through nginx: `Ok(named color)` on a 2xx, else why not.
fn judge(answer: Result<HttpReply, String>) -> Result<Option<Color>, String> {
    let HttpReply {
        status,
        color_header,
        body,
    } = answer?;
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    Ok(color_in_response(color_header.as_deref(), &body))
}

/// Requests `verify_url` until `color` is shown to receive them, for up to `deadline`: by a
/// response naming it, else by the connections `color` gains between a first reading, taken
/// after the first answer that names no color (kept in `reading`, for the caller to remove
/// when no comparison did), and the answers after it. `containers` is refreshed for that
/// reading (the new color's namespace). `watch` counts the requests (and sends none of its own
/// meanwhile). `failing` is notified when a run of 5xx answers begins. `Err`: nginx does not
/// route to `color` (or does not answer), or it answered 5xx ([`Answered5xx`]); the caller
/// switches back.
pub async fn verify<H: Host>(
    ctx: &Ctx<'_, H>,
    color: Color,
    reading: &mut Option<Baseline>,
    containers: &mut HashMap<Color, ColorContainer>,
    deadline: Duration,
    watch: &Watch,
    failing: &tokio::sync::Notify,
) -> Result<Proof> {
    let started = Instant::now();
    let url = ctx.config.verify_url.render();
    let mut attempts = 0;
    let mut answered = 0;
    // Since when every answer was a 5xx (reset by a 2xx), and how many.
    let mut failing_since = None::<Instant>;
    let mut failed = 0;
    loop {
        attempts += 1;
        let last;
        let answer = judge(watch.request(ctx).await);
        match &answer {
            Err(reason) => {
                if let Some(status) = server_error(reason) {
                    failed += 1;
                    if failing_since.is_none() {
                        failing.notify_one();
                    }
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= FAIL_5XX_AFTER {
                        return Err(Answered5xx {
                            color,
                            url,
                            status,
                            failed,
                            requests: attempts,
                            seconds: started.elapsed().as_secs_f64(),
                        }
                        .into());
                    }
                }
            }
            Ok(_) => failing_since = None,
        }
        match answer {
            Ok(Some(named)) if named == color => return Ok(Proof::Named),
            Ok(Some(named)) => last = format!("answered by {named}, not {color}"),
            Ok(None) => {
                answered += 1;
                let Some(first) = reading.as_ref() else {
                    // No name in the response: the connections tell. The next request must
                    // show up as a new connection of `color` (a health probe, the only other
                    // client of its port, is over).
                    *containers = super::observe::containers(ctx).await?;
                    *reading = Some(baseline(ctx, containers).await?);
                    continue;
                };
                let now = gained(ctx, first, Some(color), containers).await?;
                let to_color = now.of(color);
                let to_other = now.of(color.other());
                if to_color > 0 {
                    // The comparison that found them removed the reading.
                    *reading = None;
                    return Ok(Proof::Connections(to_color));
                }
                last = if to_other > 0 {
                    format!(
                        "the requests still reach {} ({to_other} new connections), none reach {color}",
                        color.other()
                    )
                } else if now.complete {
                    "neither color received the requests".to_owned()
                } else {
                    "the connections could not be read".into()
                };
                if to_other == 0 && answered >= 5 {
                    // Answered, yet no evidence either way (nginx reaches the app some way
                    // the socket tables do not show): say so, never claim it.
                    return Ok(Proof::Unverified);
                }
            }
            Err(reason) => last = reason,
        }
        if started.elapsed() >= deadline {
            return Err(anyhow!(
                "the switch to {color} was not taken: verification through nginx ({url}) \
                 failed after {attempts} attempts: {last}"
            ));
        }
        ctx.printer
            .progress(&format!("verify {url}: {last} (attempt {attempts})"));
        // Users get the same answers meanwhile: a 5xx must be seen soon.
        ctx.cancel.sleep(Duration::from_millis(100)).await?;
    }
}

/// Which color nginx routes to now, by evidence: the color a response names, else one request
/// through nginx between two readings of the connections. `None` when it cannot be told.
pub async fn routed_color<H: Host>(
    ctx: &Ctx<'_, H>,
    containers: &HashMap<Color, ColorContainer>,
) -> Option<Color> {
    if let Ok(Some(named)) = through_nginx(ctx).await {
        return Some(named);
    }
    let before = baseline(ctx, containers).await.ok()?;
    let answered = through_nginx(ctx).await;
    let after = gained(ctx, &before, None, containers).await.ok()?;
    if let Ok(Some(named)) = answered {
        return Some(named);
    }
    if !after.complete {
        return None;
    }
    match Color::BOTH.map(|c| after.of(c) > 0) {
        [true, false] => Some(Color::Blue),
        [false, true] => Some(Color::Green),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_color_in_a_response() {
        assert_eq!(color_in_response(Some("green"), ""), Some(Color::Green));
        assert_eq!(
            color_in_response(None, r#"{"status":"UP", "color": "blue"}"#),
            Some(Color::Blue)
        );
        assert_eq!(color_in_response(None, r#"{"status":"UP"}"#), None);
    }

    /// Only the document's own `color` counts: the word elsewhere is not evidence.
    #[test]
    fn a_color_elsewhere_in_the_body_names_nothing() {
        let named = |body| color_in_response(None, body);
        assert_eq!(
            named(r#"{"status":"UP","components":{"theme":{"color":"blue"}}}"#),
            None
        );
        assert_eq!(
            named(r#"{"color":"green","previous":{"color":"blue"}}"#),
            Some(Color::Green)
        );
        assert_eq!(named(r#"{"status":"UP","note":"blue"}"#), None);
        assert_eq!(named(r#"<p>set "color": "blue" in the config</p>"#), None);
        assert_eq!(named(r#"[{"color":"blue"}]"#), None);
        assert_eq!(
            named("{\"status\":\"UP\",\n \"color\" : \"blue\"}\n"),
            Some(Color::Blue)
        );
    }
}
