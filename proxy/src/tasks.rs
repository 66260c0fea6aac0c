//! Task spawning that shutdown can find: every task a proxy starts is tracked and stops when its
//! cancellation token fires.

use std::future::Future;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Spawns `fut` on `tracker`, dropping it when `token` is cancelled.
pub(crate) fn spawn_cancellable<F>(tracker: &TaskTracker, token: &CancellationToken, fut: F)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let token = token.clone();
    tracker.spawn(async move {
        tokio::select! {
            _ = fut => {}
            () = token.cancelled() => {}
        }
    });
}

/// A hyper executor whose tasks (HTTP/2 streams, client connection drivers) are tracked by the
/// proxy and cancelled with the tunnel they belong to.
#[derive(Clone, Debug)]
pub(crate) struct TrackedExecutor {
    pub(crate) tracker: TaskTracker,
    pub(crate) token: CancellationToken,
}

impl<F> hyper::rt::Executor<F> for TrackedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        spawn_cancellable(&self.tracker, &self.token, fut);
    }
}
