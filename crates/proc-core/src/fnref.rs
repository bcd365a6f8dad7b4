//! Plain functions that travel to other processes of the same build.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::fingerprint;

/// A plain `fn()` that can be sent to another process: its offset from an anchor of this
/// build, with the build's fingerprint, so that a process of another build (or a peer that
/// sends garbage) gets a decode error instead of a jump to a random address.
///
/// # Examples
///
/// ```
/// use proc_core::FnRef;
///
/// fn hello() {}
///
/// let sent = FnRef::new(hello);
/// assert_eq!(sent.get() as usize, hello as fn() as usize);
/// ```
#[derive(Clone, Copy)]
pub struct FnRef(fn());

impl FnRef {
    /// Wraps `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// fn f() {}
    /// let _ = proc_core::FnRef::new(f);
    /// ```
    pub fn new(f: fn()) -> FnRef {
        FnRef(f)
    }

    /// The function.
    ///
    /// # Examples
    ///
    /// ```
    /// fn f() {}
    /// (proc_core::FnRef::new(f).get())();
    /// ```
    pub fn get(self) -> fn() {
        self.0
    }
}

impl std::fmt::Debug for FnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FnRef")
            .field(&(self.0 as usize as *const ()))
            .finish()
    }
}

impl Serialize for FnRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let offset = (self.0 as usize).wrapping_sub(fingerprint::anchor()) as i64;
        (fingerprint::fingerprint(), offset).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FnRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (print, offset) = <(u64, i64)>::deserialize(deserializer)?;
        if print != fingerprint::fingerprint() {
            return Err(crate::codec::de_error(
                "a function from another build of the program",
            ));
        }
        let address = fingerprint::anchor().wrapping_add(offset as usize);
        if address == 0 {
            return Err(crate::codec::de_error("a null function"));
        }
        // SAFETY: the fingerprint matched, so the sender runs this very build, where `offset`
        // was measured from the same anchor to a `fn()`; the same distance here is that function.
        Ok(FnRef(unsafe {
            std::mem::transmute::<usize, fn()>(address)
        }))
    }
}
