//! A pending [`Future`] and the [`Completer`] that finishes it, for executors outside this
//! crate (proc-mpi), through [`internal`](crate::internal).

use proc_core::Result;

use crate::future::Future;

/// Finishes the [`Future`] made with it by [`pending`]: what an engine outside proc-pool
/// holds while a task of its runs somewhere.
///
/// # Examples
///
/// ```
/// let (future, completer) = proc_pool::internal::pending::<u8>();
/// assert!(completer.set_running());
/// assert!(completer.finish(Ok(7)));
/// assert_eq!(future.result().unwrap(), 7);
/// ```
#[derive(Debug)]
pub struct Completer<R> {
    future: Future<R>,
}

/// A pending future and the completer that finishes it.
///
/// # Examples
///
/// ```
/// let (future, completer) = proc_pool::internal::pending::<u8>();
/// assert!(future.cancel());
/// assert!(!completer.set_running());
/// ```
pub fn pending<R>() -> (Future<R>, Completer<R>) {
    let future = Future::pending();
    (future.clone(), Completer { future })
}

impl<R> Completer<R> {
    /// Marks the task as running: `false` when it was cancelled first, and must not run.
    ///
    /// # Examples
    ///
    /// ```
    /// let (future, completer) = proc_pool::internal::pending::<u8>();
    /// assert!(completer.set_running());
    /// assert!(future.running());
    /// ```
    pub fn set_running(&self) -> bool {
        self.future.set_running()
    }

    /// Finishes the future with the task's outcome (`Err(Error::Cancelled)` cancels it),
    /// waking its waiters and running its callbacks on this thread; `false` when it was
    /// finished already.
    ///
    /// # Examples
    ///
    /// ```
    /// let (future, completer) = proc_pool::internal::pending::<u8>();
    /// assert!(completer.finish(Err(proc_pool::core::Error::Cancelled)));
    /// assert!(future.cancelled());
    /// ```
    pub fn finish(&self, outcome: Result<R>) -> bool {
        self.future.finish(outcome)
    }

    /// Whether the future is finished or cancelled already.
    ///
    /// # Examples
    ///
    /// ```
    /// let (future, completer) = proc_pool::internal::pending::<u8>();
    /// future.cancel();
    /// assert!(completer.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.future.done()
    }
}

#[cfg(test)]
mod tests {
    use proc_core::Error;

    use super::pending;

    #[test]
    fn a_completer_finishes_its_future_once() {
        let (future, completer) = pending::<u8>();
        assert!(!future.done());
        assert!(completer.set_running());
        assert!(future.running());
        assert!(completer.finish(Ok(7)));
        assert!(!completer.finish(Ok(8)));
        assert!(completer.is_done());
        assert_eq!(future.result().unwrap(), 7);
    }

    #[test]
    fn a_cancelled_future_is_not_started() {
        let (future, completer) = pending::<u8>();
        assert!(future.cancel());
        assert!(!completer.set_running());
        assert!(completer.is_done());
        assert!(!completer.finish(Err(Error::Cancelled)));
    }
}
