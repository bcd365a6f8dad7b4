//! How a new process starts: `CreateProcessW` of the program with exactly its channel
//! inherited, and the job object that ends daemonic children with their parent. (Windows
//! cannot fork: `fork` and the fork server answer `Unsupported`.)

use std::ffi::OsString;
use std::io;
use std::marker::PhantomData;
use std::mem::{size_of, size_of_val};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle};
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};
use std::sync::{Mutex, OnceLock};

use super::channel::{Channel, OwnedHandle, RawHandle};
use super::child::Child;
use super::os::exit_now;
use super::{Inheritance, cvt, duplicate, owned_or_last_error, wide};
use crate::sys::Daemonic;
use windows_sys::Win32::Foundation::{
    ERROR_INTERNAL_ERROR, GetHandleInformation, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::System::Console::{
    GetStdHandle, STD_ERROR_HANDLE, STD_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject,
};
use windows_sys::Win32::System::Threading::{
    CREATE_UNICODE_ENVIRONMENT, CreateProcessW, DeleteProcThreadAttributeList,
    EXTENDED_STARTUPINFO_PRESENT, GetCurrentProcess, InitializeProcThreadAttributeList,
    LPPROC_THREAD_ATTRIBUTE_LIST, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, PROCESS_INFORMATION,
    STARTF_USESTDHANDLES, STARTUPINFOEXW, UpdateProcThreadAttribute,
};

/// How often a start that failed with `ERROR_INTERNAL_ERROR` is tried again.
const INTERNAL_ERROR_RETRIES: u64 = 3;

/// A `PROC_THREAD_ATTRIBUTE_LIST` that names the only handles a new process inherits.
///
/// The list points into `handles` instead of copying it, so it borrows the slice for as long as
/// it lives.
struct HandleList<'a> {
    buffer: Vec<usize>,
    _handles: PhantomData<&'a [HANDLE]>,
}

impl<'a> HandleList<'a> {
    fn new(handles: &'a [HANDLE]) -> io::Result<HandleList<'a>> {
        let mut size = 0usize;
        // SAFETY: with a null list the call only writes the size it needs to `size`; it fails
        // with ERROR_INSUFFICIENT_BUFFER by design, so its result is not checked.
        unsafe { InitializeProcThreadAttributeList(null_mut(), 1, 0, &mut size) };
        // Whole `usize`s keep the buffer aligned for the pointers the list holds.
        let mut buffer = vec![0usize; size.div_ceil(size_of::<usize>())];
        // SAFETY: `buffer` is writable for at least `size` bytes, as asked for just above.
        cvt(unsafe {
            InitializeProcThreadAttributeList(buffer.as_mut_ptr().cast(), 1, 0, &mut size)
        })?;
        let mut list = HandleList {
            buffer,
            _handles: PhantomData,
        };
        // SAFETY: the list was initialised for one attribute; `handles` holds
        // `size_of_val(handles)` bytes of handle values and outlives the list (its lifetime
        // says so), as the attribute only keeps a pointer to it.
        cvt(unsafe {
            UpdateProcThreadAttribute(
                list.as_mut_ptr(),
                0,
                PROC_THREAD_ATTRIBUTE_HANDLE_LIST as usize,
                handles.as_ptr().cast(),
                size_of_val(handles),
                null_mut(),
                null(),
            )
        })?;
        Ok(list)
    }

    fn as_mut_ptr(&mut self) -> LPPROC_THREAD_ATTRIBUTE_LIST {
        self.buffer.as_mut_ptr().cast()
    }
}

impl Drop for HandleList<'_> {
    fn drop(&mut self) {
        // SAFETY: the list was initialised in `new` (a `HandleList` exists only after that
        // succeeded) and is deleted once, here.
        unsafe { DeleteProcThreadAttributeList(self.as_mut_ptr()) };
    }
}

/// An inheritable copy of one of this process's standard handles, for a child to use as its
/// own; `None` when there is none (a program without a console) or it cannot be copied, and
/// the child then goes without.
fn inheritable_std_handle(which: STD_HANDLE) -> Option<OwnedHandle> {
    // SAFETY: GetStdHandle only reads this process's parameters.
    let handle = unsafe { GetStdHandle(which) };
    if handle.is_null() || handle == INVALID_HANDLE_VALUE {
        return None;
    }
    duplicate(handle, Inheritance::Inherited).ok()
}

/// The command line of a child: the parent's `argv[0]` (quoted), so that the child looks like
/// the parent in process lists, or the executable's path where that cannot be quoted.
fn command_line(exe: &Path) -> io::Result<Vec<u16>> {
    let quote = u16::from(b'"');
    let argv0 = std::env::args_os()
        .next()
        .filter(|arg| !arg.is_empty() && !arg.encode_wide().any(|c| c == quote))
        .unwrap_or_else(|| exe.as_os_str().to_owned());
    // `argv[0]` is read up to the closing quote, with no backslash escapes, so plain quotes
    // around it are enough.
    let mut line = vec![quote];
    line.extend(wide(&argv0)?.into_iter().take_while(|&c| c != 0));
    line.push(quote);
    line.push(0);
    Ok(line)
}

/// This process's environment without any inherited child variable, plus the child variable
/// for `role`, the inherited channel `handle` and, if there is one, the inherited `job`, as a
/// sorted `CreateProcessW` block.
fn environment_block(role: &str, handle: HANDLE, job: Option<HANDLE>) -> Vec<u16> {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(key, _)| !key.eq_ignore_ascii_case(crate::sys::CHILD_ENV))
        .collect();
    let mut value = format!("{role}:{}", handle as usize);
    if let Some(job) = job {
        value.push_str(&format!(":{}", job as usize));
    }
    vars.push((crate::sys::CHILD_ENV.into(), value.into()));
    // Windows expects the block sorted by name, without regard to case.
    vars.sort_by_cached_key(|(key, _)| key.to_string_lossy().to_uppercase());
    let mut block = Vec::new();
    for (key, value) in vars {
        block.extend(key.encode_wide());
        block.push(u16::from(b'='));
        block.extend(value.encode_wide());
        block.push(0);
    }
    block.push(0);
    block
}

/// The program that children re-execute: the very file this process runs.
pub(crate) fn default_executable() -> io::Result<PathBuf> {
    std::env::current_exe()
}

/// The job that daemonic children of this process join, so that they die with it (DESIGN.md,
/// mechanism 4): `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE` ends every process in the job when its
/// last handle closes, and the only lasting handle is this one, which closes when this
/// process ends, however it ends (even by `TerminateProcess`). Made at the first spawn;
/// `None` when the system refuses, and then daemonic children rely on their watchdog alone.
fn daemon_job() -> Option<HANDLE> {
    static JOB: OnceLock<Option<OwnedHandle>> = OnceLock::new();
    JOB.get_or_init(|| match new_kill_on_close_job() {
        Ok(job) => Some(job),
        Err(e) => {
            tracing::debug!(error = %e, "no job object for daemonic children");
            None
        }
    })
    .as_ref()
    .map(|job| job.as_raw_handle())
}

fn new_kill_on_close_job() -> io::Result<OwnedHandle> {
    // SAFETY: null attributes make a handle that children do not inherit, and a null name an
    // anonymous job.
    let job = owned_or_last_error(unsafe { CreateJobObjectW(null(), null()) })?;
    let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    // SAFETY: `limits` is the structure that JobObjectExtendedLimitInformation names, and the
    // size passed is its size.
    cvt(unsafe {
        SetInformationJobObject(
            job.as_raw_handle(),
            JobObjectExtendedLimitInformation,
            (&raw const limits).cast(),
            size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        )
    })?;
    Ok(job)
}

/// The parent's daemon job as inherited by this child, until `remember_parent_channel` has
/// used it.
static INHERITED_JOB: Mutex<Option<OwnedHandle>> = Mutex::new(None);

/// Keeps the inherited daemon job `job` of a new child for `remember_parent_channel`.
pub(super) fn adopt_parent_job(job: HANDLE) {
    let mut flags = 0u32;
    // SAFETY: GetHandleInformation only queries the handle table; it fails cleanly on a value
    // that is no open handle.
    if unsafe { GetHandleInformation(job, &mut flags) } == 0 {
        return;
    }
    // SAFETY: the parent let this child inherit this job handle (see `spawn`), beside the
    // channel that `from_env` just checked; nothing else in this process knows its value.
    let job = unsafe { OwnedHandle::from_raw_handle(job) };
    *INHERITED_JOB.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
}

/// Starts `exe` with `role` in the child environment variable and `child_end` as its channel.
///
/// The child inherits an inheritable copy of `child_end`, one of this process's daemon job
/// (see below) and copies of the standard handles, and nothing else:
/// `PROC_THREAD_ATTRIBUTE_HANDLE_LIST` restricts inheritance to them, so
/// children started at the same time from other threads never get each other's channels
/// (which would keep a dead child's channel open and hide its end from its parent). The
/// copies are closed in the parent as soon as the child exists.
///
/// The copies are inheritable for the few microseconds that this call takes. A program that
/// starts other processes with plain handle inheritance at that very moment (as
/// `std::process::Command` does) could pass one of them on too; the interface of `spawn`
/// offers no way around that, because the child must know its handle's value from birth.
///
/// Daemonic children die with their parent through a job object: every child gets a handle
/// to this process's [daemon job](daemon_job); a daemonic one joins the job before it runs
/// any user code, and every child then closes its copy (`remember_parent_channel`). `spawn`
/// does not know whether the child is daemonic (the request says so), hence the join in the
/// child, which has no race with the parent's death: while the child holds its copy the job
/// stays open, and if the parent died meanwhile, closing that copy ends the daemonic child at
/// once. The watchdog thread of `child` (the parent's end of the channel closing) stays as a
/// second line, for systems that refuse the job. A child that is not a `procs` program keeps
/// the copy until it exits, which only keeps daemonic siblings alive that long.
pub(crate) fn spawn(exe: &Path, role: &str, child_end: &Channel) -> io::Result<Child> {
    let channel = duplicate(child_end.raw_handle()?, Inheritance::Inherited)?;
    let job = daemon_job().and_then(|job| duplicate(job, Inheritance::Inherited).ok());
    let stdio = [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE].map(inheritable_std_handle);
    let raw_or_null =
        |h: &Option<OwnedHandle>| h.as_ref().map_or(null_mut(), |h| h.as_raw_handle());

    let mut inherited: Vec<HANDLE> = vec![channel.as_raw_handle()];
    inherited.extend(job.iter().map(|h| h.as_raw_handle()));
    inherited.extend(stdio.iter().flatten().map(|h| h.as_raw_handle()));
    let mut handle_list = HandleList::new(&inherited)?;

    let application = wide(exe.as_os_str())?;
    // CreateProcessW may write to the command line, so it gets a buffer of its own.
    let mut command = command_line(exe)?;
    let environment = environment_block(
        role,
        channel.as_raw_handle(),
        job.as_ref().map(|h| h.as_raw_handle()),
    );

    let mut startup = STARTUPINFOEXW::default();
    startup.StartupInfo.cb = size_of::<STARTUPINFOEXW>() as u32;
    startup.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    startup.StartupInfo.hStdInput = raw_or_null(&stdio[0]);
    startup.StartupInfo.hStdOutput = raw_or_null(&stdio[1]);
    startup.StartupInfo.hStdError = raw_or_null(&stdio[2]);
    startup.lpAttributeList = handle_list.as_mut_ptr();
    let mut info = PROCESS_INFORMATION::default();
    // An internal error is retried a few times: wine reports one now and then for a start
    // that succeeds when asked again (seen in the Windows tests), and it names no cause a
    // caller could act on.
    let mut attempts = 0;
    loop {
        // SAFETY: the application name and command line are nul-terminated UTF-16 buffers,
        // the environment is a UTF-16 block ending in two nuls (CREATE_UNICODE_ENVIRONMENT
        // says so), `startup` is a STARTUPINFOEXW whose `cb` says so
        // (EXTENDED_STARTUPINFO_PRESENT) and whose attribute list and handles stay alive until
        // after the call, and `info` is writable.
        let created = cvt(unsafe {
            CreateProcessW(
                application.as_ptr(),
                command.as_mut_ptr(),
                null(),
                null(),
                1,
                EXTENDED_STARTUPINFO_PRESENT | CREATE_UNICODE_ENVIRONMENT,
                environment.as_ptr().cast(),
                null(),
                &startup.StartupInfo,
                &mut info,
            )
        });
        match created {
            Err(e)
                if e.raw_os_error() == Some(ERROR_INTERNAL_ERROR as i32)
                    && attempts < INTERNAL_ERROR_RETRIES =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(10 * attempts));
            }
            other => break other?,
        }
    }
    // SAFETY: CreateProcessW succeeded, so both handles are new and only we own them.
    let (process, thread) = unsafe {
        (
            OwnedHandle::from_raw_handle(info.hProcess),
            OwnedHandle::from_raw_handle(info.hThread),
        )
    };
    drop(thread);
    drop(handle_list);
    drop(channel);
    drop(job);
    drop(stdio);
    Ok(Child {
        pid: info.dwProcessId,
        process,
        exitcode: Mutex::new(None),
    })
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} is not available on Windows, which cannot fork; use StartMethod::Spawn"),
    )
}

/// Called in a new child once it knows who it is, before user code runs: a daemonic child
/// joins its parent's daemon job (see [`spawn`]), and every child closes its copy of that job.
///
/// A daemonic child whose parent has already gone (its end of `channel` is closed) ends at
/// once instead, as its watchdog would: its copy may then be the job's last handle, and wine
/// 8.0's server crashes when a member of a kill-on-close job closes the last handle of it
/// (Windows just ends the job). The check leaves wine a window of one system call.
///
/// The channel needs nothing else: without fork, a process of ours only ever gets the handles
/// that `spawn` lists for it, so our own link to our parent never reaches our children.
pub(crate) fn remember_parent_channel(channel: &Channel, daemonic: Daemonic) {
    let Some(job) = INHERITED_JOB
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    else {
        return;
    };
    if daemonic == Daemonic::Yes {
        // SAFETY: `job` is our open job handle (with JOB_OBJECT_ASSIGN_PROCESS, as it was
        // duplicated with the creator's full access), and the current-process pseudo handle is
        // always valid.
        let joined = unsafe { AssignProcessToJobObject(job.as_raw_handle(), GetCurrentProcess()) };
        if let Err(e) = cvt(joined) {
            tracing::debug!(error = %e, "could not join the parent's job; the watchdog remains");
        }
        if channel.peer_closed() {
            exit_now(1);
        }
    }
    // The parent's handle is now the job's only one.
    drop(job);
}

/// Windows cannot fork: always `Unsupported` (`StartMethod::Fork` is not offered here).
pub(crate) fn fork(
    _parent_end: &Channel,
    _inherited_links: &[RawHandle],
    _child: impl FnOnce() -> i32,
) -> io::Result<Child> {
    Err(unsupported("the fork start method"))
}

/// Windows cannot fork: always `Unsupported` (`StartMethod::ForkServer` is not offered here).
pub(crate) fn forkserver_spawn(_child_end: &Channel) -> io::Result<Child> {
    Err(unsupported("the fork server"))
}

/// Never started on Windows; a process told to be a fork server leaves with an error code.
/// There is no fork server on Windows.
pub(crate) fn forkserver_pid() -> Option<u32> {
    None
}

pub(crate) fn serve_forkserver(_channel: Channel, _serve: fn(Channel) -> i32) -> ! {
    tracing::error!("this process was started as a fork server, but Windows cannot fork");
    exit_now(1)
}
