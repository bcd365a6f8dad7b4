//! What a trial must give back: this process's descriptors and memfd mappings, its child
//! processes (zombies included), and the entries of `/dev/shm` (shown, not counted: other
//! processes of the machine use it too).

use std::fmt;
use std::fs;
use std::time::{Duration, Instant};

/// The resources counted, at one moment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    fds: usize,
    memfd_maps: usize,
    children: usize,
    zombies: usize,
    shm: usize,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} fds, {} memfd mappings, {} children ({} zombies), {} /dev/shm entries",
            self.fds, self.memfd_maps, self.children, self.zombies, self.shm
        )
    }
}

impl Counts {
    pub(crate) fn now() -> Counts {
        let (children, zombies) = children();
        Counts {
            fds: entries("/proc/self/fd"),
            memfd_maps: fs::read_to_string("/proc/self/maps").map_or(0, |maps| {
                maps.lines().filter(|l| l.contains("/memfd:")).count()
            }),
            children,
            zombies,
            shm: entries("/dev/shm"),
        }
    }

    /// What is still above `self` after up to `settle` for it to come back (a child is
    /// reaped, a descriptor closed, by threads of the library that run a little later);
    /// `None` when everything came back.
    pub(crate) fn leaked_since(&self, settle: Duration) -> Option<String> {
        let until = Instant::now() + settle;
        loop {
            let now = Counts::now();
            // `/dev/shm` is shared with every process of the machine (other test runs add
            // and remove entries there), and what the soak makes lives in memfds on Linux:
            // its growth is shown, not counted (see `shm_grew`).
            let above = now.fds > self.fds
                || now.memfd_maps > self.memfd_maps
                || now.children > self.children;
            if !above {
                return None;
            }
            if Instant::now() >= until {
                return Some(format!("before the trial {self}; after it {now}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Counts {
    /// Whether `/dev/shm` holds more entries now than in `self`.
    pub(crate) fn shm_grew(&self) -> bool {
        Counts::now().shm > self.shm
    }
}

fn entries(dir: &str) -> usize {
    fs::read_dir(dir).map_or(0, |entries| entries.count())
}

/// This process's children, and how many of them are zombies.
fn children() -> (usize, usize) {
    let me = std::process::id().to_string();
    let (mut children, mut zombies) = (0, 0);
    let Ok(procs) = fs::read_dir("/proc") else {
        return (0, 0);
    };
    for entry in procs.flatten() {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: the name may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next();
        if fields.next() == Some(me.as_str()) {
            children += 1;
            if state == Some("Z") {
                zombies += 1;
            }
        }
    }
    (children, zombies)
}

/// The pids of this process's live children.
pub(crate) fn live_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut pids = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return pids;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        if fields.next() != Some("Z") && fields.next() == Some(me.as_str()) {
            pids.push(pid);
        }
    }
    pids
}
