//! A manager served on TCP loopback and used by a second program that knows only the
//! address and the key. (Python: `BaseManager(address=('', 50000), authkey=b'abc')`,
//! `register('get_queue', callable=lambda: queue)`, `m.connect()` in another program.)
//!
//! Run without arguments, this program is the server side: it starts a manager, publishes
//! a job queue and a result list, and runs itself again as the client, with the address
//! and the key on the command line.

use std::time::Duration;

use procs::{Address, ListProxy, Manager, QueueProxy};

const KEY: &[u8] = b"remote manager demo";

fn client(address: &str) -> procs::Result<()> {
    let manager = Manager::connect(address.parse::<Address>()?, KEY)?;
    let jobs: QueueProxy<u64> = manager.lookup("jobs")?.expect("the server publishes jobs");
    let results: ListProxy<(u64, u64)> = manager.lookup("results")?.expect("and results");
    let mut done = 0;
    while let Ok(n) = jobs.get_timeout(Duration::from_secs(10)) {
        if n == 0 {
            break;
        }
        results.push((n, n * n))?;
        done += 1;
    }
    println!("client (pid {}): squared {done} numbers", procs::getpid());
    Ok(())
}

fn main() -> procs::Result<()> {
    procs::init();
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, address] = args.as_slice()
        && role == "client"
    {
        return client(address);
    }
    let manager = Manager::start_at("127.0.0.1:0".parse::<Address>()?, KEY)?;
    println!("manager serving on {}", manager.address());
    let jobs = manager.queue::<u64>()?;
    let results = manager.list::<(u64, u64)>()?;
    manager.publish("jobs", &jobs)?;
    manager.publish("results", &results)?;
    for n in (1..=20).chain([0]) {
        jobs.put(n).map_err(procs::PutError::error)?;
    }
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(["client", &manager.address().to_string()])
        .status()?;
    assert!(status.success(), "the client program failed: {status}");
    let mut squares = results.to_vec()?;
    squares.sort_unstable();
    println!(
        "server: got {} results back, last {:?}",
        squares.len(),
        squares.last()
    );
    assert_eq!(squares, (1..=20).map(|n| (n, n * n)).collect::<Vec<_>>());
    Ok(())
}
