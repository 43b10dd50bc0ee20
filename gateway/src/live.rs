//! Open connections by token id and user, so a revocation published by any
//! gateway closes the sockets it names here (4401).

use futures::channel::oneshot;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wsauth_core::Revoked;

#[derive(Debug)]
struct Entry {
    jti: Option<String>,
    user: Option<String>,
    close: Option<oneshot::Sender<()>>,
}

/// The open connections a revocation can reach. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct LiveConnections {
    inner: Arc<Mutex<HashMap<u64, Entry>>>,
}

/// One connection's place in [`LiveConnections`]; leaves on drop.
#[derive(Debug)]
pub(crate) struct LiveGuard {
    id: u64,
    set: LiveConnections,
}

impl LiveGuard {
    /// The connection now carries this token id (after an in-band login or refresh).
    pub(crate) fn set_jti(&self, jti: Option<String>) {
        if let Some(e) = self.set.lock().get_mut(&self.id) {
            e.jti = jti;
        }
    }
}

impl LiveGuard {
    /// The connection's user changed (an in-band login).
    pub(crate) fn set_user(&self, user: Option<String>) {
        if let Some(e) = self.set.lock().get_mut(&self.id) {
            e.user = user;
        }
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.set.lock().remove(&self.id);
    }
}

impl LiveConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds connection `id`; the receiver fires when it is revoked.
    pub(crate) fn register(
        &self,
        id: u64,
        jti: Option<String>,
        user: Option<String>,
    ) -> (LiveGuard, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(
            id,
            Entry {
                jti,
                user,
                close: Some(tx),
            },
        );
        (
            LiveGuard {
                id,
                set: self.clone(),
            },
            rx,
        )
    }

    /// Closes every open connection `what` names; how many.
    pub fn revoke(&self, what: Revoked<'_>) -> usize {
        let mut n = 0;
        for e in self.lock().values_mut() {
            let hit = match what {
                Revoked::Jti(j) => e.jti.as_deref() == Some(j),
                Revoked::User(u) => e.user.as_deref() == Some(u),
            };
            if hit {
                if let Some(tx) = e.close.take() {
                    let _ = tx.send(());
                    n += 1;
                }
            }
        }
        n
    }

    /// The token ids and users of the open connections (for a catch-up check).
    pub fn snapshot(&self) -> Vec<(Option<String>, Option<String>)> {
        self.lock()
            .values()
            .filter(|e| e.close.is_some())
            .map(|e| (e.jti.clone(), e.user.clone()))
            .collect()
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_reach_only_the_named_connections() {
        let live = LiveConnections::default();
        let (_a, mut ra) = live.register(1, Some("j1".into()), Some("1".into()));
        let (b, mut rb) = live.register(2, Some("j2".into()), Some("2".into()));
        let (_c, mut rc) = live.register(3, None, None);
        assert_eq!(live.revoke(Revoked::Jti("j1")), 1);
        assert_eq!(ra.try_recv(), Ok(Some(())));
        assert_eq!(rb.try_recv(), Ok(None));
        assert_eq!(live.revoke(Revoked::Jti("j1")), 0, "each closes once");
        b.set_user(Some("9".into()));
        assert_eq!(live.revoke(Revoked::User("2")), 0);
        assert_eq!(live.revoke(Revoked::User("9")), 1);
        assert_eq!(rb.try_recv(), Ok(Some(())));
        assert_eq!(rc.try_recv(), Ok(None));
        drop(b);
        assert_eq!(live.len(), 2);
    }
}
