//! For the crash test: opens the database given as the argument, starts one job that
//! records numbered lines as fast as it can, prints `running job <id>`, and runs until
//! killed.

use app_core::Store;
use app_core::jobs::{Jobs, Lane, NewJob};
use left4me_protocol::JobKind;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let path = std::env::args_os()
        .nth(1)
        .expect("usage: busy_job DATABASE");
    let store = Store::open(std::path::Path::new(&path)).expect("open the database");
    let admin = store
        .create_first_admin("admin", "admin password")
        .expect("a new database");
    let store = Arc::new(store);
    let (tx, _) = tokio::sync::broadcast::channel(16);
    let jobs = Jobs::start(store, tx).expect("start the jobs");
    let job = jobs
        .submit(
            NewJob {
                kind: JobKind::Install,
                owner: Some(admin.user_id()),
                host_id: None,
                server_id: None,
                target: "nothing".into(),
                lane: Lane::Host(1),
            },
            |ctx| async move {
                for i in 0.. {
                    ctx.line("stdout", &format!("line {i}"));
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                Ok(())
            },
        )
        .expect("submit");
    while jobs.job(&admin, job.id).expect("read the job").state
        != left4me_protocol::JobState::Running
    {
        tokio::task::yield_now().await;
    }
    println!("running job {}", job.id);
    std::future::pending::<()>().await;
}
