//! A named child prints its pid and its parent's pid, and the parent joins it.
//! (Python: `Process(target=info, name='worker').start(); p.join()`.)

use procs::Process;

fn info(title: String) -> u32 {
    let me = procs::current_process();
    let parent = procs::parent_process().expect("a child has a parent");
    println!(
        "[{}] {title}: pid {}, parent pid {} ({})",
        me.name(),
        procs::getpid(),
        parent.pid(),
        parent.name()
    );
    procs::getpid()
}

fn main() -> procs::Result<()> {
    procs::init();
    println!(
        "[{}] pid {}",
        procs::current_process().name(),
        procs::getpid()
    );
    let mut p = Process::builder()
        .name("worker")
        .spawn(info, "hello from the child".to_string())?;
    let child_pid = p.join()?;
    assert_eq!(Some(child_pid), p.pid());
    println!(
        "joined {} (pid {child_pid}), exit code {:?}",
        p.name(),
        p.exitcode()
    );
    Ok(())
}
