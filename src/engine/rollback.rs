//! `bluegreen rollback`: traffic back to an image that ran before, by digest. Plain `rollback`
//! goes to the previous image recorded in state.json; `--to N` to the Nth newest successful
//! history entry (as `status` numbers them); `--to IMAGE` to a digest (`repo@sha256:…` or
//! `sha256:…`; in process mode a release, `release:ID` or `ID`) found in the history. Instant
//! when the idle color's kept container holds it; re-created from the digest otherwise, with a
//! deploy's checks (health, verify, switch back on failure) and without its hooks.

use anyhow::Result;

use super::deploy::{observe_for_swap, under_lock};
use super::observe::Observed;
use super::record::{self, HistoryEntry};
use super::swap::{self, Request, Summary};
use super::{runbook, Ctx};
use crate::build::artifact::RELEASE_PREFIX;
use crate::failure::Failure;
use crate::remote::Host;

/// Where a rollback goes.
#[derive(Clone, Debug, PartialEq)]
pub enum To {
    /// The previous image recorded in state.json (plain `rollback`).
    Previous,
    /// The Nth newest successful history entry, numbered from 1 (`--to N`).
    Entry(usize),
    /// A digest or release that ran before (`--to IMAGE`).
    Image(String),
}

/// The shortest digest prefix `--to sha256:…` accepts (12 hex digits, as `docker images`).
const SHORT_DIGEST: usize = "sha256:".len() + 12;

impl To {
    /// `--to`'s value (`origin` names the flag or input in errors); absent or empty: previous.
    pub fn parse(text: Option<&str>, origin: &str) -> Result<To, Failure> {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(To::Previous);
        };
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return match text.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(To::Entry(n)),
                _ => Err(Failure::config(format!(
                    "{origin} {text}: history entries are numbered from 1 (newest); nothing on \
                     the server was touched; `bluegreen status` shows the numbers"
                ))),
            };
        }
        let digest = text.contains("sha256:");
        let release = text.starts_with(RELEASE_PREFIX) || is_release_id(text);
        if digest || release {
            return Ok(To::Image(text.to_owned()));
        }
        Err(Failure::config(format!(
            "{origin} {text}: neither a history number nor a digest; nothing on the server was \
             touched; give N (the numbers `bluegreen status` shows) or a digest it ran before \
             (repo@sha256:… or sha256:…; in process mode release:ID)"
        )))
    }
}

/// Process mode's release id alone: 12 hex digits.
fn is_release_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a rollback restores: the image (by digest, or a release) and its commit when known.
#[derive(Clone, Debug, PartialEq)]
pub struct Restore {
    pub image: String,
    pub sha: Option<String>,
}

/// `origin` names where `to` came from (`--to`, the `to` input) in errors.
pub async fn rollback_to<H: Host>(ctx: &Ctx<'_, H>, to: &To, origin: &str) -> Result<Summary> {
    let request = Request {
        action: "rollback",
        force: true,
    };
    under_lock(ctx, &request, "rollback", async |ctx: &Ctx<'_, H>| {
        let observed = observe_for_swap(ctx).await?;
        let restore = choose(&observed, to, origin, &ctx.config.state_dir)?;
        if let Some(summary) = already_live(&observed, &restore) {
            return Ok(summary);
        }
        ctx.printer
            .info(&format!("rolling back to {}", restore.image));
        let runbook = runbook::rollback(ctx, &observed, &restore)?;
        let mut summary = swap::run(ctx, &observed, &runbook, &request).await?;
        summary.sha = restore.sha.or(summary.sha);
        Ok(summary)
    })
    .await
}

/// The image `to` names, found in state.json or the history; `Err`: nothing to go back to
/// (exit 1) or a `--to` that names nothing recorded (exit 2).
pub fn choose(
    observed: &Observed,
    to: &To,
    origin: &str,
    state_dir: &str,
) -> Result<Restore, Failure> {
    let serving = swap::serving_now(observed);
    let restore = match to {
        To::Previous => {
            let Some(image) = observed.state.previous_image.clone() else {
                return Err(Failure::deploy(format!(
                    "nothing to roll back to: no earlier successful deploy is recorded in \
                     {state_dir}; {serving}; nothing was changed; deploy the image you want \
                     with `bluegreen deploy --image-ref`"
                )));
            };
            Restore { image, sha: None }
        }
        To::Entry(n) => {
            let Some((_, entry)) = record::numbered(&observed.history).nth(n - 1) else {
                return Err(no_entry(*n, origin, observed, state_dir, &serving));
            };
            restore_of(entry)
        }
        To::Image(text) => {
            let mut found: Vec<&HistoryEntry> = Vec::new();
            for entry in record::numbered(&observed.history).map(|(_, entry)| entry) {
                let image = entry.image.as_deref().unwrap_or_default();
                if names(image, text) && !found.iter().any(|f| f.image == entry.image) {
                    found.push(entry);
                }
            }
            match found.as_slice() {
                [entry] => restore_of(entry),
                [] => {
                    return Err(Failure::config(format!(
                        "{origin} {text}: no successful deploy of that image in the history in \
                         {state_dir} (its last {} entries are read); {serving}; nothing was \
                         changed; `bluegreen status` lists what ran, numbered",
                        observed.history.len()
                    )))
                }
                several => {
                    let images: Vec<&str> =
                        several.iter().filter_map(|e| e.image.as_deref()).collect();
                    return Err(Failure::config(format!(
                        "{origin} {text}: names {} images that ran ({}); {serving}; nothing was \
                         changed; give more of the digest",
                        several.len(),
                        images.join(", ")
                    )));
                }
            }
        }
    };
    Ok(Restore {
        sha: restore.sha.or_else(|| sha_of(observed, &restore.image)),
        ..restore
    })
}

/// `--to N` beyond the numbered entries: how many there are, and where to see them.
fn no_entry(
    n: usize,
    origin: &str,
    observed: &Observed,
    state_dir: &str,
    serving: &str,
) -> Failure {
    let count = record::numbered(&observed.history).count();
    let what = match count {
        0 => {
            return Failure::config(format!(
                "{origin} {n}: the history in {state_dir} has no successful deploy yet; {serving}; \
                 nothing was changed; deploy first"
            ))
        }
        1 => "1 successful entry, numbered 1".to_owned(),
        count => format!("{count} successful entries, numbered 1–{count}"),
    };
    Failure::config(format!(
        "{origin} {n}: the history in {state_dir} has {what} by `bluegreen status`; {serving}; \
         nothing was changed; pick one of those numbers, or give a digest it ran before"
    ))
}

/// Whether the user's `text` names the recorded `image`: the whole reference, its digest (or
/// a prefix of 12 hex digits or more), or in process mode the release id.
fn names(image: &str, text: &str) -> bool {
    let digest = image.rsplit_once('@').map_or(image, |(_, digest)| digest);
    image == text
        || digest == text
        || (text.starts_with("sha256:") && text.len() >= SHORT_DIGEST && digest.starts_with(text))
        || image.strip_prefix(RELEASE_PREFIX) == Some(text)
}

fn restore_of(entry: &HistoryEntry) -> Restore {
    Restore {
        image: entry.image.clone().unwrap_or_default(),
        sha: entry.sha.clone(),
    }
}

/// The commit of `image`: a container's label, else the newest history entry that knows it.
fn sha_of(observed: &Observed, image: &str) -> Option<String> {
    let labelled = observed
        .containers
        .values()
        .filter(|c| c.image_ref == image)
        .find_map(|c| c.sha.clone());
    labelled.or_else(|| {
        observed
            .history
            .iter()
            .filter(|e| e.image.as_deref() == Some(image))
            .find_map(|e| e.sha.clone())
    })
}

/// `to` names what serves now: nothing changes (exit 0), said as such.
fn already_live(observed: &Observed, restore: &Restore) -> Option<Summary> {
    let live = observed.live?;
    let container = observed.containers.get(&live).filter(|c| c.running)?;
    (container.image_ref == restore.image).then(|| Summary {
        action: "rolled back to".into(),
        old: None,
        new: live,
        image: restore.image.clone(),
        previous_image: String::new(),
        health_attempts: 0,
        timings: Default::default(),
        drain: String::new(),
        round_trips: 0,
        seconds: 0.0,
        unchanged: true,
        proof: String::new(),
        bake: None,
        impact: None,
        sha: restore.sha.clone().or_else(|| container.sha.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_parses_numbers_digests_and_releases_and_names_itself_in_errors() {
        assert_eq!(To::parse(None, "--to").unwrap(), To::Previous);
        assert_eq!(To::parse(Some(" "), "--to").unwrap(), To::Previous);
        assert_eq!(To::parse(Some("3"), "--to").unwrap(), To::Entry(3));
        let digest = format!("reg/app@sha256:{}", "a".repeat(64));
        assert_eq!(
            To::parse(Some(&digest), "--to").unwrap(),
            To::Image(digest.clone())
        );
        assert_eq!(
            To::parse(Some("0123456789ab"), "--to").unwrap(),
            To::Image("0123456789ab".into())
        );
        let zero = To::parse(Some("0"), "the `to` input").unwrap_err();
        assert_eq!(zero.code, 2);
        assert!(
            zero.message
                .starts_with("the `to` input 0: history entries are numbered from 1"),
            "{}",
            zero.message
        );
        let tag = To::parse(Some("reg/app:v1"), "--to").unwrap_err();
        assert!(
            tag.message
                .starts_with("--to reg/app:v1: neither a history number nor a digest"),
            "{}",
            tag.message
        );
    }

    #[test]
    fn a_digest_is_named_whole_by_its_digest_or_by_12_hex_digits() {
        let image = format!("reg/app@sha256:{}", "ab".repeat(32));
        assert!(names(&image, &image));
        assert!(names(&image, &format!("sha256:{}", "ab".repeat(32))));
        assert!(names(&image, "sha256:abababababab"));
        assert!(!names(&image, "sha256:ababab"), "too short to be sure");
        assert!(!names(&image, "sha256:abababababac"));
        assert!(names("release:0123456789ab", "0123456789ab"));
        assert!(names("release:0123456789ab", "release:0123456789ab"));
        assert!(!names("release:0123456789ab", "release:0123456789ac"));
    }

    fn entry(result: &str, image: &str, sha: Option<&str>) -> HistoryEntry {
        HistoryEntry {
            time: "2026-12-06T10:00:00Z".into(),
            action: "deploy".into(),
            color: Some(crate::color::Color::Blue),
            image: Some(image.into()),
            result: result.into(),
            previous_color: None,
            reason: None,
            seconds: 1.0,
            impact: None,
            sha: sha.map(str::to_owned),
        }
    }

    /// Blue live; the history (newest first): v3 ok, v9 failed, v2 ok, v1 ok.
    fn observed() -> Observed {
        let history = vec![
            entry("success", "reg/app@sha256:3333333333333333", Some("c3")),
            entry("failed", "reg/app@sha256:9999999999999999", None),
            entry("success", "reg/app@sha256:2222222222222222", None),
            entry("success", "reg/app@sha256:1111111111111111", Some("c1")),
        ];
        Observed {
            switch: None,
            switch_file: None,
            switch_table: None,
            switch_color: Some(crate::color::Color::Blue),
            live: Some(crate::color::Color::Blue),
            repoint: None,
            containers: Default::default(),
            state: Default::default(),
            lock: None,
            history,
            notes: vec![],
            holders: Default::default(),
            adopted: None,
            service_port_users: None,
        }
    }

    #[test]
    fn to_n_counts_only_successful_entries_newest_first() {
        let observed = observed();
        let choose = |to| choose(&observed, &to, "--to", "/srv/app");
        let third = choose(To::Entry(3)).unwrap();
        assert_eq!(third.image, "reg/app@sha256:1111111111111111");
        assert_eq!(third.sha.as_deref(), Some("c1"));
        let second = choose(To::Entry(2)).unwrap();
        assert_eq!(second.image, "reg/app@sha256:2222222222222222");
        assert_eq!(second.sha, None);
        let beyond = choose(To::Entry(4)).unwrap_err();
        assert_eq!(beyond.code, 2);
        assert!(
            beyond.message.starts_with(
                "--to 4: the history in /srv/app has 3 successful entries, numbered 1–3 by \
                 `bluegreen status`;"
            ),
            "{}",
            beyond.message
        );
        assert!(beyond
            .message
            .ends_with("pick one of those numbers, or give a digest it ran before"));
    }

    #[test]
    fn to_image_finds_a_successful_entry_by_digest() {
        let observed = observed();
        let by_digest = choose(
            &observed,
            &To::Image("sha256:1111111111111111".into()),
            "--to",
            "/s",
        )
        .unwrap();
        assert_eq!(by_digest.sha.as_deref(), Some("c1"));
        // A failed deploy is not something to go back to.
        let failed = choose(
            &observed,
            &To::Image("sha256:9999999999999999".into()),
            "the `to` input",
            "/s",
        )
        .unwrap_err();
        assert!(
            failed.message.starts_with(
                "the `to` input sha256:9999999999999999: no successful deploy of that image"
            ),
            "{}",
            failed.message
        );
        assert_eq!(failed.code, 2);
    }

    #[test]
    fn plain_rollback_without_a_previous_image_changes_nothing() {
        let error = choose(&observed(), &To::Previous, "--to", "/s").unwrap_err();
        assert_eq!(error.code, 1);
        assert!(
            error.message.starts_with("nothing to roll back to"),
            "{}",
            error.message
        );
    }
}
