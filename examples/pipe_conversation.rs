//! A parent and its child talk through a `Pipe`: questions one way, answers the other, then
//! goodbye. (Python: `parent_conn, child_conn = Pipe()`, `Process(target=f, args=(child_conn,))`,
//! and `conn.send`/`conn.recv` on both sides.)

use procs::Process;
use procs::ipc::{Connection, Pipe};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
enum Line {
    Question(String),
    Answer(String),
    Goodbye,
}

/// The child: answers every question until the parent says goodbye, then says it too.
fn child(conn: Connection) -> u32 {
    let me = procs::current_process();
    let mut answered = 0;
    loop {
        match conn
            .recv::<Line>()
            .expect("the parent hung up without a goodbye")
        {
            Line::Question(q) => {
                let answer = match q.as_str() {
                    "what is your name?" => format!("{} (pid {})", me.name(), me.pid()),
                    "what is 6 times 7?" => (6 * 7).to_string(),
                    other => format!("I do not know {other:?}"),
                };
                println!("[child]  {q} -> {answer}");
                conn.send(&Line::Answer(answer)).unwrap();
                answered += 1;
            }
            Line::Goodbye => {
                conn.send(&Line::Goodbye).unwrap();
                return answered;
            }
            Line::Answer(_) => unreachable!("the parent only asks"),
        }
    }
}

fn main() {
    procs::init();
    let (here, there) = Pipe::duplex().unwrap();
    let mut p = Process::builder()
        .name("talker")
        .spawn(child, there)
        .unwrap();
    for question in [
        "what is your name?",
        "what is 6 times 7?",
        "why is the sky blue?",
    ] {
        here.send(&Line::Question(question.into())).unwrap();
        match here.recv::<Line>().unwrap() {
            Line::Answer(answer) => println!("[parent] {question} <- {answer}"),
            other => panic!("expected an answer, got {other:?}"),
        }
    }
    here.send(&Line::Goodbye).unwrap();
    assert!(matches!(here.recv::<Line>().unwrap(), Line::Goodbye));
    let answered = p.join().unwrap();
    println!("[parent] the child answered {answered} questions and said goodbye");
    assert_eq!(answered, 3);
}
