//! A remote manager between two "hosts" on one machine: two Linux network namespaces joined
//! by a veth pair, the server in one, its clients in the other, so that every call crosses a
//! network link rather than loopback. After CPython's `_TestRemoteManager` (a manager served
//! at an address, used by a process that knows only the address and the key), which runs on
//! loopback; that case is in `tests/manager.rs`.
//!
//! The test runs this very executable inside each namespace (`ip netns exec`), on one of the
//! `#[ignore]`d helper tests below, which the environment tells what to do. Where namespaces
//! cannot be made (not root, no `ip`, a container without the right), it prints a loud
//! `SKIPPED:` line and passes, except under CI (`CI=true`), where it fails unless
//! `PROCS_SKIP_NETNS=1` allows the skip.

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use proc_core::{Error, Process};
use proc_ipc::{Address, DictProxy, ListProxy, Manager, QueueProxy};

/// Tells a helper where to serve (`serve_in_namespace`) or to connect
/// (`connect_from_namespace`).
const ADDRESS: &str = "PROCS_NETNS_ADDRESS";
/// The manager's key, for both helpers.
const KEY: &str = "PROCS_NETNS_KEY";
/// What the serving helper prints once its proxies are published, before its address.
const READY: &str = "PROCS-NETNS-READY ";
/// What the connecting helper prints when every check passed.
const DONE: &str = "PROCS-NETNS-DONE";

/// The link's subnet. The addresses exist only inside the two namespaces, so they meet
/// nothing of the machine's own network, and two runs at once, each in namespaces of its
/// own, do not meet either.
const SERVER_IP: &str = "10.213.7.1";
const CLIENT_IP: &str = "10.213.7.2";

/// How long a helper may take: a guard against a hang, not a timing assertion.
const HANG: Duration = Duration::from_secs(120);

/// The jobs that the serving side queues; 0 ends them.
const JOBS: [u32; 6] = [1, 2, 3, 4, 5, 0];

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true"))
}

/// Says loudly that the test did not run, or fails under CI.
fn skip(why: &str) {
    if env_flag("CI") && !env_flag("PROCS_SKIP_NETNS") {
        panic!(
            "cannot make network namespaces under CI: {why}; run the tests as root on Linux \
             with iproute2 (`ip`), or set PROCS_SKIP_NETNS=1 to let the run pass without them"
        );
    }
    // Past the test harness's capture, so that a passing run shows it too.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: the manager across network namespaces did not run: {why}"
    );
}

/// Runs `ip` with `args`, and says why it failed if it did.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run `ip`: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Two namespaces joined by a veth pair, deleted on drop whatever happened.
struct Hosts {
    server: String,
    client: String,
    /// The veth end made in the first namespace, deleted with it; named here in case the
    /// setup stopped before moving it there.
    veth: String,
}

impl Hosts {
    fn create() -> Result<Hosts, String> {
        let pid = std::process::id();
        let hosts = Hosts {
            server: format!("procs-server-{pid}"),
            client: format!("procs-client-{pid}"),
            // Interface names are at most 15 bytes.
            veth: format!("pvs{pid}"),
        };
        let peer = format!("pvc{pid}");
        let (server, client, veth) = (&*hosts.server, &*hosts.client, &*hosts.veth);
        // Namespaces of this name can only be left over by an earlier run that was killed
        // and had this pid.
        hosts.delete();
        ip(&["netns", "add", server])?;
        ip(&["netns", "add", client])?;
        ip(&["link", "add", veth, "type", "veth", "peer", "name", &peer])?;
        ip(&["link", "set", veth, "netns", server])?;
        ip(&["link", "set", &peer, "netns", client])?;
        for (ns, dev, addr) in [(server, veth, SERVER_IP), (client, &*peer, CLIENT_IP)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            // `exec` needs more rights than `add` (it remounts /sys): try it before relying
            // on it.
            ip(&["netns", "exec", ns, "ip", "link", "show", dev])?;
        }
        Ok(hosts)
    }

    /// This test executable inside namespace `ns`, running the helper test `helper` alone.
    fn run(&self, ns: &str, helper: &str, address: &str, key: &str) -> Helper {
        let exe = std::env::current_exe().expect("the test executable");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(exe)
            .args([
                helper,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ADDRESS, address)
            .env(KEY, key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ip netns exec");
        Helper::watch(helper, child)
    }
}

impl Hosts {
    fn delete(&self) {
        // Deleting a namespace deletes the veth end inside it, and with it the other end.
        for what in [
            ["netns", "del", &self.server],
            ["netns", "del", &self.client],
            ["link", "del", &self.veth],
        ] {
            let _ = Command::new("ip")
                .args(what)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        self.delete();
    }
}

/// A helper process whose output lines arrive on a channel; killed on drop unless it ended.
struct Helper {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Helper {
    fn watch(name: &str, mut child: Child) -> Helper {
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Helper {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The rest of the first line that contains `marker`.
    ///
    /// # Panics
    ///
    /// When the helper ends, or says nothing of the kind within [`HANG`].
    fn wait_for(&mut self, marker: &str) -> String {
        let deadline = Instant::now() + HANG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!("{}", self.report(&format!("never said {marker:?}")));
            };
            let found = line
                .find(marker)
                .map(|at| line[at + marker.len()..].trim().to_owned());
            self.seen.push(line);
            if let Some(rest) = found {
                return rest;
            }
        }
    }

    /// Waits for the helper to exit and checks that it succeeded.
    fn succeeds(mut self) {
        let deadline = Instant::now() + HANG;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                panic!("{}", self.report("did not end"));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The readers end with the process's output; take what they still have.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        if !status.success() {
            panic!("{}", self.report(&format!("failed ({status})")));
        }
    }

    /// What went wrong, with everything the helper printed.
    fn report(&mut self, what: &str) -> String {
        self.seen.extend(self.lines.try_iter());
        format!(
            "{} {what}; its output:\n{}",
            self.name,
            self.seen.join("\n")
        )
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address and key a helper was given, `None` when the test harness runs it by itself.
fn assignment() -> Option<(Address, Vec<u8>)> {
    let address = std::env::var(ADDRESS).ok()?;
    let key = std::env::var(KEY).ok()?;
    Some((address.parse().expect("an address"), key.into_bytes()))
}

/// A manager's server on host A, used from host B by a process that knows only the
/// address and the key: it finds the queue published on A, works through it, keeps a list
/// inside a dict of A, hands a proxy to a child of its own on B, and shuts the server down.
#[test]
fn a_manager_serves_a_client_on_another_host() {
    proc_core::init();
    let hosts = match Hosts::create() {
        Ok(hosts) => hosts,
        Err(why) => return skip(&why),
    };
    let key = format!("key of {} at {:?}", std::process::id(), SystemTime::now());
    let bind = format!("{SERVER_IP}:0");
    let mut server = hosts.run(&hosts.server, "serve_in_namespace", &bind, &key);
    let address = server.wait_for(READY);
    assert!(address.starts_with(SERVER_IP), "{address}");
    let mut client = hosts.run(&hosts.client, "connect_from_namespace", &address, &key);
    client.wait_for(DONE);
    client.succeeds();
    // The client shut the server down: it ends by itself, and well.
    server.succeeds();
    drop(hosts);
}

/// Host A's side: serves on the address it was given, after publishing a queue of jobs and
/// a dict for the other host to find (Python's `BaseManager.register` on the serving side).
#[test]
#[ignore = "a helper: a_manager_serves_a_client_on_another_host runs it in a namespace"]
fn serve_in_namespace() {
    proc_core::init();
    let Some((address, key)) = assignment() else {
        return;
    };
    let server = Manager::server(address, &key).unwrap();
    let address = server.address().clone();
    let serving = std::thread::spawn(move || server.serve_forever());
    // The publishing client reaches the server at the address the other host uses, so
    // that the proxies it publishes carry that address.
    let local = Manager::connect(&address, &key).unwrap();
    let jobs = local.queue::<u32>().unwrap();
    for job in JOBS {
        jobs.put(job).unwrap();
    }
    local.publish("jobs", &jobs).unwrap();
    local
        .publish("shared", &local.dict::<String, ListProxy<u32>>().unwrap())
        .unwrap();
    println!("{READY}{address}");
    serving.join().unwrap().unwrap();
    // Once the server stopped, the proxies of this host fail as on any other.
    assert!(matches!(jobs.qsize(), Err(Error::Closed)));
}

fn push_from_child((results, item): (ListProxy<u32>, u32)) {
    results.push(item).unwrap();
}

/// Host B's side: uses the manager of host A with nothing but its address and key.
#[test]
#[ignore = "a helper: a_manager_serves_a_client_on_another_host runs it in a namespace"]
fn connect_from_namespace() {
    proc_core::init();
    let Some((address, key)) = assignment() else {
        return;
    };
    // A wrong key is refused across the link as on loopback.
    let err = Manager::connect(&address, b"not the key").unwrap_err();
    assert!(matches!(err, Error::AuthenticationFailed), "{err}");

    let mut manager = Manager::connect(&address, &key).unwrap();
    let jobs: QueueProxy<u32> = manager.lookup("jobs").unwrap().expect("published jobs");
    let shared: DictProxy<String, ListProxy<u32>> =
        manager.lookup("shared").unwrap().expect("published dict");
    let results = manager.list::<u32>().unwrap();
    shared.insert("results".into(), results.clone()).unwrap();
    loop {
        match jobs.get_timeout(HANG).unwrap() {
            0 => break,
            job => results.push(job * 10).unwrap(),
        }
    }
    assert!(jobs.empty().unwrap());

    // The list read back through the dict of host A is a live proxy, and a child on this
    // host that gets it as an argument reaches host A through it.
    let back = shared
        .get("results")
        .unwrap()
        .expect("the list in the dict");
    let mut child = Process::spawn(push_from_child, (back.clone(), 60)).unwrap();
    child.join().unwrap();
    assert_eq!(back.to_vec().unwrap(), [10, 20, 30, 40, 50, 60]);
    assert_eq!(results.len().unwrap(), 6);

    // Another manager made from the address and the key alone finds the same objects.
    let other = Manager::connect(&address, &key).unwrap();
    let seen: DictProxy<String, ListProxy<u32>> = other.lookup("shared").unwrap().unwrap();
    assert_eq!(seen.get("results").unwrap().unwrap().len().unwrap(), 6);

    manager.shutdown().unwrap();
    assert!(matches!(results.len(), Err(Error::Closed)));
    println!("{DONE}");
}
