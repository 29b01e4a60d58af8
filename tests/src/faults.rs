//! Fault injection at the store boundary: a [`Backend`] that passes every call to the real one
//! except those the test tells it to fail, the way DynamoDB fails in production once the
//! SDK's own retries are spent: throttled, timed out, an internal error, or (the hard one)
//! the write happened but its answer was lost.
//!
//! A test runs a flow once without faults to count its mutating calls ([`Faulty::mutations`]),
//! then once per mutating call with a fault there ([`Faulty::fail_mutation`]), and checks
//! that the store holds either the state before the flow or the state after it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use identity_shared::store::{Backend, Item, Key, Op, StoreError, Table};

/// How a call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Refused before doing anything (DynamoDB's throttling, after the SDK's retries).
    Throttled,
    /// No answer in time; nothing was done.
    Timeout,
    /// A 500 from the service; nothing was done.
    Internal,
    /// Done, but the answer never arrived.
    LostAnswer,
}

impl Fault {
    pub const ALL: [Fault; 4] = [
        Fault::Throttled,
        Fault::Timeout,
        Fault::Internal,
        Fault::LostAnswer,
    ];

    fn error(self) -> StoreError {
        StoreError::Unavailable(
            match self {
                Fault::Throttled => "injected: throttled (ProvisionedThroughputExceeded)",
                Fault::Timeout => "injected: operation timed out",
                Fault::Internal => "injected: InternalServerError",
                Fault::LostAnswer => "injected: the write happened, its answer was lost",
            }
            .into(),
        )
    }
}

/// The wrapper. Reads always pass; the mutating calls (`write`, `take`, `add`) are counted
/// from zero, and the one numbered by [`Faulty::fail_mutation`] fails.
pub struct Faulty {
    inner: Arc<dyn Backend>,
    mutations: AtomicUsize,
    /// `usize::MAX` for none; else the mutating call to fail, and how (`fault`).
    target: AtomicUsize,
    fault: std::sync::Mutex<Fault>,
    /// Every call, reads included, fails: the store is down.
    down: std::sync::atomic::AtomicBool,
}

impl Faulty {
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        Self {
            inner,
            mutations: AtomicUsize::new(0),
            target: AtomicUsize::new(usize::MAX),
            fault: std::sync::Mutex::new(Fault::Internal),
            down: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Every call fails (reads too) until [`Faulty::up`].
    pub fn down(&self) {
        self.down.store(true, Ordering::SeqCst);
    }

    pub fn up(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    fn read(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(Fault::Timeout.error())
        } else {
            Ok(())
        }
    }

    /// Mutating calls seen since the last [`Faulty::reset`].
    pub fn mutations(&self) -> usize {
        self.mutations.load(Ordering::SeqCst)
    }

    /// Counts from zero again, with no fault planned.
    pub fn reset(&self) {
        self.mutations.store(0, Ordering::SeqCst);
        self.target.store(usize::MAX, Ordering::SeqCst);
    }

    /// Counts from zero again; mutating call number `n` fails with `fault`.
    pub fn fail_mutation(&self, n: usize, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
        self.mutations.store(0, Ordering::SeqCst);
        self.target.store(n, Ordering::SeqCst);
    }

    /// Runs a mutating call, or fails it as planned: before it is made, or (a lost answer)
    /// after it is done.
    async fn mutate<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match self.planned() {
            None => call.await,
            Some(Fault::LostAnswer) => {
                call.await?;
                Err(Fault::LostAnswer.error())
            }
            Some(f) => Err(f.error()),
        }
    }

    /// Whether this mutating call is the one to fail, and how.
    fn planned(&self) -> Option<Fault> {
        if self.down.load(Ordering::SeqCst) {
            return Some(Fault::Timeout);
        }
        let n = self.mutations.fetch_add(1, Ordering::SeqCst);
        (n == self.target.load(Ordering::SeqCst)).then(|| *self.fault.lock().unwrap())
    }
}

#[async_trait]
impl Backend for Faulty {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn get(&self, key: Key<'_>, now: i64) -> Result<Option<Item>, StoreError> {
        self.read()?;
        self.inner.get(key, now).await
    }

    async fn query(
        &self,
        table: Table,
        pk: &str,
        sk_prefix: &str,
        now: i64,
    ) -> Result<Vec<Item>, StoreError> {
        self.read()?;
        self.inner.query(table, pk, sk_prefix, now).await
    }

    async fn query_newest(
        &self,
        table: Table,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
        now: i64,
    ) -> Result<Vec<Item>, StoreError> {
        self.read()?;
        self.inner
            .query_newest(table, pk, sk_prefix, limit, now)
            .await
    }

    async fn add(
        &self,
        counter: Key<'_>,
        by: i64,
        expires_at: i64,
        now: i64,
    ) -> Result<i64, StoreError> {
        self.mutate(self.inner.add(counter, by, expires_at, now))
            .await
    }

    async fn scan(&self, table: Table, now: i64) -> Result<Vec<Item>, StoreError> {
        self.read()?;
        self.inner.scan(table, now).await
    }

    async fn write(&self, ops: Vec<Op>, now: i64) -> Result<(), StoreError> {
        self.mutate(self.inner.write(ops, now)).await
    }

    async fn take(&self, key: Key<'_>, now: i64) -> Result<Option<Item>, StoreError> {
        self.mutate(self.inner.take(key, now)).await
    }
}
