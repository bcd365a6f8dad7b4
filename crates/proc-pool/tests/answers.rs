//! How answers come back from process workers: small ones through shared memory (the ring
//! on each worker's board), large ones and ones holding handles through the link. Whichever
//! way each answer takes, results arrive whole and in order, and an answer a worker gave
//! just before it died is not lost.

use std::io::Read;

use proc_core::Handle;
use proc_pool::Pool;
use procs_testkit::each_method;

/// Small for most items, then past the ring's limit (4 KiB) every 7th, so that answers of one
/// worker alternate between the ring and the link.
fn sized(i: u64) -> Vec<u8> {
    let len = if i % 7 == 3 {
        5_000 + i as usize
    } else {
        (i % 50) as usize
    };
    vec![i as u8; len]
}

#[test]
fn answers_by_the_ring_and_by_the_link_keep_their_order() {
    each_method(|method| {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        for chunksize in [1, 3] {
            let got = pool.map_chunked(sized, 0..2_000u64, chunksize).unwrap();
            assert_eq!(got.len(), 2_000);
            for (i, value) in got.iter().enumerate() {
                assert_eq!(
                    value,
                    &sized(i as u64),
                    "item {i} with chunksize {chunksize}"
                );
            }
        }
        let mut lazy = pool.imap(sized, 0..500u64).unwrap();
        for i in 0..500u64 {
            assert_eq!(lazy.next().unwrap().unwrap(), sized(i));
        }
        assert!(lazy.next().is_none());
    });
}

/// Answers that hold a handle cannot go through shared memory: a pipe made in the worker,
/// with its number written into it, between plain answers.
fn pipe_or_number(i: u64) -> Result<Handle, u64> {
    if !i.is_multiple_of(5) {
        return Err(i);
    }
    let (reader, mut writer) = std::io::pipe().unwrap();
    std::io::Write::write_all(&mut writer, &i.to_le_bytes()).unwrap();
    Ok(Handle::from(reader))
}

#[test]
fn answers_holding_handles_come_by_the_link_between_the_others() {
    let pool = Pool::new(2).unwrap();
    let got = pool.map_chunked(pipe_or_number, 0..200u64, 1).unwrap();
    for (i, answer) in got.into_iter().enumerate() {
        match answer {
            Ok(handle) => {
                let mut bytes = [0u8; 8];
                std::io::PipeReader::from(handle)
                    .read_exact(&mut bytes)
                    .unwrap();
                assert_eq!(u64::from_le_bytes(bytes), i as u64);
            }
            Err(n) => assert_eq!(n, i as u64),
        }
    }
}

fn plus_100(i: u64) -> u64 {
    i + 100
}

fn exit_now(code: i32) {
    std::process::exit(code);
}

/// A small answer goes into the ring, and the worker's next task (sent ahead with it) ends
/// the worker at once: the pool often learns of the death with the answer still in shared
/// memory, and must deliver it before it buries the worker.
#[test]
fn an_answer_given_just_before_the_worker_died_is_delivered() {
    let pool = Pool::new(1).unwrap();
    for round in 0..20u64 {
        let answer = pool.apply_async(plus_100, round).unwrap();
        let death = pool.apply_async(exit_now, 3).unwrap();
        assert_eq!(answer.get().unwrap(), round + 100);
        let error = death.get().unwrap_err();
        assert!(
            matches!(error, proc_core::Error::WorkerDied { exitcode: 3 }),
            "{error}"
        );
    }
    assert_eq!(pool.map(plus_100, 0..3u64).unwrap(), [100, 101, 102]);
}

/// More handles than a frame may carry (64): the answer is marked in the ring, then cannot
/// be sent; its task fails by the link in the marked place, and the tasks around it keep
/// their answers and order.
fn many_pipes(i: u64) -> Vec<Handle> {
    let count = if i == 3 { 70 } else { 1 };
    (0..count)
        .map(|_| Handle::from(std::io::pipe().unwrap().0))
        .collect()
}

#[test]
fn an_answer_that_cannot_be_sent_fails_in_its_place() {
    let pool = Pool::new(1).unwrap();
    let pending: Vec<_> = (0..8u64)
        .map(|i| pool.apply_async(many_pipes, i).unwrap())
        .collect();
    for (i, result) in pending.into_iter().enumerate() {
        match result.into_result() {
            Ok(handles) => {
                assert_ne!(i, 3);
                assert_eq!(handles.len(), 1);
            }
            Err(error) => {
                assert_eq!(i, 3, "{error}");
                assert!(
                    error.to_string().contains("cannot send the result"),
                    "{error}"
                );
            }
        }
    }
    assert_eq!(pool.map(|x: u64| x + 1, 0..5u64).unwrap(), [1, 2, 3, 4, 5]);
}
