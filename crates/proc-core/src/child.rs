//! The child runtime: how a new process finds out that it is a child, runs its function and
//! reports back. Whatever started it (`spawn`'s flavours), a child ends up in [`run`].

use std::sync::Once;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::current;
use crate::fingerprint;
use crate::handle;
use crate::internal::unwind;
use crate::method;
use crate::registry;
use crate::start::{Outcome, Reply, Request, Trampoline};
use crate::sys::{self, Channel};

/// The trampoline for a function of type `F`.
pub(crate) fn trampoline<F, A, R>(
    payload: &[u8],
    handles: Vec<sys::OwnedHandle>,
    reply: Reply<'_>,
) -> i32
where
    F: Fn(A) -> R + Copy,
    A: DeserializeOwned,
    R: Serialize,
{
    const {
        assert!(
            size_of::<F>() == 0,
            "the function must not capture anything"
        )
    };
    let args: A = match handle::decode_with_handles(payload, handles) {
        Ok(args) => args,
        Err(e) => {
            reply(
                &Outcome::Failed(format!("cannot decode the arguments: {e}")),
                &[],
            );
            return 1;
        }
    };
    // SAFETY: `F` is zero-sized (checked above at compile time), so a value of it has no bytes
    // to be invalid; and as a callable type (a fn item or a closure without captures, which is
    // all that implements `Fn` on stable Rust) it carries no invariant beyond its type.
    let f: F = unsafe { std::mem::zeroed() };
    match unwind::catch(move || f(args)) {
        Ok(result) => match handle::encode_with_handles(&result) {
            Ok((bytes, handles)) => {
                reply(&Outcome::Returned(bytes), &handles);
                0
            }
            Err(e) => {
                reply(
                    &Outcome::Failed(format!("cannot encode the result: {e}")),
                    &[],
                );
                1
            }
        },
        Err(panic) => {
            reply(
                &Outcome::Panicked {
                    message: panic.message,
                    location: panic.location,
                },
                &[],
            );
            1
        }
    }
}

extern "C" fn constructor() {
    from_constructor();
}

sys::before_main! {
    /// Serves the parent before `main` runs, when this process is a child.
    static CONSTRUCTOR = constructor;
}

static ENTRY: Once = Once::new();

/// Runs before `main` (from the platform constructor) and from `init()`: in a child, serves
/// the parent and exits; in any other process, returns at once.
///
/// The role is picked up inside the `Once` and served after it, so that a child's function
/// may call `init()` itself without waiting on its own `Once`.
pub(crate) fn from_constructor() {
    let mut job = None;
    ENTRY.call_once(|| {
        // Compute the fingerprint before anything can change the executable on disk.
        fingerprint::fingerprint();
        let Some(value) = std::env::var_os(sys::CHILD_ENV) else {
            return;
        };
        // SAFETY: this runs before `main` or as the first line of it, before the program
        // starts threads, so no other thread reads the environment concurrently.
        unsafe { std::env::remove_var(sys::CHILD_ENV) };
        job = value.to_str().and_then(Channel::from_env);
        if job.is_none() {
            tracing::error!("{} is set but does not name a channel", sys::CHILD_ENV);
        }
    });
    let Some((role, channel)) = job else { return };
    match role.as_str() {
        "forkserver" => sys::serve_forkserver(channel, serve_forked),
        _ => {
            let code = serve_forked(channel);
            // Leaves like `main` would: flushes stdout and runs exit handlers.
            std::process::exit(code)
        }
    }
}

/// Reads the parent's request from `channel`, checks the build and runs it; returns the exit
/// code. Used by spawned children and by children of the fork server.
pub(crate) fn serve_forked(channel: Channel) -> i32 {
    let (request, handles) = match channel.recv_frame(codec::DEFAULT_MAX_FRAME) {
        Ok((bytes, handles)) => match codec::decode::<Request>(&bytes) {
            Ok(request) => (request, handles),
            Err(_) => return 2,
        },
        // The parent went away (or sent garbage) before the call: nothing to run, nobody to
        // tell.
        Err(_) => return 2,
    };
    channel.set_peer(request.parent.0);
    if request.fingerprint != fingerprint::fingerprint() {
        let _ = send_outcome(&channel, &Outcome::BuildMismatch, &[]);
        return 1;
    }
    let trampoline = fingerprint::anchor().wrapping_add(request.entry as usize);
    // SAFETY: the fingerprint matched, so this process runs the parent's build, in which
    // `entry` was computed by `entry_offset` from a function of type `Trampoline`; the same
    // offset from the same anchor is therefore that same function here.
    let trampoline: Trampoline = unsafe { std::mem::transmute::<usize, Trampoline>(trampoline) };
    run(channel, request, handles, trampoline)
}

fn send_outcome(
    channel: &Channel,
    outcome: &Outcome,
    handles: &[sys::RawHandle],
) -> crate::error::Result<()> {
    // A small outcome (a `()` or a number, say) is encoded on the stack: a forked child that
    // allocates writes to heap pages, and every page it writes is a copy of its parent's.
    let mut small = [0u8; 128];
    if let Ok(bytes) = postcard::to_slice(outcome, &mut small) {
        return Ok(channel.send_frame(bytes, handles)?);
    }
    Ok(channel.send_frame(&codec::encode(outcome)?, handles)?)
}

/// Runs a request in this (new) child and returns its exit code: 0 when the function
/// returned, 1 otherwise.
pub(crate) fn run(
    channel: Channel,
    request: Request,
    handles: Vec<sys::OwnedHandle>,
    trampoline: Trampoline,
) -> i32 {
    sys::prepare_child();
    crate::shared::forget_inherited_identity();
    unwind::install_hook();
    registry::forget_inherited();
    let daemon = request.identity.daemon;
    // As CPython's `_bootstrap`: the child's own children start the way it was started, so
    // that the parent's `set_start_method` reaches every generation.
    method::force_start_method(request.method);
    current::become_child(request.identity, request.parent, request.method);
    let _span =
        tracing::debug_span!("procs.child", name = %current::current_process().name()).entered();
    sys::remember_parent_channel(&channel, sys::Daemonic::of(daemon));
    // Shared with the watchdog thread only when there is one: a forked child that allocates
    // writes to heap pages, and every page it writes is a copy of its parent's. Never closed
    // here: the end of the process closes it, without a system call of its own between the
    // result and the exit.
    let (owned, shared);
    let channel: &Channel = if daemon {
        shared = std::mem::ManuallyDrop::new(std::sync::Arc::new(channel));
        watch_parent(std::sync::Arc::clone(&shared));
        &shared
    } else {
        owned = std::mem::ManuallyDrop::new(channel);
        &owned
    };
    // The start's short time slice, inherited, ends here: user code runs with the default.
    sys::leave_inherited();
    let code = trampoline(&request.payload, handles, &mut |outcome, handles| {
        // What the function printed goes out before its result: the parent wakes up when the
        // result arrives and then waits for the exit, which this no longer holds up (the
        // flush's code pages are faults in a forked child). The flush below sends what the
        // result's destructors print.
        sys::flush_std_streams();
        if let Err(e) = send_outcome(channel, outcome, handles) {
            tracing::debug!(error = %e, "could not send the result to the parent");
        }
    });
    registry::shutdown();
    sys::flush_std_streams();
    // The process ends after this: freeing the arguments would only write to heap pages
    // (the parent's, in a forked child) for nothing.
    std::mem::forget(request.payload);
    code
}

/// A daemonic child dies with its parent: a thread waits for the parent's end of the channel
/// to close (the parent never writes after the request, so anything readable is end-of-file)
/// and ends the process.
fn watch_parent(channel: std::sync::Arc<Channel>) {
    let spawned = std::thread::Builder::new()
        .name("procs-watchdog".into())
        .spawn(move || {
            loop {
                match channel.wait_readable(None) {
                    Ok(true) if channel.peer_closed() => break,
                    Ok(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
                    Err(_) => break,
                }
            }
            sys::exit_now(1);
        });
    if spawned.is_err() {
        tracing::warn!("could not start the thread that ends a daemonic child with its parent");
    }
}
