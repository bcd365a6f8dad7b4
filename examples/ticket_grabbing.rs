//! Ten buyers race for the last ticket; the lock lets exactly one of them have it.
//! (Python: `Lock()` and `Value('i', 1)` shared by ten `Process`es that each try to buy.)

use procs::Process;
use procs::sync::{Lock, Value};

fn buy((lock, tickets): (Lock, Value<u32>)) -> bool {
    let me = procs::current_process();
    let _guard = lock.acquire();
    let left = tickets.get();
    if left == 0 {
        println!("[{}] sold out", me.name());
        return false;
    }
    tickets.set(left - 1);
    println!("[{}] bought the last ticket", me.name());
    true
}

fn main() -> procs::Result<()> {
    procs::init();
    let lock = Lock::new()?;
    let tickets = Value::new(1u32)?;
    let buyers = (0..10)
        .map(|i| {
            Process::builder()
                .name(format!("buyer-{i}"))
                .spawn(buy, (lock.clone(), tickets.clone()))
        })
        .collect::<procs::Result<Vec<_>>>()?;
    let mut winners = 0;
    for mut buyer in buyers {
        winners += u32::from(buyer.join()?);
    }
    println!("{winners} buyer got the ticket; {} left", tickets.get());
    assert_eq!(winners, 1);
    assert_eq!(tickets.get(), 0);
    Ok(())
}
