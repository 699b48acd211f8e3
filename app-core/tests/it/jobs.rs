use crate::accounts::open;
use app_core::jobs::{JobFailure, JobFilter, Jobs, Lane, NewJob};
use app_core::{Error, Store};
use left4me_protocol::{AppEvent, JobEventData, JobKind, JobState};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

fn new_job(owner: i64, lane: Lane) -> NewJob {
    NewJob {
        kind: JobKind::Start,
        owner: Some(owner),
        host_id: None,
        server_id: None,
        target: "server test".into(),
        lane,
    }
}

async fn wait_finished(jobs: &Jobs, session: &app_core::Session, id: i64) -> left4me_protocol::Job {
    for _ in 0..500 {
        let job = jobs.job(session, id).unwrap();
        if job.state.is_finished() {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} did not finish");
}

#[tokio::test]
async fn one_lane_runs_in_order_and_lanes_run_in_parallel() {
    let (_dir, store, _) = open();
    let admin = store.create_first_admin("admin", "admin password").unwrap();
    let store = Arc::new(store);
    let (tx, _) = broadcast::channel(1024);
    let jobs = Jobs::start(store, tx).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let mut ids = Vec::new();
    for i in 0..5 {
        let log = log.clone();
        let mut release = release_rx.clone();
        let job = jobs
            .submit(
                new_job(admin.user_id(), Lane::Server(1)),
                move |ctx| async move {
                    log.lock().unwrap().push(format!("start {i}"));
                    if i == 0 {
                        // The first job holds its lane until released.
                        while !*release.borrow_and_update() {
                            release.changed().await.unwrap();
                        }
                    }
                    ctx.say(&format!("job {i}"));
                    log.lock().unwrap().push(format!("end {i}"));
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(job.state, JobState::Queued);
        ids.push(job.id);
    }
    // Another lane is not held up by lane 1.
    let other = jobs
        .submit(new_job(admin.user_id(), Lane::Server(2)), |_| async {
            Ok(())
        })
        .unwrap();
    assert_eq!(
        wait_finished(&jobs, &admin, other.id).await.state,
        JobState::Succeeded
    );
    assert_eq!(jobs.job(&admin, ids[0]).unwrap().state, JobState::Running);
    assert_eq!(jobs.job(&admin, ids[1]).unwrap().state, JobState::Queued);
    // What closing the app now would cut: the running job and the queued ones, not the
    // finished one.
    let unfinished: Vec<i64> = jobs.unfinished().unwrap().iter().map(|j| j.id).collect();
    assert_eq!(unfinished, ids);
    release_tx.send(true).unwrap();
    for id in &ids {
        assert_eq!(
            wait_finished(&jobs, &admin, *id).await.state,
            JobState::Succeeded
        );
    }
    assert!(jobs.unfinished().unwrap().is_empty());
    let expected: Vec<String> = (0..5)
        .flat_map(|i| [format!("start {i}"), format!("end {i}")])
        .collect();
    assert_eq!(*log.lock().unwrap(), expected);
    let events = jobs.events(&admin, ids[3]).unwrap();
    assert_eq!(
        events[0].data,
        JobEventData::Line {
            stream: "app".into(),
            text: "job 3".into()
        }
    );
}

#[tokio::test]
async fn failures_cancellation_and_panics_end_jobs_with_their_state() {
    let (_dir, store, _) = open();
    let admin = store.create_first_admin("admin", "admin password").unwrap();
    let (tx, mut rx) = broadcast::channel(1024);
    let jobs = Jobs::start(Arc::new(store), tx).unwrap();
    let me = admin.user_id();

    let failed = jobs
        .submit(new_job(me, Lane::Server(1)), |_| async {
            Err(JobFailure {
                state: JobState::Failed,
                message: "port taken".into(),
                exit_code: Some(2),
                code: None,
            })
        })
        .unwrap();
    let failed = wait_finished(&jobs, &admin, failed.id).await;
    assert_eq!(
        (failed.state, failed.error.as_deref(), failed.exit_code),
        (JobState::Failed, Some("port taken"), Some(2))
    );

    // A running job sees the cancellation and stops.
    let running = jobs
        .submit(new_job(me, Lane::Server(1)), |ctx| async move {
            ctx.say("waiting");
            ctx.cancelled().await;
            Err(JobFailure::cancelled())
        })
        .unwrap();
    // A job queued behind it never starts once cancelled.
    let queued = jobs
        .submit(new_job(me, Lane::Server(1)), |_| async {
            panic!("must not run")
        })
        .unwrap();
    jobs.cancel(&admin, queued.id).unwrap();
    while jobs.job(&admin, running.id).unwrap().state != JobState::Running {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    jobs.cancel(&admin, running.id).unwrap();
    assert_eq!(
        wait_finished(&jobs, &admin, running.id).await.state,
        JobState::Cancelled
    );
    let queued = wait_finished(&jobs, &admin, queued.id).await;
    assert_eq!(queued.state, JobState::Cancelled);
    assert_eq!(queued.started_ms, None);
    let err = jobs.cancel(&admin, queued.id).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("job {} has already ended (cancelled)", queued.id)
    );

    let panicked = jobs
        .submit(new_job(me, Lane::Server(1)), |_| async { panic!("boom") })
        .unwrap();
    let panicked = wait_finished(&jobs, &admin, panicked.id).await;
    assert_eq!(panicked.state, JobState::Failed);
    assert!(panicked.error.unwrap().starts_with("the job crashed"));
    // The lane goes on after a panic.
    let after = jobs
        .submit(new_job(me, Lane::Server(1)), |_| async { Ok(()) })
        .unwrap();
    assert_eq!(
        wait_finished(&jobs, &admin, after.id).await.state,
        JobState::Succeeded
    );

    // Subscribers saw each state change as it happened.
    let mut states = Vec::new();
    while let Ok(event) = rx.try_recv() {
        if let AppEvent::Job(job) = event
            && job.id == running.id
        {
            states.push(job.state);
        }
    }
    assert_eq!(
        states,
        [JobState::Queued, JobState::Running, JobState::Cancelled]
    );
}

#[tokio::test]
async fn jobs_left_running_are_interrupted_at_the_next_start_and_users_see_only_theirs() {
    let (dir, store, clock) = open();
    let admin = store.create_first_admin("admin", "admin password").unwrap();
    store
        .create_user(&admin, "alice", "alice password", false)
        .unwrap();
    let alice = store.login("alice", "alice password").unwrap();
    let store = Arc::new(store);
    let (tx, _) = broadcast::channel(16);
    let jobs = Jobs::start(store.clone(), tx).unwrap();
    let stuck = jobs
        .submit(new_job(alice.user_id(), Lane::Host(1)), |ctx| async move {
            ctx.say("working");
            std::future::pending::<()>().await;
            Ok(())
        })
        .unwrap();
    while jobs.job(&alice, stuck.id).unwrap().state != JobState::Running {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let admins = jobs
        .submit(new_job(admin.user_id(), Lane::Host(2)), |_| async {
            Ok(())
        })
        .unwrap();
    wait_finished(&jobs, &admin, admins.id).await;
    // Alice sees her job, not the admin's; the admin sees both.
    let err = jobs.job(&alice, admins.id).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(jobs.jobs(&alice, &JobFilter::default()).unwrap().len(), 1);
    assert_eq!(jobs.jobs(&admin, &JobFilter::default()).unwrap().len(), 2);
    let running_only = JobFilter {
        state: Some(JobState::Running),
        ..Default::default()
    };
    assert_eq!(jobs.jobs(&admin, &running_only).unwrap().len(), 1);
    assert!(matches!(
        jobs.cancel(&alice, admins.id).unwrap_err(),
        Error::NotFound(_)
    ));

    // The app "restarts" while the job runs.
    drop(jobs);
    drop(store);
    let store = Arc::new(Store::open_with_clock(&dir.path().join("left4me.db"), clock).unwrap());
    let (tx, _) = broadcast::channel(16);
    let jobs = Jobs::start(store, tx).unwrap();
    let job = jobs.job(&alice, stuck.id).unwrap();
    assert_eq!(job.state, JobState::Interrupted);
    assert_eq!(
        job.error.as_deref(),
        Some("the app stopped while the job was running")
    );
    assert!(job.finished_ms.is_some());
}
