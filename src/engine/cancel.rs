//! Cancellation (Ctrl-C, SIGTERM from the Actions runner): waits stop early, the runbook
//! takes its failure path, and the lock is released.

use std::time::Duration;

use tokio::sync::watch;

#[derive(Clone)]
pub struct Cancel(watch::Receiver<bool>);

#[derive(Debug)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled by a signal")
    }
}

impl std::error::Error for Cancelled {}

impl Cancel {
    /// Cancelled on the first SIGINT or SIGTERM.
    pub fn on_signals() -> Cancel {
        let (sender, receiver) = watch::channel(false);
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut interrupt), Ok(mut terminate)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            let _receivers_may_be_gone = sender.send(true);
            // Keep the sender alive so receivers keep seeing `true`.
            std::future::pending::<()>().await;
        });
        Cancel(receiver)
    }

    /// For tests: cancelled when `true` is sent.
    #[cfg(test)]
    pub fn manual() -> (Cancel, watch::Sender<bool>) {
        let (sender, receiver) = watch::channel(false);
        (Cancel(receiver), sender)
    }

    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// Sleeps, or returns `Err(Cancelled)` as soon as a signal arrives.
    pub async fn sleep(&self, duration: Duration) -> Result<(), Cancelled> {
        let mut receiver = self.0.clone();
        tokio::select! {
            _ = tokio::time::sleep(duration) => self.check(),
            _ = receiver.wait_for(|cancelled| *cancelled) => Err(Cancelled),
        }
    }

    /// Runs read-only `work`, abandoned at once when a signal arrives.
    pub async fn unless_cancelled<T>(
        &self,
        work: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        tokio::select! {
            result = work => result,
            _ = self.cancelled() => Err(Cancelled.into()),
        }
    }

    /// Resolves when cancelled (never otherwise).
    pub async fn cancelled(&self) {
        let mut receiver = self.0.clone();
        let _ = receiver.wait_for(|cancelled| *cancelled).await;
        if !self.is_cancelled() {
            std::future::pending::<()>().await;
        }
    }
}
