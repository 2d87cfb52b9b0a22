//! Readiness: GET `health_path` on the new color's port through an SSH port forward until
//! `health_timeout`: every 50 ms while the port refuses connections (a refused connect costs
//! the app nothing) and for the first [`FAST_FOR`] of the wait, then every `health_interval`.
//! So an app is noticed within ~50 ms of becoming ready, whatever it answered before, unless it
//! answered "not ready" for longer than [`FAST_FOR`]. A container that exits or restarts fails
//! at once.

use std::time::{Duration, Instant};

use super::observe;
use super::Ctx;
use crate::color::Color;
use crate::remote::http::HttpGet;
use crate::remote::Host;

#[derive(Debug)]
pub struct Healthy {
    pub attempts: u32,
    pub elapsed: Duration,
}

#[derive(Debug)]
pub enum Unhealthy {
    TimedOut {
        attempts: u32,
        last: String,
    },
    ContainerDied {
        status: String,
        exit_code: i64,
        restarts: u64,
    },
    Cancelled,
    Other(anyhow::Error),
}

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unhealthy::TimedOut { attempts, last } => {
                write!(f, "not healthy after {attempts} probes (last: {last})")
            }
            Unhealthy::ContainerDied {
                status,
                exit_code,
                restarts,
            } => {
                write!(
                    f,
                    "the container is {status} (exit code {exit_code}, {restarts} restarts)"
                )
            }
            Unhealthy::Cancelled => f.write_str("cancelled by a signal"),
            Unhealthy::Other(error) => write!(f, "{error:#}"),
        }
    }
}

/// One probe's verdict: `Ok` when ready, `Err(reason)` otherwise.
async fn probe<H: Host>(ctx: &Ctx<'_, H>, request: &HttpGet) -> Result<(), String> {
    let reply = ctx.host.http_get(request).await?;
    if !(200..300).contains(&reply.status) {
        return Err(format!("HTTP {}", reply.status));
    }
    match ctx.config.health_expect.as_deref() {
        Some(expected) if !reply.body.contains(expected) => Err(format!("body lacks `{expected}`")),
        _ => Ok(()),
    }
}

/// A health path answered 404 this long is most likely wrong, not slow: say so once.
const NOT_FOUND_HINT_AFTER: Duration = Duration::from_secs(10);

/// The fast cadence of the probes.
const FAST: Duration = Duration::from_millis(50);
/// How long probes stay fast while the app answers "not ready" (a refused port stays fast).
const FAST_FOR: Duration = Duration::from_secs(10);
/// Progress lines at most this often (a log, unlike a terminal, keeps every line).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The pause before the next probe: fast while the port refuses connections or during the first
/// [`FAST_FOR`] of the wait, else `health_interval` (never slower than it).
fn probe_interval(last: &str, waited: Duration, health_interval: Duration) -> Duration {
    let refused = last == "connection closed" || last == "connection refused";
    if refused || waited < FAST_FOR {
        FAST.min(health_interval)
    } else {
        health_interval
    }
}

/// The probes' cadence in words, as [`probe_interval`] paces them (`plan` prints it).
pub fn cadence(health_interval: Duration) -> String {
    let fast = FAST.min(health_interval);
    if fast == health_interval {
        return format!("every {}ms", health_interval.as_millis());
    }
    format!(
        "every {}ms while the port refuses connections and for the first {}s, then every {}ms",
        fast.as_millis(),
        FAST_FOR.as_secs(),
        health_interval.as_millis()
    )
}

pub async fn wait_healthy<H: Host>(ctx: &Ctx<'_, H>, color: Color) -> Result<Healthy, Unhealthy> {
    let config = ctx.config;
    let port = config.port_of(color);
    let request = HttpGet {
        host: "127.0.0.1".into(),
        port,
        path: config.health_path.clone(),
        host_header: None,
        timeout: config
            .health_interval
            .clamp(Duration::from_millis(500), Duration::from_secs(5)),
    };
    let started = Instant::now();
    let mut attempts = 0;
    // The first look comes after a second: an app usually answers sooner, and a look between
    // the first probes would delay noticing it by a round trip.
    let mut last_container_check = Some(started);
    let mut not_found_since = None::<Instant>;
    let mut hinted = false;
    let mut last_progress = None::<Instant>;
    loop {
        attempts += 1;
        // Probes keep a fixed cadence: the container check below eats into the pause.
        let probe_started = Instant::now();
        let verdict = tokio::select! {
            verdict = probe(ctx, &request) => verdict,
            _ = ctx.cancel.cancelled() => return Err(Unhealthy::Cancelled),
        };
        let last = match verdict {
            Ok(()) => {
                return Ok(Healthy {
                    attempts,
                    elapsed: started.elapsed(),
                })
            }
            Err(reason) => reason,
        };
        not_found_since = match (last.as_str(), not_found_since) {
            ("HTTP 404", None) => Some(Instant::now()),
            ("HTTP 404", since) => since,
            _ => None,
        };
        if !hinted && not_found_since.is_some_and(|since| since.elapsed() >= NOT_FOUND_HINT_AFTER) {
            hinted = true;
            ctx.printer.warn(&format!(
                "{color} answers 404 Not Found on {} for {}s: the app runs but serves no such \
                 path; check health_path (Spring Boot: /actuator/health needs \
                 spring-boot-starter-actuator)",
                config.health_path,
                NOT_FOUND_HINT_AFTER.as_secs()
            ));
        }
        let elapsed = started.elapsed();
        if last_progress.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY) {
            last_progress = Some(Instant::now());
            ctx.printer.progress(&format!(
                "{color} on 127.0.0.1:{port}{}: {last} (probe {attempts}, {:.1}s of {}s)",
                config.health_path,
                elapsed.as_secs_f64(),
                config.health_timeout.as_secs()
            ));
        }
        // A crashed container will never answer: look at it (at most once a second).
        if last_container_check.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            last_container_check = Some(Instant::now());
            check_container(ctx, color).await?;
        }
        let elapsed = started.elapsed();
        if elapsed >= config.health_timeout {
            return Err(Unhealthy::TimedOut { attempts, last });
        }
        let pause = probe_interval(&last, elapsed, config.health_interval)
            .saturating_sub(probe_started.elapsed())
            .min(config.health_timeout.saturating_sub(elapsed));
        ctx.cancel
            .sleep(pause)
            .await
            .map_err(|_| Unhealthy::Cancelled)?;
    }
}

/// One probe of `color`'s health path now (a color about to get traffic back must answer
/// it): `Err(reason)` when it does not, after a second try 200 ms later.
pub async fn answers<H: Host>(ctx: &Ctx<'_, H>, color: Color) -> Result<(), String> {
    let request = HttpGet {
        host: "127.0.0.1".into(),
        port: ctx.config.port_of(color),
        path: ctx.config.health_path.clone(),
        host_header: None,
        timeout: Duration::from_secs(2),
    };
    if probe(ctx, &request).await.is_ok() {
        return Ok(());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    probe(ctx, &request).await
}

async fn check_container<H: Host>(ctx: &Ctx<'_, H>, color: Color) -> Result<(), Unhealthy> {
    let containers = observe::containers(ctx).await.map_err(Unhealthy::Other)?;
    match containers.get(&color) {
        Some(c) if c.running && c.restart_count == 0 => Ok(()),
        Some(c) => Err(Unhealthy::ContainerDied {
            status: c.status.clone(),
            exit_code: c.exit_code,
            restarts: c.restart_count,
        }),
        None => Err(Unhealthy::ContainerDied {
            status: "gone".into(),
            exit_code: -1,
            restarts: 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `plan` says is what [`probe_interval`] does, at both ends of the wait.
    #[test]
    fn the_cadence_in_words_is_the_one_probes_keep() {
        let second = Duration::from_secs(1);
        let said = cadence(second);
        let early = probe_interval("HTTP 503", Duration::ZERO, second);
        let refused = probe_interval("connection refused", FAST_FOR * 2, second);
        let late = probe_interval("HTTP 503", FAST_FOR, second);
        assert!(said.starts_with(&format!(
            "every {}ms while the port refuses",
            early.as_millis()
        )));
        assert_eq!(early, refused);
        assert!(said.contains(&format!("for the first {}s", FAST_FOR.as_secs())));
        assert!(said.ends_with(&format!("then every {}ms", late.as_millis())));
        let tiny = Duration::from_millis(20);
        assert_eq!(
            cadence(tiny),
            format!(
                "every {}ms",
                probe_interval("HTTP 503", FAST_FOR, tiny).as_millis()
            )
        );
    }

    #[test]
    fn probes_stay_fast_while_refused_or_early_then_take_the_interval() {
        let second = Duration::from_secs(1);
        let early = Duration::from_secs(2);
        let late = Duration::from_secs(30);
        assert_eq!(probe_interval("HTTP 503", early, second), FAST);
        assert_eq!(probe_interval("HTTP 503", late, second), second);
        assert_eq!(probe_interval("connection closed", late, second), FAST);
        assert_eq!(probe_interval("connection refused", late, second), FAST);
        assert_eq!(probe_interval("timed out", late, second), second);
        let tiny = Duration::from_millis(20);
        assert_eq!(probe_interval("HTTP 503", early, tiny), tiny);
        assert_eq!(probe_interval("connection closed", late, tiny), tiny);
    }
}
