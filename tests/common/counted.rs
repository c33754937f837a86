//! A `MemoryStore` that counts its writes (`create`, `save` and `delete`)
//! and its loads, for tests whose point is how often a request reaches the
//! session store.
//!
//! Also used by the benchmark package's `store_writes` test, by path.

#![allow(dead_code, unreachable_pub)]

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use async_trait::async_trait;
use tower_sessions::{
    session::{Id, Record},
    session_store, MemoryStore, SessionStore,
};

#[derive(Debug, Clone, Default)]
pub struct Counted {
    inner: MemoryStore,
    writes: Arc<AtomicUsize>,
    loads: Arc<AtomicUsize>,
}

impl Counted {
    /// The writes so far.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// The loads so far.
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl SessionStore for Counted {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.wrote();
        self.inner.create(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.wrote();
        self.inner.save(record).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(id).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.wrote();
        self.inner.delete(id).await
    }
}
