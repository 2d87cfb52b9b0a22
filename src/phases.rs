//! The clock behind the log's phases: every `Printer::phase` starts one, the next (or the end)
//! stops it. The step summary reads it, so a failed run shows its timings too.
//!
//! A batch runs the commands of several later phases in one round trip, during the phase before
//! them: their time on the server is *lent* by the phase that waited for the batch and *repaid*
//! to each phase that takes its result, so each phase shows the time of its own commands.

use std::time::{Duration, Instant};

pub struct PhaseClock {
    started: Instant,
    running: Option<Running>,
    done: Vec<(String, Duration)>,
}

impl Default for PhaseClock {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            running: None,
            done: Vec::new(),
        }
    }
}

/// The phase under way: since when, and the time it ran ahead for later phases (`lent`) or
/// that earlier phases ran for it (`repaid`).
struct Running {
    name: String,
    since: Instant,
    lent: Duration,
    repaid: Duration,
}

impl Running {
    fn took(&self) -> Duration {
        (self.since.elapsed() + self.repaid).saturating_sub(self.lent)
    }
}

impl PhaseClock {
    pub fn start(&mut self, name: &str) {
        self.stop();
        self.running = Some(Running {
            name: label(name).to_owned(),
            since: Instant::now(),
            lent: Duration::ZERO,
            repaid: Duration::ZERO,
        });
    }

    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let took = running.took();
            self.done.push((running.name, took));
        }
    }

    /// The running phase ran commands of later phases, which took `took` on the server.
    pub fn lend(&mut self, took: Duration) {
        if let Some(running) = &mut self.running {
            running.lent += took;
        }
    }

    /// The running phase took a result a batch ran earlier, which took `took` on the server.
    pub fn repay(&mut self, took: Duration) {
        if let Some(running) = &mut self.running {
            running.repaid += took;
        }
    }

    /// Every phase so far in the order they ran, the running one up to now.
    pub fn phases(&self) -> Vec<(String, Duration)> {
        let mut phases = self.done.clone();
        if let Some(running) = &self.running {
            phases.push((running.name.clone(), running.took()));
        }
        phases
    }

    /// Since the clock was made (the start of the run).
    pub fn total(&self) -> Duration {
        self.started.elapsed()
    }
}

/// A phase's short name for a table: its header up to the first detail
/// (`wait for health: GET http://…` → `wait for health`).
pub fn label(name: &str) -> &str {
    let end = [": ", " ("]
        .iter()
        .filter_map(|separator| name.find(separator))
        .min()
        .unwrap_or(name.len());
    &name[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_drop_the_details() {
        assert_eq!(
            label("wait for health: GET http://127.0.0.1:8082/h every 1000ms"),
            "wait for health"
        );
        assert_eq!(
            label("pull r.io/app:dev (the token, if any, on stdin); the digest is pinned"),
            "pull r.io/app:dev"
        );
        assert_eq!(
            label("stop here, changing nothing, if that digest is live (unless --force)"),
            "stop here, changing nothing, if that digest is live"
        );
        assert_eq!(label("start green"), "start green");
    }

    #[test]
    fn a_phase_ends_when_the_next_starts_and_the_running_one_counts() {
        let mut clock = PhaseClock::default();
        clock.start("build the image");
        clock.start("push to r.io");
        let phases = clock.phases();
        let names: Vec<&str> = phases.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["build the image", "push to r.io"]);
        clock.stop();
        clock.stop();
        assert_eq!(clock.phases().len(), 2);
        assert!(clock.total() >= phases[0].1);
    }

    /// A batch run during "wait for health" held the switch's command: the switch's time is
    /// the switch's, not the health wait's. (Lower bounds and sums only: a loaded machine
    /// sleeps longer than asked.)
    #[test]
    fn time_run_ahead_counts_for_the_phase_it_was_run_for() {
        let mut clock = PhaseClock::default();
        clock.start("wait for health");
        std::thread::sleep(Duration::from_millis(40));
        clock.lend(Duration::from_millis(30));
        let switch_started = Instant::now();
        clock.start("switch traffic to green");
        clock.repay(Duration::from_millis(30));
        clock.stop();
        let switch_wall = switch_started.elapsed();
        let phases = clock.phases();
        let (health, switch) = (phases[0].1, phases[1].1);
        assert!(health >= Duration::from_millis(10), "{phases:?}");
        assert!(
            health + Duration::from_millis(30) <= clock.total(),
            "{phases:?}"
        );
        assert!(switch >= Duration::from_millis(30), "{phases:?}");
        assert!(
            switch <= Duration::from_millis(30) + switch_wall,
            "{phases:?}"
        );
    }
}
