//! `set_start_method` in the main process reaches every generation: a test binary of its own,
//! because the start method is set once per program.

use proc_core::{Process, StartMethod};

/// The method this process sees and the method its own child was started with.
fn two_generations(_: ()) -> (StartMethod, Option<StartMethod>, Option<StartMethod>) {
    let mut child =
        Process::spawn(|_: ()| proc_core::current_process().start_method(), ()).unwrap();
    let theirs = child.join().unwrap();
    (
        proc_core::get_start_method(),
        proc_core::current_process().start_method(),
        theirs,
    )
}

// The example: `set_start_method(Spawn)` used to stop at the first generation, whose
// children reported `ForkServer` (CPython's `spawn.prepare` sets the method in the child).
#[test]
fn set_start_method_in_the_parent_reaches_grandchildren() {
    proc_core::set_start_method(StartMethod::Spawn).unwrap();
    let mut p = Process::spawn(two_generations, ()).unwrap();
    assert_eq!(p.start_method(), StartMethod::Spawn);
    let spawn = Some(StartMethod::Spawn);
    assert_eq!(p.join().unwrap(), (StartMethod::Spawn, spawn, spawn));
}
