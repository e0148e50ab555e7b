//! Which way a notification goes: straight to the store, or to the spool. Once anything
//! is spooled, every new notification is spooled too until the replay has emptied the
//! spool, so that nothing overtakes the backlog (docs/design.md#the-spool).

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// The switch between the store and the spool, with what is on its way through each.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<State>,
    /// Woken when spooling starts.
    spooling_started: Notify,
    /// Woken when spooling stops, for the requests held at a closed gate.
    reopened: Notify,
}

#[derive(Debug, Default)]
struct State {
    spooling: bool,
    /// The replay is taking the last of the backlog: new requests wait a little for it to
    /// finish instead of being spooled behind it.
    closed: bool,
    /// Requests between deciding to spool and their record being counted in the spool.
    appending: usize,
    /// Requests writing to the store, and those writes themselves (a write outlives a
    /// request that stopped waiting for it).
    direct: usize,
}

/// The way a request goes.
pub enum Route {
    Store(Direct),
    Spool(Appending),
    /// The gate is closed while the replay takes the last of the backlog: wait for it
    /// ([`Gate::reopened`]), then ask again.
    Wait,
}

/// Counts a request (or its write) on its way to the store until dropped.
#[derive(Debug)]
pub struct Direct(Arc<Gate>);

/// Counts a request on its way to the spool until dropped.
#[derive(Debug)]
pub struct Appending(Arc<Gate>);

impl Gate {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Spools from the start: a spool left by an earlier run is drained first.
    pub fn spooling_from_start(self: &Arc<Self>) {
        self.state().spooling = true;
        self.spooling_started.notify_one();
    }

    /// The way for a new request: the spool while spooling or while the store is not
    /// ready (which starts spooling), else the store; [`Route::Wait`] while the gate is
    /// closed, if `may_wait`.
    pub fn route(self: &Arc<Self>, store_ready: bool, may_wait: bool) -> Route {
        let mut state = self.state();
        if state.spooling && state.closed && may_wait && store_ready {
            return Route::Wait;
        }
        if state.spooling || !store_ready {
            let started = !state.spooling;
            state.spooling = true;
            state.appending += 1;
            drop(state);
            if started {
                self.spooling_started.notify_one();
            }
            Route::Spool(Appending(self.clone()))
        } else {
            state.direct += 1;
            Route::Store(Direct(self.clone()))
        }
    }

    /// Starts spooling (if it had not started) for a request whose store write failed.
    pub fn fall_back(self: &Arc<Self>) -> Appending {
        let mut state = self.state();
        let started = !state.spooling;
        state.spooling = true;
        state.appending += 1;
        drop(state);
        if started {
            tracing::warn!("the database cannot take notifications: spooling them");
            self.spooling_started.notify_one();
        }
        Appending(self.clone())
    }

    /// Another count for a store write that may outlive its request.
    pub fn also_direct(self: &Arc<Self>) -> Direct {
        self.state().direct += 1;
        Direct(self.clone())
    }

    pub fn is_spooling(&self) -> bool {
        self.state().spooling
    }

    /// Store writes not finished yet.
    pub fn direct_in_flight(&self) -> usize {
        self.state().direct
    }

    /// Closes the gate: what is left of the backlog is about to be replayed, and new
    /// requests wait for that instead of adding to it (docs/design.md#the-spool).
    pub fn close(&self) {
        self.state().closed = true;
    }

    /// Opens the gate again without leaving the spool (the replay failed).
    pub fn open(&self) {
        self.state().closed = false;
        self.reopened.notify_waiters();
    }

    /// Stops spooling if the spool is empty (`spooled` is its record count, read after
    /// the last removal) and no request is on its way to it, and lets the requests held
    /// at the gate go to the store. True if it stopped.
    pub fn resume_direct(&self, spooled: impl FnOnce() -> u64) -> bool {
        let mut state = self.state();
        if state.appending == 0 && spooled() == 0 {
            state.spooling = false;
            state.closed = false;
            drop(state);
            self.reopened.notify_waiters();
            true
        } else {
            false
        }
    }

    /// Completes once the gate is open (at once if it is).
    pub async fn reopened(&self) {
        loop {
            let notified = self.reopened.notified();
            if !self.state().closed {
                return;
            }
            notified.await;
        }
    }

    /// Completes once spooling has started (at once if it has).
    pub async fn spooling(&self) {
        loop {
            let notified = self.spooling_started.notified();
            if self.is_spooling() {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Direct {
    fn drop(&mut self) {
        self.0.state().direct -= 1;
    }
}

impl Drop for Appending {
    fn drop(&mut self) {
        self.0.state().appending -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_spooling_everything_is_spooled_until_the_spool_is_empty_and_nothing_is_on_its_way() {
        let gate = Arc::new(Gate::default());
        let direct = match gate.route(true, true) {
            Route::Store(direct) => direct,
            Route::Spool(_) | Route::Wait => panic!("the store is ready and nothing is spooled"),
        };
        let fell_back = gate.fall_back();
        drop(direct);
        assert!(matches!(gate.route(true, true), Route::Spool(_)));
        assert!(!gate.resume_direct(|| 0), "a request is still on its way");
        drop(fell_back);
        assert!(!gate.resume_direct(|| 1), "the spool is not empty");
        assert!(gate.resume_direct(|| 0));
        assert!(matches!(gate.route(true, true), Route::Store(_)));
    }

    #[test]
    fn a_closed_gate_holds_new_requests_until_the_spool_is_empty() {
        let gate = Arc::new(Gate::default());
        drop(gate.fall_back());
        gate.close();
        assert!(matches!(gate.route(true, true), Route::Wait));
        assert!(
            matches!(gate.route(true, false), Route::Spool(_)),
            "one that waited long enough is spooled, behind the backlog"
        );
        gate.open();
        assert!(matches!(gate.route(true, true), Route::Spool(_)));
        gate.close();
        assert!(gate.resume_direct(|| 0));
        assert!(matches!(gate.route(true, true), Route::Store(_)));
    }

    #[test]
    fn before_the_store_is_ready_requests_are_spooled() {
        let gate = Arc::new(Gate::default());
        assert!(matches!(gate.route(false, true), Route::Spool(_)));
        assert!(gate.is_spooling());
    }

    #[test]
    fn a_write_that_outlives_its_request_is_counted_until_it_ends() {
        let gate = Arc::new(Gate::default());
        let Route::Store(request) = gate.route(true, true) else {
            panic!("store")
        };
        let write = gate.also_direct();
        drop(request);
        assert_eq!(gate.direct_in_flight(), 1);
        drop(write);
        assert_eq!(gate.direct_in_flight(), 0);
    }
}
