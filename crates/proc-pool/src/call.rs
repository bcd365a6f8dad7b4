//! The shapes of function a pool runs: one argument, several (`starmap`), initializers.

use std::fmt::Display;

/// A value of the zero-sized callable type `C`: how a worker gets the function that a task
/// names by its type alone (a fn item, or a closure that captures nothing).
///
/// # Safety
///
/// `C` must be a fn item type or the type of a closure that captures nothing (what an
/// `Fn` bound with [`no_captures`](crate::internal::no_captures) at the submitting end
/// ensures), or a zero-sized wrapper of one (`Direct`, `Star`). Such a value has no bytes and
/// carries no invariant beyond its type. A closure that captures a zero-sized token is
/// zero-sized too, and `no_captures` cannot tell it from one that captures nothing (the
/// limit documented on `Pool`). A zero-sized `C` is checked at compile time.
///
/// # Examples
///
/// ```
/// fn double(x: u32) -> u32 {
///     x * 2
/// }
///
/// fn run<F: Fn(u32) -> u32 + Copy>(_named: F, x: u32) -> u32 {
///     // SAFETY: `F` is a fn item type here.
///     let f: F = unsafe { proc_pool::internal::conjure() };
///     f(x)
/// }
/// assert_eq!(run(double, 21), 42);
/// ```
pub unsafe fn conjure<C>() -> C {
    const {
        assert!(
            size_of::<C>() == 0,
            "the function must not capture anything"
        )
    };
    // SAFETY: `C` is zero-sized (checked above at compile time), so a value of it has no
    // bytes to be invalid, and the caller promises that it carries no other invariant.
    unsafe { std::mem::zeroed() }
}

/// A function of 2 to 6 arguments called with a tuple of them: what `starmap` runs
/// (Python's `pool.starmap(f, [(a, b), ...])` calls `f(a, b)`).
///
/// Implemented for every `Fn(A, B) -> R` up to `Fn(A, B, C, D, E, F) -> R`.
///
/// # Examples
///
/// ```
/// use proc_pool::StarFn;
///
/// let mul = |a: u64, b: u64| a * b;
/// assert_eq!(mul.call_star((6, 7)), 42);
/// ```
pub trait StarFn<Args>: sealed::Sealed<Args> + Send + Sync + 'static {
    /// What the function returns.
    type Output;

    /// Calls the function with the tuple's elements as its arguments.
    fn call_star(&self, args: Args) -> Self::Output;
}

/// `StarFn` is implemented for functions only: a worker process makes the function's value
/// from nothing (it is zero-sized), which is sound for fn items and closures, not for a
/// user's zero-sized type with an invariant of its own.
mod sealed {
    pub trait Sealed<Args> {}
}

macro_rules! star_fn {
    ($($arg:ident),+) => {
        impl<Func, $($arg,)+ Ret> sealed::Sealed<($($arg,)+)> for Func
        where
            Func: Fn($($arg),+) -> Ret + Send + Sync + 'static,
        {
        }

        impl<Func, $($arg,)+ Ret> StarFn<($($arg,)+)> for Func
        where
            Func: Fn($($arg),+) -> Ret + Send + Sync + 'static,
        {
            type Output = Ret;

            #[allow(non_snake_case)]
            fn call_star(&self, ($($arg,)+): ($($arg,)+)) -> Ret {
                self($($arg),+)
            }
        }
    };
}

star_fn!(A, B);
star_fn!(A, B, C);
star_fn!(A, B, C, D);
star_fn!(A, B, C, D, E);
star_fn!(A, B, C, D, E, F);

/// What a pool's initializer may return: nothing, or a `Result` whose error fails the pool
/// (its tasks and later submissions get the error instead of running).
///
/// # Examples
///
/// ```
/// use proc_pool::InitOutput;
///
/// assert_eq!(().into_outcome(), Ok(()));
/// assert_eq!(Err::<(), _>("no database").into_outcome(), Err("no database".to_string()));
/// ```
pub trait InitOutput {
    /// `Ok` when the worker may run tasks, else what went wrong.
    fn into_outcome(self) -> Result<(), String>;
}

impl InitOutput for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Display> InitOutput for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// A function a worker calls on one item, whatever its shape.
pub(crate) trait Call<A>: Send + Sync + 'static {
    type Output;

    fn call(&self, args: A) -> Self::Output;
}

/// A function of one argument.
#[derive(Clone, Copy)]
pub(crate) struct Direct<F>(pub(crate) F);

impl<F, A, R> Call<A> for Direct<F>
where
    F: Fn(A) -> R + Send + Sync + 'static,
{
    type Output = R;

    fn call(&self, args: A) -> R {
        (self.0)(args)
    }
}

/// A function of several arguments, given as a tuple.
#[derive(Clone, Copy)]
pub(crate) struct Star<F>(pub(crate) F);

impl<F, A> Call<A> for Star<F>
where
    F: StarFn<A>,
{
    type Output = F::Output;

    fn call(&self, args: A) -> F::Output {
        self.0.call_star(args)
    }
}
