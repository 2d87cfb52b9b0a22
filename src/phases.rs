//! The clock behind the log's phases: every `Printer::phase` starts one, the next (or the end)
//! stops it. The step summary reads it, so a failed run shows its timings too.

use std::time::{Duration, Instant};

pub struct PhaseClock {
    started: Instant,
    running: Option<(String, Instant)>,
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

impl PhaseClock {
    pub fn start(&mut self, name: &str) {
        self.stop();
        self.running = Some((label(name).to_owned(), Instant::now()));
    }

    pub fn stop(&mut self) {
        if let Some((name, since)) = self.running.take() {
            self.done.push((name, since.elapsed()));
        }
    }

    /// Every phase so far in the order they ran, the running one up to now.
    pub fn phases(&self) -> Vec<(String, Duration)> {
        let mut phases = self.done.clone();
        if let Some((name, since)) = &self.running {
            phases.push((name.clone(), since.elapsed()));
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
}
