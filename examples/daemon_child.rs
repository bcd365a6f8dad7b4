//! A daemonic child dies with its parent — even when the parent is killed with SIGKILL, which
//! Python's daemonic processes survive.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use procs::Process;

fn tick(_: ()) {
    for i in 0.. {
        println!("  [daemon {}] tick {i}", procs::getpid());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts the daemon, tells the demo its pid through a file, and waits to be killed.
fn parent(pidfile: PathBuf) {
    let daemon = Process::builder()
        .name("ticker")
        .daemon(true)
        .spawn(tick, ())
        .expect("start the daemon");
    std::fs::write(&pidfile, daemon.pid().unwrap().to_string()).expect("write the pid");
    std::thread::sleep(Duration::from_secs(600));
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next())
                != Some("Z")
        })
        .unwrap_or(false)
}

fn main() -> procs::Result<()> {
    procs::init();
    let pidfile = std::env::temp_dir().join(format!("procs-daemon-demo-{}", std::process::id()));
    let _ = std::fs::remove_file(&pidfile);
    let mut p = Process::builder()
        .name("parent")
        .spawn(parent, pidfile.clone())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let daemon: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.parse().ok())
        {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the parent never started its daemon"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(Duration::from_millis(350));
    println!("killing the parent (pid {}) with SIGKILL", p.pid().unwrap());
    p.kill()?;
    println!("parent: {}", p.join().unwrap_err());
    let deadline = Instant::now() + Duration::from_secs(10);
    while cfg!(target_os = "linux") && alive(daemon) {
        assert!(Instant::now() < deadline, "the daemon outlived its parent");
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("the daemon (pid {daemon}) died with its parent");
    let _ = std::fs::remove_file(&pidfile);
    Ok(())
}
