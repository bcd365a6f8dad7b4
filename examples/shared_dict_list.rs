//! Ten processes write their pid into a shared dict and a shared list kept by a manager;
//! the parent sees all ten in both. (Python: `with Manager() as m: d = m.dict(); l = m.list()`,
//! `Process(target=f, args=(d, l))`.)

use procs::{DictProxy, ListProxy, Manager, Process};

fn record((d, l): (DictProxy<u32, String>, ListProxy<u32>)) {
    let pid = procs::getpid();
    d.insert(pid, format!("hello from {pid}")).unwrap();
    l.push(pid).unwrap();
}

fn main() -> procs::Result<()> {
    procs::init();
    let manager = Manager::start()?;
    let d = manager.dict::<u32, String>()?;
    let l = manager.list::<u32>()?;
    let mut children = Vec::new();
    for _ in 0..10 {
        children.push(Process::spawn(record, (d.clone(), l.clone()))?);
    }
    let mut pids = Vec::new();
    for mut child in children {
        pids.push(child.pid().expect("started"));
        child.join()?;
    }
    let entries = d.items()?;
    for (pid, greeting) in &entries {
        println!("{pid}: {greeting}");
    }
    let mut listed = l.to_vec()?;
    println!("list: {listed:?}");
    listed.sort_unstable();
    pids.sort_unstable();
    assert_eq!(listed, pids, "every child is in the list once");
    assert_eq!(entries.len(), 10, "every child is in the dict");
    println!("the dict and the list both hold the 10 children");
    Ok(())
}
