//! What requests through nginx got: [`Counts`] (requests, non-2xx, 5xx, no answer) and a run's
//! [`Impact`], those counts in total and per color, as the summary and the history show them.

use serde::{Deserialize, Serialize};

use crate::color::Color;

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
    /// One answer of `color` (`None`: not known).
    pub fn add(&mut self, color: Option<Color>, status: Option<u16>) {
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
        self.describe_over("during the switch")
    }

    /// The same over another span: "during the deploy" also fits a run that never switched.
    pub fn describe_over(&self, span: &str) -> String {
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
            "{} probe requests through nginx {span} ({})",
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_history_json_has_totals_and_colors_and_reads_back() {
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
