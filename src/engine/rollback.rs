//! `bluegreen rollback`: traffic back to the last good image recorded in state.json (by
//! digest) — instant when the other color's kept container still holds it, re-created from the
//! digest otherwise; with no good previous image recorded, nothing changes (exit 1).

use anyhow::Result;

use super::deploy::{observe_for_swap, under_lock};
use super::swap::{self, Request, Summary};
use super::{runbook, Ctx};
use crate::remote::Host;

pub async fn rollback<H: Host>(ctx: &Ctx<'_, H>) -> Result<Summary> {
    let request = Request {
        action: "rollback",
        force: true,
    };
    under_lock(ctx, &request, "rollback", async |ctx: &Ctx<'_, H>| {
        let observed = observe_for_swap(ctx).await?;
        let runbook = runbook::rollback(ctx, &observed)?;
        swap::run(ctx, &observed, &runbook, &request).await
    })
    .await
}
