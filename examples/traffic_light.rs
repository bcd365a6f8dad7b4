//! A traffic light switches between red and green; cars cross only on green.
//! (Python: an `Event` set and cleared by a light `Process`, waited for by car `Process`es.)

use procs::Process;
use procs::sync::{Event, Lock, Semaphore};
use serde::{Deserialize, Serialize};

/// What the light and the cars share. Cars cross holding `crossing`, and the light turns
/// red holding it too, so no car is halfway across when the light changes.
#[derive(Clone, Serialize, Deserialize)]
struct Road {
    green: Event,
    crossing: Lock,
    crossed: Semaphore,
    closed: Event,
}

fn light((road, cycles): (Road, u32)) {
    for cycle in 1..=cycles {
        {
            let _crossing = road.crossing.acquire();
            println!("[light] cycle {cycle}: green");
            road.green.set();
        }
        // Green lasts until a car has crossed.
        road.crossed.acquire().forget();
        let _crossing = road.crossing.acquire();
        road.green.clear();
        println!("[light] cycle {cycle}: red");
    }
    road.closed.set();
    road.green.set();
}

fn car(road: Road) -> u32 {
    let me = procs::current_process();
    let mut crossings = 0;
    loop {
        road.green.wait();
        let _crossing = road.crossing.acquire();
        if road.closed.is_set() {
            return crossings;
        }
        // The light may have turned red since the wait returned: then wait again.
        if road.green.is_set() {
            crossings += 1;
            println!("[{}] crosses on green", me.name());
            road.crossed.release().expect("a semaphore without a bound");
        }
    }
}

fn main() -> procs::Result<()> {
    procs::init();
    let road = Road {
        green: Event::new()?,
        crossing: Lock::new()?,
        crossed: Semaphore::new(0)?,
        closed: Event::new()?,
    };
    let cars = (0..3)
        .map(|i| {
            Process::builder()
                .name(format!("car-{i}"))
                .spawn(car, road.clone())
        })
        .collect::<procs::Result<Vec<_>>>()?;
    Process::builder()
        .name("light")
        .spawn(light, (road.clone(), 5))?
        .join()?;
    let mut crossings = 0;
    for mut car in cars {
        crossings += car.join()?;
    }
    println!("{crossings} crossings, all on green");
    assert!(crossings >= 5);
    Ok(())
}
