//! Twelve workers share five places: a bounded semaphore keeps at most five at work.
//! (Python: `BoundedSemaphore(5)` shared by twelve `Process`es.)

use std::time::Duration;

use procs::Process;
use procs::sync::{BoundedSemaphore, Value};

/// `[working now, most at once]`.
type Working = Value<[u32; 2]>;

fn work((places, working): (BoundedSemaphore, Working)) {
    let me = procs::current_process();
    let _place = places.acquire();
    let now = working.with_lock(|[now, most]| {
        *now += 1;
        *most = (*most).max(*now);
        *now
    });
    println!("[{}] working, {now} at work", me.name());
    // The work itself: a short pause.
    std::thread::sleep(Duration::from_millis(20));
    working.with_lock(|[now, _]| *now -= 1);
}

fn main() -> procs::Result<()> {
    procs::init();
    let places = BoundedSemaphore::new(5)?;
    let working = Value::new([0u32; 2])?;
    let workers = (0..12)
        .map(|i| {
            Process::builder()
                .name(format!("worker-{i}"))
                .spawn(work, (places.clone(), working.clone()))
        })
        .collect::<procs::Result<Vec<_>>>()?;
    for mut worker in workers {
        worker.join()?;
    }
    let [now, most] = working.get();
    println!("at most {most} workers at once");
    assert_eq!(now, 0);
    assert!(most <= 5);
    assert!(places.release().is_err(), "all places are back");
    Ok(())
}
