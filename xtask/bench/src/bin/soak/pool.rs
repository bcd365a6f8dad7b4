//! The model of `Pool`: a worker killed mid-task fails only that task.
//!
//! A pool of two workers (started with the spawn method) gets 12 to 24 tasks with `apply_async`; each spins 0.5 to 3 ms and
//! returns a function of its input. At a random point one live worker is SIGKILLed.
//!
//! - Every task's `get` returns within the bound: its right value, or `WorkerDied`.
//! - At most one task per kill fails with `WorkerDied`; no other error, no wrong value.
//! - `close` then `join` returns within the bound, and the workers are gone after it (the
//!   resource check of every trial counts the children).

use std::error::Error;
use std::time::Instant;

use procs::{Pool, StartMethod};

use crate::Trial;
use crate::resources::live_children;

fn task((input, micros): (u64, u64)) -> u64 {
    crate::spin(micros);
    input.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5a5a
}

pub(crate) fn trial(t: &mut Trial) -> Result<(), Box<dyn Error>> {
    // With the spawn method the workers are children of this process, so the victim is
    // picked among them (under the fork server they are the zygote's, and the zygote is the
    // only child to be seen).
    let pool = Pool::builder()
        .processes(2)
        .start_method(StartMethod::Spawn)
        .build()?;
    let tasks = 12 + t.rng.below(13);
    let started = Instant::now();
    let mut results = Vec::new();
    for input in 0..tasks {
        let micros = 500 + t.rng.below(2500);
        results.push((input, pool.apply_async(task, (input, micros))?));
    }
    if let Some(at) = t.kill_at {
        if let Some(left) = at.checked_sub(started.elapsed()) {
            std::thread::sleep(left);
        }
        let workers = live_children();
        if !workers.is_empty() {
            let pid = workers[t.rng.below(workers.len() as u64) as usize];
            // SAFETY: `kill` has no memory effects; the pid is a child of ours, not reaped.
            if unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) } == 0 {
                t.kills += 1;
            }
        }
    }
    let mut died = 0;
    for (input, result) in &results {
        let left = t.hang.saturating_sub(started.elapsed());
        match result.get_timeout(left) {
            Ok(value) if value == task((*input, 0)) => {}
            Ok(value) => {
                t.bad += 1;
                t.fail(&format!("task {input} returned {value}, a wrong value"));
            }
            Err(procs::Error::WorkerDied { .. }) => died += 1,
            Err(error) if error.is_timeout() => {
                t.hangs += 1;
                t.fail(&format!(
                    "hang: task {input} gave no result within the bound"
                ));
            }
            Err(error) => {
                t.lost += 1;
                t.fail(&format!("task {input} failed: {error}"));
            }
        }
    }
    t.inside += died;
    if died > t.kills {
        t.lost += died - t.kills;
        t.fail(&format!(
            "{died} tasks failed with WorkerDied after {} kill(s)",
            t.kills
        ));
    }
    pool.close();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(pool.join());
    });
    match rx.recv_timeout(t.hang) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            t.bad += 1;
            t.fail(&format!("Pool::join failed: {error}"));
        }
        Err(_) => {
            t.hangs += 1;
            t.stuck = true;
            t.fail("hang: Pool::join did not return within the bound");
        }
    }
    Ok(())
}
