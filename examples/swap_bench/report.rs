//! The two tables: every figure of every method (medians of the swaps), and issue 12's
//! "Fast" and "Zero" targets against the measured medians.

use crate::load::Failures;
use crate::tool::ToolRun;

/// One swap under load, as clients saw it.
pub struct Swap {
    pub failures: Failures,
    /// Healthy (as the tool or script saw it) → nginx first served the new version (ms).
    pub serves_ms: Option<f64>,
    /// How long after that a keep-alive client's requests still went to the old color (ms).
    pub old_after_new_ms: f64,
    /// How long the request that first got the new version waited for it (ms).
    pub first_new_waited_ms: Option<f64>,
    /// The longest wait of a probe request before that one (ms).
    pub longest_wait_before_new_ms: Option<f64>,
    /// SYNs this host sent again from the swap's start to the end of its settling time.
    pub syn_retransmits: u64,
}

pub struct Method {
    pub label: String,
    pub swaps: Vec<Swap>,
    /// Whether the swaps moved traffic (the baseline does not).
    pub switches: bool,
    pub tool: Option<ToolFigures>,
}

/// What only bluegreen's methods have.
pub struct ToolFigures {
    pub loaded: Vec<ToolRun>,
    pub unloaded: Vec<ToolRun>,
    /// The app ready (polled from outside every 5 ms) → bluegreen logs it healthy (ms).
    pub readiness_ms: Vec<f64>,
}

impl Method {
    fn total(&self, count: fn(&Failures) -> u64) -> u64 {
        self.swaps.iter().map(|swap| count(&swap.failures)).sum()
    }

    fn per_swap(&self, count: fn(&Failures) -> u64) -> Vec<f64> {
        self.swaps
            .iter()
            .map(|swap| count(&swap.failures) as f64)
            .collect()
    }

    fn serves_ms(&self) -> Vec<f64> {
        self.swaps
            .iter()
            .filter_map(|swap| swap.serves_ms)
            .collect()
    }
}

fn non_2xx(failures: &Failures) -> u64 {
    failures.non_2xx
}

fn connection_errors(failures: &Failures) -> u64 {
    failures.connection_errors
}

pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// `2.61 (2.55–2.80)`: the median, then the range.
fn spread(values: &[f64], decimals: usize) -> String {
    let Some(middle) = median(values) else {
        return "n/a".into();
    };
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() < 2 || format!("{low:.decimals$}") == format!("{high:.decimals$}") {
        return format!("{middle:.decimals$}");
    }
    format!("{middle:.decimals$} ({low:.decimals$}–{high:.decimals$})")
}

fn counts(method: &Method, count: fn(&Failures) -> u64) -> String {
    let per_swap = median(&method.per_swap(count)).unwrap_or(0.0);
    format!("{} ({per_swap:.0})", method.total(count))
}

fn of_runs(runs: &[ToolRun], figure: fn(&ToolRun) -> f64) -> Vec<f64> {
    runs.iter().map(figure).collect()
}

pub fn print_figures(methods: &[Method], swaps: usize) {
    println!(
        "\n## Every method, {swaps} swaps each: median (range); failures as total of the {swaps} \
         swaps (median per swap)\n"
    );
    println!(
        "| method | non-2xx | connection errors | deploy wall, no load (s) | Docker's part: pull + \
         run + health wait + stop, no load (s) | tool overhead, no load / under load (s) | SSH \
         round trips | healthy → new color serves (ms) | a keep-alive client still sends to the old \
         color for (ms) | readiness noticed after the app is ready (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for method in methods {
        let dash = || "—".to_owned();
        let (serves, old) = if method.switches {
            let old: Vec<f64> = method.swaps.iter().map(|s| s.old_after_new_ms).collect();
            (spread(&method.serves_ms(), 0), spread(&old, 0))
        } else {
            (dash(), dash())
        };
        let tool = method.tool.as_ref();
        let tool_cell = |cell: fn(&ToolFigures) -> String| tool.map_or_else(dash, cell);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {serves} | {old} | {} |",
            method.label,
            counts(method, non_2xx),
            counts(method, connection_errors),
            tool_cell(|t| spread(&of_runs(&t.unloaded, |r| r.wall), 2)),
            tool_cell(|t| spread(&of_runs(&t.unloaded, |r| r.docker), 2)),
            tool_cell(|t| format!(
                "{} / {}",
                spread(&of_runs(&t.unloaded, ToolRun::overhead), 2),
                spread(&of_runs(&t.loaded, ToolRun::overhead), 2)
            )),
            tool_cell(|t| spread(&of_runs(&t.loaded, |r| r.round_trips), 0)),
            tool_cell(|t| spread(&t.readiness_ms, 0)),
        );
    }
}

struct Target {
    what: &'static str,
    limit: f64,
    unit: &'static str,
    decimals: usize,
    measured: fn(&Method, &ToolFigures) -> Option<f64>,
}

const TARGETS: &[Target] = &[
    Target {
        what: "non-2xx under load, all swaps",
        limit: 0.0,
        unit: "",
        decimals: 0,
        measured: |m, _| Some(m.total(non_2xx) as f64),
    },
    Target {
        what: "connection errors under load, all swaps",
        limit: 0.0,
        unit: "",
        decimals: 0,
        measured: |m, _| Some(m.total(connection_errors) as f64),
    },
    Target {
        what: "SSH round trips per deploy",
        limit: 5.0,
        unit: "",
        decimals: 0,
        measured: |_, t| median(&of_runs(&t.loaded, |r| r.round_trips)),
    },
    Target {
        what: "tool overhead without load",
        limit: 0.3,
        unit: " s",
        decimals: 2,
        measured: |_, t| median(&of_runs(&t.unloaded, ToolRun::overhead)),
    },
    Target {
        what: "tool overhead under load",
        limit: 0.8,
        unit: " s",
        decimals: 2,
        measured: |_, t| median(&of_runs(&t.loaded, ToolRun::overhead)),
    },
    Target {
        what: "healthy → new color serves",
        limit: 200.0,
        unit: " ms",
        decimals: 0,
        measured: |m, _| median(&m.serves_ms()),
    },
    Target {
        what: "readiness noticed after the app is ready (default settings)",
        limit: 100.0,
        unit: " ms",
        decimals: 0,
        measured: |_, t| median(&t.readiness_ms),
    },
    Target {
        what: "deploy wall without load",
        limit: 1.5,
        unit: " s",
        decimals: 2,
        measured: |_, t| median(&of_runs(&t.unloaded, |r| r.wall)),
    },
];

pub fn print_targets(methods: &[Method]) {
    let tools: Vec<(&Method, &ToolFigures)> = methods
        .iter()
        .filter_map(|m| Some((m, m.tool.as_ref()?)))
        .collect();
    println!("\n## Issue 12's targets against the medians\n");
    let names: Vec<&str> = tools
        .iter()
        .map(|(m, _)| m.label.split(' ').next().unwrap_or(""))
        .collect();
    println!("| target | goal | {} |", names.join(" | "));
    println!("|---|---|{}", "---|".repeat(names.len()));
    for target in TARGETS {
        let decimals = target.decimals;
        let cells: Vec<String> = tools
            .iter()
            .map(|(method, tool)| match (target.measured)(method, tool) {
                Some(value) => format!(
                    "{value:.decimals$}{} {}",
                    target.unit,
                    if value <= target.limit {
                        "met"
                    } else {
                        "**not met**"
                    }
                ),
                None => "n/a".into(),
            })
            .collect();
        let goal = if target.limit == 0.0 {
            "0".to_owned()
        } else {
            format!("≤ {:.decimals$}{}", target.limit, target.unit)
        };
        println!("| {} | {goal} | {} |", target.what, cells.join(" | "));
    }
}

/// What one request on a new connection waits through nginx under the load, with no swap (the
/// floor under "healthy → serves" and under the drain's wait for the old color's connections).
pub fn print_latencies(mut latencies: Vec<std::time::Duration>) {
    if latencies.is_empty() {
        return;
    }
    latencies.sort();
    let at = |share: f64| {
        let index = ((latencies.len() - 1) as f64 * share).round() as usize;
        latencies[index].as_secs_f64() * 1000.0
    };
    println!(
        "\nUnder the load, with no swap, a request on a new connection through nginx took \
         {:.0} ms (median), {:.0} ms (90th percentile), {:.0} ms (max) over {} requests.",
        at(0.5),
        at(0.9),
        at(1.0),
        latencies.len()
    );
}

/// Each swap under load: how long the drain waited, when the new color first served (how long
/// that request and the slowest probe request before it waited), and the SYNs sent again meanwhile — a connection attempt whose
/// first SYN a full listen queue dropped is retried 1 s later, to the color it was sent to.
pub fn print_swaps(methods: &[Method]) {
    println!(
        "\n## Each swap under load: drain, healthy → serves, and SYNs sent again (≥ 1 s waits)\n"
    );
    println!(
        "| method | swap | drain (s) | this host dialed the old container until (ms after \
         healthy) | healthy → new color serves (ms) | that request waited (ms) | the longest wait \
         of a probe request before it (ms) | SYNs sent again on this host during the swap |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for method in methods {
        let name = method.label.split(' ').next().unwrap_or("");
        for (i, swap) in method.swaps.iter().enumerate() {
            let run = method.tool.as_ref().and_then(|tool| tool.loaded.get(i));
            let drain = run.map_or("—".to_owned(), |run| format!("{:.2}", run.drain));
            let ms = |value: Option<f64>| value.map_or("—".to_owned(), |v| format!("{v:.0}"));
            println!(
                "| {name} | {} | {drain} | {} | {} | {} | {} | {} |",
                i + 1,
                ms(run.and_then(|run| run.old_attempts_until_ms)),
                ms(swap.serves_ms),
                ms(swap.first_new_waited_ms),
                ms(swap.longest_wait_before_new_ms),
                swap.syn_retransmits
            );
        }
    }
}
