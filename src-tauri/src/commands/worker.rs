//! The thread the synchronous commands run on. Tauri calls the invoke handler on the
//! window's main thread, which also serves the window's other requests and passes its
//! frames on to the screen: a query of a thousand servers there holds all of that up. The
//! commands run here instead, one at a time in the order they came, as they did on the
//! main thread.

use std::sync::{OnceLock, mpsc};

type Work = Box<dyn FnOnce() + Send>;

static QUEUE: OnceLock<mpsc::Sender<Work>> = OnceLock::new();

/// Queues `work` on the commands' thread at once; the future answers what it returned, or
/// none if it panicked.
pub fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> impl Future<Output = Option<T>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Work = Box::new(move || {
        let _ = tx.send(work());
    });
    QUEUE
        .get_or_init(start)
        .send(job)
        .expect("the commands' thread runs as long as the app");
    async move { rx.await.ok() }
}

fn start() -> mpsc::Sender<Work> {
    let (tx, rx) = mpsc::channel::<Work>();
    std::thread::Builder::new()
        .name("commands".into())
        .spawn(move || {
            for job in rx {
                // A command that panics loses its own answer, not the thread.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        })
        .expect("start the commands' thread");
    tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn work_runs_off_the_caller_in_the_order_it_came() {
        let caller = std::thread::current().id();
        let order = Arc::new(Mutex::new(Vec::new()));
        let runs: Vec<_> = (0..20)
            .map(|i| {
                let order = order.clone();
                run(move || {
                    order.lock().unwrap().push(i);
                    std::thread::current().id()
                })
            })
            .collect();
        for run in runs {
            assert_ne!(run.await, Some(caller));
        }
        assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_command_that_panics_loses_its_own_answer_only() {
        assert_eq!(run(|| -> u32 { panic!("a bug in a command") }).await, None);
        assert_eq!(run(|| 7).await, Some(7));
    }
}
