//! Counting what a connection sends, through Diesel's instrumentation.

use diesel::connection::{Instrumentation, InstrumentationEvent};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Counts the statements a connection sends (one per round trip: `BEGIN`,
/// `COMMIT`, `SAVEPOINT` and `RELEASE` included), and records the failed
/// ones.
#[derive(Clone, Default)]
pub struct StatementCounter {
    count: Arc<AtomicUsize>,
    /// The statements since the last [`take`](Self::take).
    pub log: Arc<Mutex<Vec<String>>>,
    /// Every failed statement's error, since the counter was installed.
    pub errors: Arc<Mutex<Vec<String>>>,
}

impl StatementCounter {
    pub fn install<C: crate::backend::AsConnRef>(conn: &mut C) -> StatementCounter {
        let counter = StatementCounter::default();
        crate::dispatch!(
            conn,
            |c| diesel::Connection::set_instrumentation(c, counter.clone()),
            async |a| diesel_async::AsyncConnection::set_instrumentation(a, counter.clone()),
        );
        counter
    }

    /// Statements since the last call.
    pub fn take(&self) -> usize {
        self.log.lock().unwrap().clear();
        self.count.swap(0, Ordering::SeqCst)
    }

    /// The statements since the last `take`, as sent.
    pub fn statements(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Failed statements whose error is a deadlock.
    pub fn deadlocks(&self) -> usize {
        self.errors
            .lock()
            .unwrap()
            .iter()
            .filter(|e| is_deadlock(e))
            .count()
    }

    /// Failed statements whose error is a serialization failure or a deadlock:
    /// each one made a standalone call run again.
    pub fn aborts(&self) -> usize {
        self.errors
            .lock()
            .unwrap()
            .iter()
            .filter(|e| is_deadlock(e) || e.contains("could not serialize"))
            .count()
    }
}

fn is_deadlock(message: &str) -> bool {
    message.contains("deadlock detected") || message.contains("Deadlock found")
}

impl Instrumentation for StatementCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                self.count.fetch_add(1, Ordering::SeqCst);
                self.log.lock().unwrap().push(query.to_string());
            }
            InstrumentationEvent::FinishQuery {
                error: Some(error), ..
            } => {
                self.errors.lock().unwrap().push(error.to_string());
            }
            _ => {}
        }
    }
}
