//! Producer and consumers through a `Queue`: a butcher puts bones in a bowl, three dogs take
//! them out until the butcher puts one "no more bones" marker per dog. Every bone is eaten
//! exactly once. (Python: `q = Queue()`, `Process(target=dog, args=(q,))`, `q.put(bone)`,
//! `q.get()`, and `None` as the sentinel.)

use std::collections::BTreeSet;

use procs::Process;
use procs::ipc::Queue;
use serde::{Deserialize, Serialize};

const BONES: u32 = 30;
const DOGS: usize = 3;

#[derive(Debug, Serialize, Deserialize)]
enum Bowl {
    Bone { id: u32, meat_grams: u32 },
    NoMoreBones,
}

/// The producer: puts every bone, then one marker per dog.
fn butcher(bowl: Queue<Bowl>) {
    for id in 0..BONES {
        let meat_grams = 50 + id * 7 % 40;
        bowl.put(Bowl::Bone { id, meat_grams }).unwrap();
    }
    for _ in 0..DOGS {
        bowl.put(Bowl::NoMoreBones).unwrap();
    }
}

/// A consumer: eats until it finds the marker, and says which bones it ate.
fn dog(bowl: Queue<Bowl>) -> Vec<u32> {
    let me = procs::current_process();
    let mut eaten = Vec::new();
    loop {
        match bowl.get().unwrap() {
            Bowl::Bone { id, meat_grams } => {
                println!("[{}] crunches bone {id} ({meat_grams} g)", me.name());
                // Chewing takes a while, so that the other dogs get their turns.
                std::thread::sleep(std::time::Duration::from_millis(u64::from(meat_grams) / 10));
                eaten.push(id);
            }
            Bowl::NoMoreBones => return eaten,
        }
    }
}

fn main() {
    procs::init();
    let bowl = Queue::new().unwrap();
    let dogs: Vec<_> = ["rex", "fido", "laika"]
        .into_iter()
        .map(|name| {
            Process::builder()
                .name(name)
                .spawn(dog, bowl.clone())
                .unwrap()
        })
        .collect();
    let mut producer = Process::builder()
        .name("butcher")
        .spawn(butcher, bowl.clone())
        .unwrap();
    producer.join().unwrap();
    let mut seen = BTreeSet::new();
    for mut d in dogs {
        let name = d.name().to_string();
        let eaten = d.join().unwrap();
        println!("[parent] {name} ate {} bones", eaten.len());
        for id in eaten {
            assert!(seen.insert(id), "bone {id} was eaten twice");
        }
    }
    assert_eq!(seen, (0..BONES).collect(), "every bone is eaten once");
    assert!(bowl.empty());
    println!("[parent] {BONES} bones, each eaten exactly once");
}
