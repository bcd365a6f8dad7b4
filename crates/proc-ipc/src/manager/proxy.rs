//! Proxies of a manager's containers (`dict`, `list`, namespace, value, array) and of user
//! types.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

#[cfg(doc)]
use proc_core::Error;
use proc_core::Result;
use proc_core::internal::fn_offset;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::client::{Token, decode, encode, encode_all, encode_pairs, unexpected};
use super::objects::{Custom, Make, Runner};
use super::wire::{Bytes, Failure, Op, Reply};

macro_rules! proxy_traits {
    ($name:ident < $($p:ident),* >) => {
        impl<$($p),*> Clone for $name<$($p),*> {
            fn clone(&self) -> Self {
                $name { token: self.token.clone(), types: PhantomData }
            }
        }

        impl<$($p),*> fmt::Debug for $name<$($p),*> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("manager", &self.token.remote.address)
                    .field("id", &self.token.id)
                    .finish()
            }
        }

        impl<$($p),*> PartialEq for $name<$($p),*> {
            fn eq(&self, other: &Self) -> bool {
                self.token == other.token
            }
        }

        impl<$($p),*> Eq for $name<$($p),*> {}
    };
}
pub(crate) use proxy_traits;

fn keyed<Q: Serialize + ?Sized>(key: &Q) -> Result<Bytes> {
    encode(key)
}

/// A dict that lives in a manager: Python's `Manager().dict()`.
///
/// Keys and values are serde values, stored encoded (so two keys are the same key when
/// they encode alike — true of integers, strings, tuples and most derived types, not of
/// floats that differ only in sign of zero or in NaN bits). The order is that of insertion,
/// as in Python. Every call is one round trip to the server; [`to_map`](DictProxy::to_map),
/// [`items`](DictProxy::items) and [`update`](DictProxy::update) move many entries in one.
///
/// A proxy is `Clone + Serialize + Send`: pass it to [`Process::spawn`](proc_core::Process::spawn),
/// to pool tasks or over a [`Connection`](crate::Connection), and it connects to its manager
/// where it lands. A proxy stored inside another (a list as a value of a dict) stays live.
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_ipc::{DictProxy, Manager};
///
/// fn record(d: DictProxy<u32, String>) {
///     d.insert(proc_core::getpid(), "child".into()).unwrap();
/// }
///
/// fn main() {
///     proc_core::init();
///     let manager = Manager::start().unwrap();
///     let d = manager.dict::<u32, String>().unwrap();
///     let mut child = Process::spawn(record, d.clone()).unwrap();
///     let pid = child.pid().unwrap();
///     child.join().unwrap();
///     assert_eq!(d.get(&pid).unwrap().as_deref(), Some("child"));
/// }
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct DictProxy<K, V> {
    token: Token,
    #[serde(skip)]
    types: PhantomData<fn() -> (K, V)>,
}

proxy_traits!(DictProxy<K, V>);

impl<K, V> DictProxy<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    pub(crate) fn new(token: Token) -> Self {
        DictProxy {
            token,
            types: PhantomData,
        }
    }

    /// Sets `key` to `value` (Python's `d[key] = value`) and returns the value it had.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone, [`Error::Decode`] when a value does not
    /// encode or decode.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict::<String, i32>().unwrap();
    /// assert_eq!(d.insert("a".into(), 1).unwrap(), None);
    /// assert_eq!(d.insert("a".into(), 2).unwrap(), Some(1));
    /// ```
    #[doc(alias = "__setitem__")]
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        self.token.item(Op::Insert(encode(&key)?, encode(&value)?))
    }

    /// The value of `key` (Python's `d.get(key)`).
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict::<String, i32>().unwrap();
    /// d.insert("a".into(), 1).unwrap();
    /// assert_eq!(d.get("a").unwrap(), Some(1));
    /// assert_eq!(d.get("b").unwrap(), None);
    /// ```
    #[doc(alias = "__getitem__")]
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.token.item(Op::Get(keyed(key)?))
    }

    /// Removes `key` and returns its value (Python's `d.pop(key, None)`).
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// d.insert(1, 10).unwrap();
    /// assert_eq!(d.remove(&1).unwrap(), Some(10));
    /// assert_eq!(d.remove(&1).unwrap(), None);
    /// ```
    #[doc(alias = "__delitem__")]
    pub fn remove<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.token.item(Op::Remove(keyed(key)?))
    }

    /// Python's `d.pop(key)`: the same as [`remove`](DictProxy::remove), `None` for a
    /// missing key where Python raises `KeyError`.
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// d.insert(1, 10).unwrap();
    /// assert_eq!(d.pop(&1).unwrap(), Some(10));
    /// assert!(d.is_empty().unwrap());
    /// ```
    pub fn pop<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.remove(key)
    }

    /// Whether `key` is in the dict (Python's `key in d`).
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict::<String, ()>().unwrap();
    /// d.insert("here".into(), ()).unwrap();
    /// assert!(d.contains_key("here").unwrap());
    /// assert!(!d.contains_key("there").unwrap());
    /// ```
    #[doc(alias = "__contains__")]
    pub fn contains_key<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.token.flag(Op::Contains(keyed(key)?))
    }

    /// How many entries the dict has (Python's `len(d)`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// d.update([(1, 1), (2, 2)]).unwrap();
    /// assert_eq!(d.len().unwrap(), 2);
    /// ```
    #[doc(alias = "__len__")]
    pub fn len(&self) -> Result<usize> {
        self.token.count(Op::Len).map(|n| n as usize)
    }

    /// Whether the dict has no entries.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert!(m.dict::<u8, u8>().unwrap().is_empty().unwrap());
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The keys, in insertion order.
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict::<char, u8>().unwrap();
    /// d.update([('b', 1), ('a', 2)]).unwrap();
    /// assert_eq!(d.keys().unwrap(), ['b', 'a']);
    /// ```
    pub fn keys(&self) -> Result<Vec<K>> {
        self.token.items(Op::Keys)
    }

    /// The values, in insertion order of their keys.
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict::<char, u8>().unwrap();
    /// d.update([('b', 1), ('a', 2)]).unwrap();
    /// assert_eq!(d.values().unwrap(), [1, 2]);
    /// ```
    pub fn values(&self) -> Result<Vec<V>> {
        self.token.items(Op::Values)
    }

    /// The entries, in insertion order, in one round trip.
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict::<char, u8>().unwrap();
    /// d.insert('x', 1).unwrap();
    /// assert_eq!(d.items().unwrap(), [('x', 1)]);
    /// ```
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        self.token.pairs(Op::Items)
    }

    /// Sets many entries in one round trip (Python's `d.update(...)`), as one step that no
    /// other client comes between. One call carries at most 8,388,608 (2²³) entries.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] when there are more entries than one call carries (nothing is
    /// sent; split them over several calls), and the errors of
    /// [`insert`](DictProxy::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict::<u32, u32>().unwrap();
    /// d.update((0..1000).map(|i| (i, i * i))).unwrap();
    /// assert_eq!(d.get(&30).unwrap(), Some(900));
    /// ```
    pub fn update(&self, entries: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        self.token.unit(Op::Update(encode_pairs(entries)?))
    }

    /// Removes every entry.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// d.insert(1, 1).unwrap();
    /// d.clear().unwrap();
    /// assert!(d.is_empty().unwrap());
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.token.unit(Op::Clear)
    }

    /// The value of `key`, after setting it to `default` if it had none, in one step on the
    /// server (Python's `d.setdefault(key, default)`).
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// assert_eq!(d.setdefault(1, 5).unwrap(), 5);
    /// assert_eq!(d.setdefault(1, 7).unwrap(), 5);
    /// ```
    pub fn setdefault(&self, key: K, default: V) -> Result<V> {
        self.token
            .item(Op::SetDefault(encode(&key)?, encode(&default)?))?
            .ok_or_else(unexpected)
    }

    /// Every entry at once, in one round trip (Python's `dict(d)`, `d.copy()`).
    ///
    /// # Errors
    ///
    /// As [`insert`](DictProxy::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let d = m.dict::<String, u8>().unwrap();
    /// d.insert("k".into(), 1).unwrap();
    /// assert_eq!(d.to_map().unwrap()["k"], 1);
    /// ```
    #[doc(alias = "copy")]
    pub fn to_map(&self) -> Result<HashMap<K, V>>
    where
        K: Eq + Hash,
    {
        Ok(self.items()?.into_iter().collect())
    }

    /// Changes the value of `key` with `f` on the server, as one step that no other client
    /// can come between (the answer to Python's racy `d[k] += 1`); a missing key starts
    /// from `V::default()`. Returns the new value.
    ///
    /// `f` is a function or a closure without captures (`|v| *v += 1`), as for
    /// [`Process::spawn`](proc_core::Process::spawn): it runs in the server, which must run
    /// the same build as this process. A panic in `f` is the call's error, and the value
    /// stays as it was.
    ///
    /// # Errors
    ///
    /// [`Error::BuildMismatch`] when the server runs another build (a remote manager of
    /// another program), [`Error::Panicked`] when `f` panics, and the errors of
    /// [`insert`](DictProxy::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let hits = m.dict::<String, u64>().unwrap();
    /// hits.update_with("page".into(), |n| *n += 1).unwrap();
    /// assert_eq!(hits.update_with("page".into(), |n| *n += 1).unwrap(), 2);
    /// ```
    pub fn update_with(&self, key: K, f: fn(&mut V)) -> Result<V>
    where
        V: Default,
    {
        self.token.remote.check_same_build()?;
        // SAFETY: `Runner` and `fn(&mut V)` are function pointer types; the server turns
        // them back only after checking that it runs this build.
        let (runner, f) = unsafe { (fn_offset(run_update::<V> as Runner), fn_offset(f)) };
        self.token
            .item(Op::UpdateWith {
                key: encode(&key)?,
                default: encode(&V::default())?,
                runner,
                f,
            })?
            .ok_or_else(unexpected)
    }
}

/// Runs an `update_with` function on an encoded value, in the server.
fn run_update<V: Serialize + DeserializeOwned>(bytes: &mut Bytes, f: i64) -> Result<(), Failure> {
    let mut value: V = decode(bytes).map_err(|e| Failure::Decode(e.to_string()))?;
    // SAFETY: `f` was made by `fn_offset::<fn(&mut V)>` in `update_with::<V>` of a client
    // running this build (the server checked its fingerprint), and this runner is the one
    // made for the same `V`.
    let f: fn(&mut V) = unsafe { proc_core::internal::fn_at(f) };
    f(&mut value);
    *bytes = encode(&value).map_err(|e| Failure::Decode(e.to_string()))?;
    Ok(())
}

/// A list that lives in a manager: Python's `Manager().list()`.
///
/// Indexes are `i64`, and a negative one counts from the end, as in Python. Every call is
/// one round trip; [`extend`](ListProxy::extend) and [`to_vec`](ListProxy::to_vec) move
/// many items in one. Proxies travel as [`DictProxy`] says.
///
/// # Examples
///
/// ```
/// # proc_core::init();
/// let m = proc_ipc::Manager::start().unwrap();
/// let l = m.list::<u32>().unwrap();
/// l.push(1).unwrap();
/// l.extend([2, 3]).unwrap();
/// assert_eq!(l.get(-1).unwrap(), Some(3));
/// assert_eq!(l.to_vec().unwrap(), [1, 2, 3]);
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ListProxy<T> {
    token: Token,
    #[serde(skip)]
    types: PhantomData<fn() -> T>,
}

proxy_traits!(ListProxy<T>);

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    pub(crate) fn new(token: Token) -> Self {
        ListProxy {
            token,
            types: PhantomData,
        }
    }

    /// Adds an item at the end (Python's `append`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone, [`Error::Decode`] when the item does not
    /// encode.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let l = m.list::<String>().unwrap();
    /// l.push("x".into()).unwrap();
    /// assert_eq!(l.len().unwrap(), 1);
    /// ```
    #[doc(alias = "append")]
    pub fn push(&self, item: T) -> Result<()> {
        self.token.unit(Op::Push(encode(&item)?))
    }

    /// Removes and returns the last item, `None` when the list is empty.
    ///
    /// # Errors
    ///
    /// As [`push`](ListProxy::push).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.push(4).unwrap();
    /// assert_eq!(l.pop().unwrap(), Some(4));
    /// assert_eq!(l.pop().unwrap(), None);
    /// ```
    pub fn pop(&self) -> Result<Option<T>> {
        self.token.item(Op::Pop(None))
    }

    /// Removes and returns the item at `index` (Python's `pop(index)`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when `index` is out of range, and the errors of
    /// [`push`](ListProxy::push).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.extend([1, 2, 3]).unwrap();
    /// assert_eq!(l.pop_at(0).unwrap(), 1);
    /// assert!(l.pop_at(5).is_err());
    /// ```
    pub fn pop_at(&self, index: i64) -> Result<T> {
        self.token
            .item(Op::Pop(Some(index)))?
            .ok_or_else(unexpected)
    }

    /// The item at `index`, `None` when out of range.
    ///
    /// # Errors
    ///
    /// As [`push`](ListProxy::push).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let l = m.list::<char>().unwrap();
    /// l.extend(['a', 'b']).unwrap();
    /// assert_eq!(l.get(0).unwrap(), Some('a'));
    /// assert_eq!(l.get(-1).unwrap(), Some('b'));
    /// assert_eq!(l.get(2).unwrap(), None);
    /// ```
    #[doc(alias = "__getitem__")]
    pub fn get(&self, index: i64) -> Result<Option<T>> {
        self.token.item(Op::At(index))
    }

    /// Replaces the item at `index` (Python's `l[index] = item`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when `index` is out of range, and the errors of
    /// [`push`](ListProxy::push).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.push(0).unwrap();
    /// l.set(0, 9).unwrap();
    /// assert_eq!(l.get(0).unwrap(), Some(9));
    /// assert!(l.set(3, 1).is_err());
    /// ```
    #[doc(alias = "__setitem__")]
    pub fn set(&self, index: i64, item: T) -> Result<()> {
        self.token.unit(Op::SetAt(index, encode(&item)?))
    }

    /// Inserts `item` before `index` (clamped to the list, as Python's `insert`).
    ///
    /// # Errors
    ///
    /// As [`push`](ListProxy::push).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.extend([1, 3]).unwrap();
    /// l.insert(1, 2).unwrap();
    /// l.insert(100, 4).unwrap();
    /// assert_eq!(l.to_vec().unwrap(), [1, 2, 3, 4]);
    /// ```
    pub fn insert(&self, index: i64, item: T) -> Result<()> {
        self.token.unit(Op::InsertAt(index, encode(&item)?))
    }

    /// Removes the first item equal to `item` (compared encoded) and says whether there was
    /// one (Python's `remove`, which raises `ValueError` where this returns `false`).
    ///
    /// # Errors
    ///
    /// As [`push`](ListProxy::push).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.extend([1, 2, 1]).unwrap();
    /// assert!(l.remove(&1).unwrap());
    /// assert_eq!(l.to_vec().unwrap(), [2, 1]);
    /// assert!(!l.remove(&7).unwrap());
    /// ```
    pub fn remove(&self, item: &T) -> Result<bool> {
        self.token.flag(Op::RemoveValue(encode(item)?))
    }

    /// How many items the list has.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.extend([1, 2]).unwrap();
    /// assert_eq!(l.len().unwrap(), 2);
    /// ```
    #[doc(alias = "__len__")]
    pub fn len(&self) -> Result<usize> {
        self.token.count(Op::Len).map(|n| n as usize)
    }

    /// Whether the list has no items.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert!(m.list::<u8>().unwrap().is_empty().unwrap());
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Adds many items at the end in one round trip (Python's `extend`), as one step that
    /// no other client comes between. One call carries at most 16,777,216 (2²⁴) items.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] when there are more items than one call carries (nothing is sent;
    /// split them over several calls), and the errors of [`push`](ListProxy::push).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let l = m.list::<u32>().unwrap();
    /// l.extend(0..100_000).unwrap();
    /// assert_eq!(l.len().unwrap(), 100_000);
    /// ```
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> Result<()> {
        self.token.unit(Op::Extend(encode_all(items)?))
    }

    /// Every item, in one round trip (Python's `list(l)`).
    ///
    /// # Errors
    ///
    /// As [`push`](ListProxy::push).
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let l = m.list::<String>().unwrap();
    /// l.push("a".into()).unwrap();
    /// assert_eq!(l.to_vec().unwrap(), ["a"]);
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>> {
        self.token.items(Op::ToVec)
    }

    /// Removes every item.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.push(1).unwrap();
    /// l.clear().unwrap();
    /// assert!(l.is_empty().unwrap());
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.token.unit(Op::Clear)
    }
}

/// A namespace that lives in a manager: Python's `Manager().Namespace()`, whose attributes
/// are named values of any serde type.
///
/// # Examples
///
/// ```
/// # proc_core::init();
/// let m = proc_ipc::Manager::start().unwrap();
/// let ns = m.namespace().unwrap();
/// ns.set("x", &10).unwrap();
/// ns.set("name", "run 1").unwrap();
/// assert_eq!(ns.get::<i32>("x").unwrap(), Some(10));
/// assert_eq!(ns.get::<String>("name").unwrap().as_deref(), Some("run 1"));
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceProxy {
    token: Token,
}

impl fmt::Debug for NamespaceProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamespaceProxy")
            .field("manager", &self.token.remote.address)
            .field("id", &self.token.id)
            .finish()
    }
}

impl NamespaceProxy {
    pub(crate) fn new(token: Token) -> Self {
        NamespaceProxy { token }
    }

    /// Sets the attribute `name` (Python's `ns.name = value`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone, [`Error::Decode`] when the value does not
    /// encode.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let ns = m.namespace().unwrap();
    /// ns.set("done", &true).unwrap();
    /// assert_eq!(ns.get::<bool>("done").unwrap(), Some(true));
    /// ```
    #[doc(alias = "__setattr__")]
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
        self.token
            .item::<Bytes>(Op::Insert(encode(name)?, encode(value)?))
            .map(drop)
    }

    /// The attribute `name` as a `T`, `None` when it is not set.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when it is not a `T`, [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let ns = m.namespace().unwrap();
    /// assert_eq!(ns.get::<u8>("missing").unwrap(), None);
    /// ```
    #[doc(alias = "__getattr__")]
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        self.token.item(Op::Get(encode(name)?))
    }

    /// Removes the attribute `name` and says whether it was set (Python's `del ns.name`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let ns = m.namespace().unwrap();
    /// ns.set("x", &1).unwrap();
    /// assert!(ns.remove("x").unwrap());
    /// assert!(!ns.remove("x").unwrap());
    /// ```
    #[doc(alias = "__delattr__")]
    pub fn remove(&self, name: &str) -> Result<bool> {
        match self.token.call(Op::Remove(encode(name)?))? {
            Reply::Item(old) => Ok(old.is_some()),
            _ => Err(unexpected()),
        }
    }

    /// The names that are set, in the order they were first set.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let ns = m.namespace().unwrap();
    /// ns.set("b", &1).unwrap();
    /// ns.set("a", &2).unwrap();
    /// assert_eq!(ns.names().unwrap(), ["b", "a"]);
    /// ```
    #[doc(alias = "__dict__")]
    pub fn names(&self) -> Result<Vec<String>> {
        self.token.items(Op::Keys)
    }
}

/// One value that lives in a manager: Python's `Manager().Value(typecode, value)`.
///
/// # Examples
///
/// ```
/// # proc_core::init();
/// let m = proc_ipc::Manager::start().unwrap();
/// let v = m.value(1.5f64).unwrap();
/// v.set(2.5).unwrap();
/// assert_eq!(v.get().unwrap(), 2.5);
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ValueProxy<T> {
    token: Token,
    #[serde(skip)]
    types: PhantomData<fn() -> T>,
}

proxy_traits!(ValueProxy<T>);

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    pub(crate) fn new(token: Token) -> Self {
        ValueProxy {
            token,
            types: PhantomData,
        }
    }

    /// The value (Python's `v.value`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert_eq!(m.value(7u8).unwrap().get().unwrap(), 7);
    /// ```
    #[doc(alias = "value")]
    pub fn get(&self) -> Result<T> {
        self.token.item(Op::Load)?.ok_or_else(unexpected)
    }

    /// Replaces the value (Python's `v.value = x`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone, [`Error::Decode`] when it does not
    /// encode.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let v = m.value(String::new()).unwrap();
    /// v.set("set".into()).unwrap();
    /// assert_eq!(v.get().unwrap(), "set");
    /// ```
    pub fn set(&self, value: T) -> Result<()> {
        self.token.unit(Op::Store(encode(&value)?))
    }
}

/// A fixed-length array that lives in a manager: Python's `Manager().Array(typecode, seq)`.
///
/// # Examples
///
/// ```
/// # proc_core::init();
/// let m = proc_ipc::Manager::start().unwrap();
/// let a = m.array(vec![0i32; 3]).unwrap();
/// a.set(1, 5).unwrap();
/// assert_eq!(a.to_vec().unwrap(), [0, 5, 0]);
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ArrayProxy<T> {
    token: Token,
    #[serde(skip)]
    types: PhantomData<fn() -> T>,
}

proxy_traits!(ArrayProxy<T>);

impl<T: Serialize + DeserializeOwned> ArrayProxy<T> {
    pub(crate) fn new(token: Token) -> Self {
        ArrayProxy {
            token,
            types: PhantomData,
        }
    }

    /// The item at `index` (negative counts from the end), `None` when out of range.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let a = m.array(vec![1u8, 2]).unwrap();
    /// assert_eq!(a.get(-1).unwrap(), Some(2));
    /// assert_eq!(a.get(2).unwrap(), None);
    /// ```
    #[doc(alias = "__getitem__")]
    pub fn get(&self, index: i64) -> Result<Option<T>> {
        self.token.item(Op::At(index))
    }

    /// Replaces the item at `index`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] when `index` is out of range, [`Error::Closed`] when the
    /// manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let a = m.array(vec![0u8; 2]).unwrap();
    /// a.set(0, 3).unwrap();
    /// assert_eq!(a.get(0).unwrap(), Some(3));
    /// assert!(a.set(2, 1).is_err());
    /// ```
    #[doc(alias = "__setitem__")]
    pub fn set(&self, index: i64, item: T) -> Result<()> {
        self.token.unit(Op::SetAt(index, encode(&item)?))
    }

    /// How many items the array has.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert_eq!(m.array(vec![0u8; 4]).unwrap().len().unwrap(), 4);
    /// ```
    #[doc(alias = "__len__")]
    pub fn len(&self) -> Result<usize> {
        self.token.count(Op::Len).map(|n| n as usize)
    }

    /// Whether the array has no items.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert!(m.array(Vec::<u8>::new()).unwrap().is_empty().unwrap());
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Every item, in one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// assert_eq!(m.array(vec!['a', 'b']).unwrap().to_vec().unwrap(), ['a', 'b']);
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>> {
        self.token.items(Op::ToVec)
    }
}

/// A user type that a manager can keep: Python's `BaseManager.register(typeid, callable)`.
///
/// The server owns the object and runs [`handle`](SharedObject::handle) for each request,
/// one at a time; clients hold a [`Proxy`] and [`call`](Proxy::call) it. Requests and
/// responses are serde types, usually enums. The server must run the same build as the
/// client that [registers](crate::Manager::register) the object (always so for
/// [`Manager::start`](crate::Manager::start)); calls to it then work from any process.
///
/// # Examples
///
/// ```
/// use proc_ipc::{Manager, SharedObject};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Counter(u64);
///
/// #[derive(Serialize, Deserialize)]
/// enum Request { Add(u64), Get }
///
/// impl SharedObject for Counter {
///     type Request = Request;
///     type Response = u64;
///     fn handle(&mut self, request: Request) -> u64 {
///         if let Request::Add(n) = request {
///             self.0 += n;
///         }
///         self.0
///     }
/// }
///
/// fn main() {
///     proc_core::init();
///     let m = Manager::start().unwrap();
///     let counter = m.register(Counter(0)).unwrap();
///     counter.call(Request::Add(5)).unwrap();
///     assert_eq!(counter.call(Request::Get).unwrap(), 5);
/// }
/// ```
#[doc(alias = "BaseManager")]
pub trait SharedObject: Send + 'static {
    /// What a client asks.
    type Request: Serialize + DeserializeOwned;
    /// What the object answers.
    type Response: Serialize + DeserializeOwned;
    /// Answers one request, in the server.
    fn handle(&mut self, request: Self::Request) -> Self::Response;
}

struct Adapter<T>(T);

impl<T: SharedObject> Custom for Adapter<T> {
    fn handle(&mut self, request: &[u8]) -> Result<Bytes, Failure> {
        let request = decode(request).map_err(|e| Failure::Decode(e.to_string()))?;
        encode(&self.0.handle(request)).map_err(|e| Failure::Decode(e.to_string()))
    }
}

/// Builds a registered object in the server from its encoded first state.
fn make<T: SharedObject + DeserializeOwned>(state: &[u8]) -> Result<Box<dyn Custom>, Failure> {
    let object: T = decode(state).map_err(|e| Failure::Decode(e.to_string()))?;
    Ok(Box::new(Adapter(object)))
}

/// The offset of the function that builds a `T` in the server.
pub(crate) fn maker<T: SharedObject + DeserializeOwned>() -> i64 {
    // SAFETY: `Make` is a function pointer type.
    unsafe { fn_offset(make::<T> as Make) }
}

/// A proxy of a user object (see [`SharedObject`]).
///
/// # Examples
///
/// ```
/// # use proc_ipc::SharedObject;
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct Echo;
/// # impl SharedObject for Echo {
/// #     type Request = String;
/// #     type Response = String;
/// #     fn handle(&mut self, r: String) -> String { r }
/// # }
/// # proc_core::init();
/// let m = proc_ipc::Manager::start().unwrap();
/// let echo: proc_ipc::Proxy<Echo> = m.register(Echo).unwrap();
/// assert_eq!(echo.call("hi".into()).unwrap(), "hi");
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Proxy<T> {
    token: Token,
    #[serde(skip)]
    types: PhantomData<fn() -> T>,
}

proxy_traits!(Proxy<T>);

impl<T: SharedObject> Proxy<T> {
    pub(crate) fn new(token: Token) -> Self {
        Proxy {
            token,
            types: PhantomData,
        }
    }

    /// Sends `request` to the object and returns its response.
    ///
    /// # Errors
    ///
    /// [`Error::Panicked`] when `handle` panics (the object stays as the panic left it),
    /// [`Error::Decode`] when a request or response does not encode, [`Error::Closed`] when
    /// the manager is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # use proc_ipc::SharedObject;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Total(i64);
    /// # impl SharedObject for Total {
    /// #     type Request = i64;
    /// #     type Response = i64;
    /// #     fn handle(&mut self, n: i64) -> i64 { self.0 += n; self.0 }
    /// # }
    /// # proc_core::init();
    /// let m = proc_ipc::Manager::start().unwrap();
    /// let total = m.register(Total(1)).unwrap();
    /// assert_eq!(total.call(2).unwrap(), 3);
    /// ```
    pub fn call(&self, request: T::Request) -> Result<T::Response> {
        match self.token.call(Op::Handle(encode(&request)?))? {
            Reply::Item(Some(bytes)) => decode(&bytes),
            _ => Err(unexpected()),
        }
    }
}
