//! The open connections' deadlines (the core's `poll_timeout`: token expiry,
//! the auth-message deadline) on one runtime timer per gateway.
//!
//! A runtime timer per connection costs a registration with the runtime's
//! timer (on smol, a wake-up of the reactor thread) for every connection,
//! though almost every connection ends long before its deadline. Here a
//! connection's deadline is an entry in a shared ordered map; one driver task
//! sleeps until the earliest entry and wakes the connections whose deadline
//! has come. The instant a connection wakes is the same as with its own
//! timer: the start of the deadline's Unix second.

use crate::runtime::Runtime;
use futures::FutureExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The deadlines of one gateway's connections. Cheap to share.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    state: Mutex<State>,
    /// Counts the driver's firings: a connection registered in an earlier
    /// round may have been fired (and removed) since.
    fired: AtomicU64,
    next_key: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// (Unix second, key) → the waiting connection.
    waiting: BTreeMap<(i64, u64), Waker>,
    /// The running driver, if any.
    driver: Option<Driver>,
}

#[derive(Debug)]
struct Driver {
    /// The deadline the driver sleeps until.
    at: i64,
    /// Woken when an earlier deadline arrives.
    waker: Option<Waker>,
}

/// Time until the Unix second `t` begins (zero once it has).
pub(crate) fn until_unix(t: i64) -> Duration {
    let target = UNIX_EPOCH + Duration::from_secs(t.max(0) as u64);
    target
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

impl Deadlines {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A deadline at the start of Unix second `at`, registered on its first poll.
    pub(crate) fn at(self: &Arc<Self>, at: i64) -> Deadline {
        Deadline {
            set: self.clone(),
            at,
            key: self.next_key.fetch_add(1, Ordering::Relaxed),
            registered: None,
        }
    }

    /// Wakes (and removes) every connection whose deadline has come; the
    /// earliest one left, or `None` (the driver then stops).
    fn fire(&self, st: &mut State) -> Option<i64> {
        let mut woke = false;
        while let Some(entry) = st.waiting.first_entry() {
            if !until_unix(entry.key().0).is_zero() {
                break;
            }
            entry.remove().wake();
            woke = true;
        }
        if woke {
            self.fired.fetch_add(1, Ordering::AcqRel);
        }
        st.waiting.first_key_value().map(|(k, _)| k.0)
    }

    /// The driver: sleeps until the earliest deadline (or until an earlier
    /// one arrives), fires, and stops when no connection waits.
    async fn drive<R: Runtime>(self: Arc<Self>, rt: R) {
        loop {
            let at = {
                let mut st = self.lock();
                match self.fire(&mut st) {
                    Some(at) => {
                        st.driver = Some(Driver { at, waker: None });
                        at
                    }
                    None => {
                        st.driver = None;
                        return;
                    }
                }
            };
            let mut sleep = rt.sleep(until_unix(at));
            futures::future::poll_fn(|cx| {
                if sleep.poll_unpin(cx).is_ready() {
                    return Poll::Ready(());
                }
                let mut st = self.lock();
                match st.driver.as_mut() {
                    Some(d) if d.at >= at => {
                        d.waker = Some(cx.waker().clone());
                        Poll::Pending
                    }
                    _ => Poll::Ready(()),
                }
            })
            .await;
        }
    }
}

/// One connection's deadline; leaves the map when dropped.
#[derive(Debug)]
pub(crate) struct Deadline {
    set: Arc<Deadlines>,
    at: i64,
    key: u64,
    /// The waker in the map, and the firing round it was put there in.
    registered: Option<(Waker, u64)>,
}

impl Deadline {
    /// The Unix second it is set to.
    pub(crate) fn at(&self) -> i64 {
        self.at
    }

    /// Ready once the deadline's second has begun.
    pub(crate) fn poll<R: Runtime>(&mut self, rt: &R, cx: &mut Context<'_>) -> Poll<()> {
        if until_unix(self.at).is_zero() {
            self.leave();
            return Poll::Ready(());
        }
        if let Some((w, round)) = &self.registered {
            // Still in the map: the same waker, and no firing since.
            if w.will_wake(cx.waker()) && *round == self.set.fired.load(Ordering::Acquire) {
                return Poll::Pending;
            }
        }
        let round = self.set.fired.load(Ordering::Acquire);
        let mut st = self.set.lock();
        st.waiting.insert((self.at, self.key), cx.waker().clone());
        self.registered = Some((cx.waker().clone(), round));
        match st.driver.as_mut() {
            None => {
                st.driver = Some(Driver {
                    at: self.at,
                    waker: None,
                });
                drop(st);
                rt.spawn(self.set.clone().drive(rt.clone()).boxed());
            }
            Some(d) if self.at < d.at => {
                d.at = self.at;
                if let Some(w) = d.waker.take() {
                    w.wake();
                }
            }
            Some(_) => {}
        }
        Poll::Pending
    }

    fn leave(&mut self) {
        if self.registered.take().is_some() {
            self.set.lock().waiting.remove(&(self.at, self.key));
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use std::sync::atomic::AtomicUsize;

    /// Counts spawns and timers; timers never fire, tasks are dropped.
    #[derive(Clone, Default)]
    struct Counting {
        spawned: Arc<AtomicUsize>,
        timers: Arc<AtomicUsize>,
    }

    impl Runtime for Counting {
        fn spawn(&self, task: BoxFuture<'static, ()>) {
            self.spawned.fetch_add(1, Ordering::SeqCst);
            drop(task);
        }
        fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> {
            self.timers.fetch_add(1, Ordering::SeqCst);
            futures::future::pending().boxed()
        }
    }

    fn unix_now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    #[test]
    fn many_connections_share_one_driver_and_leave_on_drop() {
        let rt = Counting::default();
        let set = Arc::new(Deadlines::default());
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let far = unix_now() + 3600;
        let mut ds: Vec<Deadline> = (0..100).map(|i| set.at(far + i)).collect();
        for d in &mut ds {
            assert!(d.poll(&rt, &mut cx).is_pending());
            // Polling again registers nothing new.
            assert!(d.poll(&rt, &mut cx).is_pending());
        }
        assert_eq!(rt.spawned.load(Ordering::SeqCst), 1);
        assert_eq!(set.lock().waiting.len(), 100);
        drop(ds);
        assert!(set.lock().waiting.is_empty());
    }

    #[test]
    fn a_passed_deadline_is_ready_at_once() {
        let rt = Counting::default();
        let set = Arc::new(Deadlines::default());
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut d = set.at(unix_now() - 1);
        assert!(d.poll(&rt, &mut cx).is_ready());
        assert_eq!(rt.spawned.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_driver_fires_due_connections_and_stops_when_none_wait() {
        let rt = Counting::default();
        let set = Arc::new(Deadlines::default());
        let woken = Arc::new(AtomicUsize::new(0));
        struct Count(Arc<AtomicUsize>);
        impl futures::task::ArcWake for Count {
            fn wake_by_ref(me: &Arc<Self>) {
                me.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let waker = futures::task::waker(Arc::new(Count(woken.clone())));
        // Put a due entry in directly (as if registered a second ago).
        set.lock()
            .waiting
            .insert((unix_now() - 1, 7), waker.clone());
        let far = unix_now() + 3600;
        set.lock().waiting.insert((far, 8), waker);
        let mut drive = set.clone().drive(rt.clone()).boxed();
        let noop = futures::task::noop_waker();
        let mut cx = Context::from_waker(&noop);
        assert!(drive.poll_unpin(&mut cx).is_pending());
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        assert_eq!(set.fired.load(Ordering::SeqCst), 1);
        assert_eq!(set.lock().driver.as_ref().map(|d| d.at), Some(far));
        // The last connection leaves: the next round stops the driver.
        set.lock().waiting.clear();
        if let Some(d) = set.lock().driver.as_mut() {
            d.at = far - 10;
        }
        assert!(drive.poll_unpin(&mut cx).is_ready());
        assert!(set.lock().driver.is_none());
    }
}
