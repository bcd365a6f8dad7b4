//! Python's "subclass Process and override run()": a struct that implements `Task`.

use procs::{Process, Task};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct CountPrimes {
    below: u64,
}

impl Task for CountPrimes {
    type Output = usize;

    fn run(self) -> usize {
        let count = (2..self.below)
            .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
            .count();
        println!(
            "[{}] {count} primes below {}",
            procs::current_process().name(),
            self.below
        );
        count
    }
}

fn main() -> procs::Result<()> {
    procs::init();
    let mut workers: Vec<Process<usize>> = [10_000, 100_000, 1_000_000]
        .into_iter()
        .map(|below| Process::spawn_task(CountPrimes { below }))
        .collect::<procs::Result<_>>()?;
    let counts: Vec<usize> = workers
        .iter_mut()
        .map(|p| p.join())
        .collect::<procs::Result<_>>()?;
    assert_eq!(counts, [1229, 9592, 78498]);
    println!("the tasks returned {counts:?}");
    Ok(())
}
