//! Records with TTL semantics, on two backends behind one small [`Backend`] trait.
//!
//! Every record lives in a [`Table`] under a partition key and a sort key, carries a JSON
//! body, an optional epoch-seconds expiry (the DynamoDB TTL attribute) and a version for
//! optimistic updates. Reads treat an expired record as absent, because DynamoDB deletes
//! late and the embedded store never does. Writes are conditional and atomic: a list of
//! [`Op`]s either all apply or none does ([`StoreError::Conflict`]).
//!
//! The protocol-facing interfaces are narrow per-area traits implemented on [`Store`]:
//! [`SingleUse`] here, [`crate::accounts::Accounts`], [`crate::session::Sessions`],
//! [`crate::apps::Apps`]. They are written once, over the backend, so both backends pass
//! the same suite ([`crate::testing::store_suite`]).

pub mod dynamodb;
#[cfg(feature = "embedded")]
pub mod embedded;
mod run;

pub use identity_core::plan::Plan;
pub use identity_core::store::schema;
pub use identity_core::store::{
    Cond, Item, Op, StoreError, Table, Versioned, record, serde_failure,
};
pub use run::{Load, MAX_OPS, PLAN_ATTEMPTS, conflict_as, worst_pause};

use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use crate::clock::Clock;
use crate::config::StoreSpec;

/// Where one record is: its table, partition key and sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key<'a> {
    pub table: Table,
    pub pk: &'a str,
    pub sk: &'a str,
}

/// What a backend must do. Both implementations judge expiry the same way: a record whose
/// `expires_at` is at or before `now` is absent for every read and every condition.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// `embedded` or `dynamodb`, for test output and logs.
    fn name(&self) -> &'static str;
    /// The live record under `key`.
    async fn get(&self, key: Key<'_>, now: i64) -> Result<Option<Item>, StoreError>;
    /// Live records under `pk` whose sort key starts with `sk_prefix`, in sort-key order.
    async fn query(
        &self,
        table: Table,
        pk: &str,
        sk_prefix: &str,
        now: i64,
    ) -> Result<Vec<Item>, StoreError>;
    /// At most `limit` live records under `pk` whose sort key starts with `sk_prefix`,
    /// newest (greatest sort key) first: a bounded page, never the whole partition.
    async fn query_newest(
        &self,
        table: Table,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
        now: i64,
    ) -> Result<Vec<Item>, StoreError>;
    /// Adds `by` to the counter under `pk`/`sk` in one conditional write and returns its
    /// new value. A missing or expired counter starts from zero and lives until
    /// `expires_at`; a live one keeps its expiry. The count is the record's version.
    async fn add(
        &self,
        counter: Key<'_>,
        by: i64,
        expires_at: i64,
        now: i64,
    ) -> Result<i64, StoreError>;
    /// Every live record of a table (operator listings only).
    async fn scan(&self, table: Table, now: i64) -> Result<Vec<Item>, StoreError>;
    /// All the operations, atomically, or none and [`StoreError::Conflict`].
    async fn write(&self, ops: Vec<Op>, now: i64) -> Result<(), StoreError>;
    /// Deletes a live record and returns it; `None` when there was none. Of any number of
    /// concurrent callers on one key, exactly one gets the record.
    async fn take(&self, key: Key<'_>, now: i64) -> Result<Option<Item>, StoreError>;
}

/// The store every handler uses: a backend and the clock that judges expiry.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend.name())
            .finish()
    }
}

impl Store {
    pub fn new(backend: Arc<dyn Backend>, clock: Arc<dyn Clock>) -> Self {
        Self { backend, clock }
    }

    /// Opens the store named by configuration. DynamoDB takes its endpoint, region and
    /// credentials from the AWS SDK's usual settings (`AWS_ENDPOINT_URL`, …).
    /// `sdk` is used for DynamoDB (loaded from the environment when not given).
    pub async fn open(
        spec: &StoreSpec,
        clock: Arc<dyn Clock>,
        sdk: Option<&aws_config::SdkConfig>,
    ) -> Result<Self, StoreError> {
        let backend: Arc<dyn Backend> = match spec {
            #[cfg(feature = "embedded")]
            StoreSpec::Embedded(path) => Arc::new(embedded::Embedded::open(path)?),
            #[cfg(not(feature = "embedded"))]
            StoreSpec::Embedded(_) => {
                return Err(StoreError::Unavailable(
                    "this build has no embedded store (a Lambda bootstrap): IDENTITY_STORE must be dynamodb:".into(),
                ));
            }
            StoreSpec::DynamoDb { table_prefix } => {
                let client = match sdk {
                    Some(sdk) => aws_sdk_dynamodb::Client::new(sdk),
                    None => aws_sdk_dynamodb::Client::new(&crate::aws::sdk_config().await),
                };
                Arc::new(dynamodb::DynamoDb::new(client, table_prefix.clone()))
            }
        };
        Ok(Self::new(backend, clock))
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub async fn get_item(
        &self,
        table: Table,
        pk: &str,
        sk: &str,
    ) -> Result<Option<Item>, StoreError> {
        self.backend.get(Key { table, pk, sk }, self.now()).await
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        table: Table,
        pk: &str,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get_item(table, pk, sk)
            .await?
            .map(|i| i.parse())
            .transpose()
    }

    /// Like [`Store::get`], for record types that keep their store version.
    pub async fn get_versioned<T: DeserializeOwned + Versioned>(
        &self,
        table: Table,
        pk: &str,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get_item(table, pk, sk)
            .await?
            .map(|i| i.parse_versioned())
            .transpose()
    }

    pub async fn query<T: DeserializeOwned>(
        &self,
        table: Table,
        pk: &str,
        sk_prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        let items = self.backend.query(table, pk, sk_prefix, self.now()).await?;
        items.iter().map(Item::parse).collect()
    }

    /// At most `limit` live records of `pk` under `sk_prefix`, newest sort key first.
    pub async fn query_newest<T: DeserializeOwned>(
        &self,
        table: Table,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let items = self
            .backend
            .query_newest(table, pk, sk_prefix, limit, self.now())
            .await?;
        items.iter().map(Item::parse).collect()
    }

    /// Adds `by` to a counter (see [`Backend::add`]) and returns its new value.
    pub async fn add(
        &self,
        table: Table,
        pk: &str,
        sk: &str,
        by: i64,
        expires_at: i64,
    ) -> Result<i64, StoreError> {
        self.backend
            .add(Key { table, pk, sk }, by, expires_at, self.now())
            .await
    }

    pub async fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.backend.write(ops, self.now()).await
    }

    pub async fn take(&self, table: Table, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.backend.take(Key { table, pk, sk }, self.now()).await
    }
}

/// Single-use values: authorization codes, refresh tokens, `jti`s, SAML assertion and
/// request IDs. Keys are already hashes or public identifiers; never raw secrets.
#[async_trait]
pub trait SingleUse {
    /// Stores `body` under `kind`/`key` until `expires_at`, refusing a live duplicate.
    async fn put_single_use(
        &self,
        kind: &str,
        key: &str,
        body: &serde_json::Value,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Takes the value stored under `kind`/`key`: the body for exactly one caller, `None`
    /// for every other caller, for an expired value and for one never stored.
    async fn take_single_use(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError>;
    /// The value stored under `kind`/`key`, without taking it, and the version read, for a
    /// plan that takes it (`identity_core::store::once::take`) in the same write as what it
    /// makes with it, so a failure between the two cannot spend it for nothing. Of
    /// concurrent writes carrying that take, exactly one succeeds.
    async fn peek_single_use(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<Option<(serde_json::Value, i64)>, StoreError>;
    /// Records that `kind`/`key` has been seen, until `expires_at`. `true` for exactly one
    /// caller; `false` for every later (or concurrent) one while the record lives.
    async fn mark_used(&self, kind: &str, key: &str, expires_at: i64) -> Result<bool, StoreError>;
    /// Whether `kind`/`key` has been seen (a live "used" record), read only: for a plan that
    /// writes [`used_op`] itself and, after a conflict, learns why.
    async fn was_used(&self, kind: &str, key: &str) -> Result<bool, StoreError>;
}

use identity_core::store::once::pk as once_pk;
/// The write [`SingleUse::mark_used`] makes, for a caller that puts it into a write of its
/// own: "`kind`/`key` seen, until `expires_at`", refused if it already was.
pub use identity_core::store::once::used as used_op;

#[async_trait]
impl SingleUse for Store {
    async fn put_single_use(
        &self,
        kind: &str,
        key: &str,
        body: &serde_json::Value,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.write(vec![identity_core::store::once::put(
            kind, key, body, expires_at,
        )?])
        .await
    }

    async fn take_single_use(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.take(Table::Once, &once_pk(kind, key), "once")
            .await?
            .map(|i| i.parse())
            .transpose()
    }

    async fn peek_single_use(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<Option<(serde_json::Value, i64)>, StoreError> {
        let Some(item) = self
            .get_item(Table::Once, &once_pk(kind, key), "once")
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((item.parse()?, item.version)))
    }

    async fn was_used(&self, kind: &str, key: &str) -> Result<bool, StoreError> {
        Ok(self
            .get_item(Table::Once, &once_pk(kind, key), "used")
            .await?
            .is_some())
    }

    async fn mark_used(&self, kind: &str, key: &str, expires_at: i64) -> Result<bool, StoreError> {
        let plan = Plan::write(vec![used_op(kind, key, expires_at)?], ());
        Ok(self.try_apply(plan).await?.is_some())
    }
}
