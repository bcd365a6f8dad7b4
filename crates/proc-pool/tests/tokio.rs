//! The pools' futures on a tokio runtime (issue 11: "`std::future::Future`, runtime-agnostic
//! ... test it with tokio"): awaiting a process-pool result must not block the runtime's
//! thread, so other tasks of the same single-threaded runtime keep running meanwhile.

use std::time::Duration;

use proc_pool::{Pool, ProcessPoolExecutor};
use proc_sync::Event;
use procs_testkit::PATIENCE;

/// Waits for `gate` (at most `PATIENCE`) and says whether it was set, then returns `value`.
fn after_gate((gate, value): (Event, u64)) -> (bool, u64) {
    (gate.wait_timeout(PATIENCE), value)
}

fn mul((a, b): (u64, u64)) -> u64 {
    a * b
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

// The task in the worker waits for an event that only another task of the same one-thread
// runtime sets, after a few timer ticks: were the `.await` on the pool's future to block the
// thread, that task would never run and the worker would report the gate unset.
#[test]
fn awaiting_a_process_task_leaves_the_runtime_free() {
    let executor = ProcessPoolExecutor::new(1).unwrap();
    let pool = Pool::new(1).unwrap();
    let gate = Event::new().unwrap();
    let (from_executor, from_pool, ticks) = runtime().block_on(async {
        let waiting = executor.submit(after_gate, (gate.clone(), 7)).unwrap();
        let opener = tokio::spawn({
            let gate = gate.clone();
            async move {
                for _ in 0..3 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                gate.set();
                3
            }
        });
        let from_executor = waiting.await.unwrap();
        let from_pool = pool.apply_async(mul, (6, 7)).unwrap().await.unwrap();
        (from_executor, from_pool, opener.await.unwrap())
    });
    assert_eq!(from_executor, (true, 7));
    assert_eq!(from_pool, 42);
    assert_eq!(ticks, 3);
}

// Many futures awaited together on one thread (`tokio::join!` polls them in turn, each woken
// by its own result), with a failing task among them that fails only its own future.
fn maybe_panic(x: u64) -> u64 {
    if x == 3 {
        panic!("three is unlucky");
    }
    x + 100
}

#[test]
fn futures_awaited_together_each_get_their_own_outcome() {
    let executor = ProcessPoolExecutor::new(2).unwrap();
    let outcomes = runtime().block_on(async {
        let futures: Vec<_> = (0..6)
            .map(|x| executor.submit(maybe_panic, x).unwrap())
            .collect();
        let mut outcomes = Vec::new();
        let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
        for handle in handles {
            outcomes.push(handle.await.unwrap());
        }
        outcomes
    });
    for (x, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(v) => assert_eq!(v, x as u64 + 100),
            Err(e) => {
                assert_eq!(x, 3);
                assert!(e.is_panic(), "{e:?}");
            }
        }
    }
}
