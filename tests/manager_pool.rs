//! A manager's proxies inside pool tasks: workers append to a shared list and count with
//! `update_with`, and the parent sees every task's mark and the exact total (the issue's
//! pool test; Python's `Pool` + `Manager().list()` idiom).

use procs::{DictProxy, ListProxy, Manager, Pool};

fn mark((n, seen, counts): (u32, ListProxy<u32>, DictProxy<String, u64>)) -> u32 {
    seen.push(n).unwrap();
    counts.update_with("tasks".into(), |c| *c += 1).unwrap();
    n * 2
}

#[test]
fn pool_workers_share_a_managers_list_and_counter() {
    procs::init();
    let manager = Manager::start().unwrap();
    let seen = manager.list::<u32>().unwrap();
    let counts = manager.dict::<String, u64>().unwrap();
    let pool = Pool::new(3).unwrap();
    let doubled = pool
        .map(mark, (0..100).map(|n| (n, seen.clone(), counts.clone())))
        .unwrap();
    assert_eq!(doubled, (0..100).map(|n| n * 2).collect::<Vec<_>>());
    let mut all = seen.to_vec().unwrap();
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert_eq!(counts.get("tasks").unwrap(), Some(100));
}
