//! The store port: a single-table, DynamoDB-shaped key/value store
//! ([`Table`]), and the typed layer over it that domain code uses ([`Db`]),
//! with its transaction builder ([`Tx`]).
//!
//! Domain code is written once against this port; the in-memory table
//! ([`crate::ports::memory::MemoryTable`]) and the DynamoDB table
//! (`nambari-aws`) implement it with the same semantics, which the
//! conformance suite (`crate::ports::conformance`) pins down for both.
//!
//! [`Db`] (de)serialises records and hides items whose `expires_at` has
//! passed, on every read, because TTL deletion is lazy (and moto never
//! deletes at all).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::base::error::{Error, Result};
use crate::base::ids::UserId;
use crate::model::keys::{phone_key, user_key};
use crate::model::records::{User, from_item, is_live, to_item};
use crate::model::table::{Cond, Item, Key, PK, Page, Query, SK, TableError, TableResult, Update, Write};

/// The store port. Reads are strongly consistent (except queries on the GSI).
#[async_trait]
pub trait Table: Send + Sync {
    async fn get(&self, key: &Key) -> TableResult<Option<Item>>;
    /// Items in the order of `keys` (`None` where missing). At most 100 keys.
    async fn batch_get(&self, keys: &[Key]) -> TableResult<Vec<Option<Item>>>;
    async fn put(&self, item: Item, cond: Option<Cond>) -> TableResult<()>;
    /// Applies `ops` (creating the item when missing, unless `cond` says
    /// otherwise) and returns the item as it is after the update.
    async fn update(&self, key: &Key, ops: Vec<Update>, cond: Option<Cond>) -> TableResult<Item>;
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> TableResult<()>;
    /// All writes or none. At most 100 writes, each on a distinct item.
    async fn transact(&self, writes: Vec<Write>) -> TableResult<()>;
    async fn query(&self, query: Query) -> TableResult<Page>;
}

/// Retries of a transaction cancelled by a conflict (see [`Db::transact`]).
pub const CONFLICT_RETRIES: u32 = 2;

/// A transaction cancelled by a conflict alone: no condition failed, so
/// nothing was written and it may be tried again.
pub fn is_conflict(e: &TableError) -> bool {
    matches!(e, TableError::TransactionCanceled(v) if !v.iter().any(|f| *f))
}

/// The typed layer over the table; counts the round trips it makes.
#[derive(Clone)]
pub struct Db {
    table: Arc<dyn Table>,
    calls: Arc<AtomicU64>,
}

impl Db {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self {
            table,
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn table(&self) -> &Arc<dyn Table> {
        &self.table
    }

    /// Store round trips made so far (a transaction or batch counts as one).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// The live item under `key`.
    pub async fn get_item(&self, key: &Key, now: i64) -> Result<Option<Item>> {
        self.count();
        Ok(self.table.get(key).await?.filter(|i| is_live(i, now)))
    }

    /// The live record under `key`.
    pub async fn get<T: DeserializeOwned>(&self, key: &Key, now: i64) -> Result<Option<T>> {
        self.get_item(key, now).await?.map(from_item).transpose()
    }

    /// The live items under `keys`, in order, in one round trip.
    pub async fn batch_get(&self, keys: &[Key], now: i64) -> Result<Vec<Option<Item>>> {
        self.count();
        Ok(self
            .table
            .batch_get(keys)
            .await?
            .into_iter()
            .map(|i| i.filter(|i| is_live(i, now)))
            .collect())
    }

    pub async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), TableError> {
        self.count();
        self.table.put(item, cond).await
    }

    pub async fn update(&self, key: &Key, ops: Vec<Update>, cond: Option<Cond>) -> Result<Item, TableError> {
        self.count();
        self.table.update(key, ops, cond).await
    }

    pub async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<(), TableError> {
        self.count();
        self.table.delete(key, cond).await
    }

    /// All `writes` or none. A transaction cancelled only by a conflict with
    /// another one on the same items (DynamoDB's `TransactionConflict`: no
    /// condition failed, nothing was written) is tried again, up to
    /// [`CONFLICT_RETRIES`] times after a short random pause; conditions are
    /// evaluated afresh each time.
    ///
    /// A single put, update or delete is sent as that one conditional
    /// operation rather than a transaction: the same atomicity, half the
    /// write units (DynamoDB bills a transaction's writes twice). Its failed
    /// condition is reported as the transaction's (its write 0 failed).
    pub async fn transact(&self, mut writes: Vec<Write>) -> Result<(), TableError> {
        if writes.len() == 1 && !matches!(writes[0], Write::Check { .. }) {
            let single = match writes.pop() {
                Some(Write::Put { item, cond }) => self.put(item, cond).await,
                Some(Write::Update { key, ops, cond }) => self.update(&key, ops, cond).await.map(|_| ()),
                Some(Write::Delete { key, cond }) => self.delete(&key, cond).await,
                _ => return Err(TableError::Internal("unreachable: checked above".into())),
            };
            return single.map_err(|e| match e {
                TableError::ConditionFailed => TableError::TransactionCanceled(vec![true]),
                other => other,
            });
        }
        let mut attempt = 0;
        loop {
            self.count();
            let result = self.table.transact(writes.clone()).await;
            match result {
                Err(e) if is_conflict(&e) && attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    let jitter = crate::base::crypto::random_bytes::<1>()
                        .map(|b| u64::from(b[0]) % 20)
                        .unwrap_or(0);
                    tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt) + jitter)).await;
                }
                other => return other,
            }
        }
    }

    /// One page of a query (expired items included: filter with [`is_live`]).
    pub async fn query(&self, query: Query) -> Result<Page, TableError> {
        self.count();
        self.table.query(query).await
    }

    /// The user with this phone number: the uniqueness item, then the user.
    pub async fn user_by_phone(&self, e164: &str, now: i64) -> Result<Option<User>> {
        let Some(item) = self.get_item(&phone_key(e164), now).await? else {
            return Ok(None);
        };
        let id = item
            .get("user_id")
            .and_then(Value::as_str)
            .and_then(|s| UserId::parse(s).ok())
            .ok_or_else(|| Error::internal("phone item without a user id"))?;
        self.get(&user_key(&id), now).await
    }

    /// Writes that create `user` with its phone uniqueness item (one transaction).
    pub fn create_user_writes(user: &User, now: i64) -> Result<[Write; 2]> {
        let mut phone = Item::new();
        phone.insert("user_id".into(), Value::String(user.id.to_string()));
        phone.insert("created_at".into(), Value::from(user.created_at));
        let pk = phone_key(&user.phone);
        phone.insert(PK.into(), Value::String(pk.pk.clone()));
        phone.insert(SK.into(), Value::String(pk.sk.clone()));
        Ok([
            Write::Put {
                item: to_item(&user_key(&user.id), user)?,
                cond: Some(Cond::NotExists),
            },
            Write::Put {
                item: phone,
                cond: Some(Cond::absent_at(now)),
            },
        ])
    }
}

/// What a refused write answers: the error of the request whose write's
/// condition was false (e.g. `|| Error::TokenAlreadyUsed` on the write that
/// consumes a single-use token).
pub type Refusal = fn() -> Error;

/// A transaction being built: each write may carry its own refusal `T`,
/// reported when its condition is what cancelled the transaction — so no
/// caller ever decodes a failure by the position of a write.
#[derive(Clone, Debug)]
pub struct Tx<T = Refusal> {
    steps: Vec<(Write, Option<T>)>,
}

impl<T> Default for Tx<T> {
    fn default() -> Self {
        Self { steps: Vec::new() }
    }
}

impl Tx {
    /// A transaction whose refusals are errors ([`Refusal`]).
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T> Tx<T> {
    /// A transaction whose refusals are the caller's own tags.
    pub fn tagged() -> Self {
        Self::default()
    }

    /// A write whose condition is not expected to fail (a failure is a
    /// store error, 500).
    pub fn add(&mut self, write: Write) -> &mut Self {
        self.steps.push((write, None));
        self
    }

    /// A write that, when its condition is false, refuses the transaction
    /// with `refusal`.
    pub fn add_or(&mut self, write: Write, refusal: T) -> &mut Self {
        self.steps.push((write, Some(refusal)));
        self
    }

    /// Every write of `writes`, none with a refusal.
    pub fn add_all(&mut self, writes: impl IntoIterator<Item = Write>) -> &mut Self {
        for w in writes {
            self.add(w);
        }
        self
    }

    /// The writes of `other`, with their refusals.
    pub fn append(&mut self, other: Tx<T>) -> &mut Self {
        self.steps.extend(other.steps);
        self
    }

    /// The same writes with each refusal turned into another type.
    pub fn map<U>(self, f: impl Fn(T) -> U) -> Tx<U> {
        Tx {
            steps: self.steps.into_iter().map(|(w, r)| (w, r.map(&f))).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Why a transaction did not commit.
#[derive(Debug)]
pub enum TxError<T> {
    /// A write with a refusal failed its condition (the first such write).
    Refused(T),
    /// Anything else: the store failed, or a write without a refusal failed
    /// its condition.
    Store(TableError),
}

impl From<TxError<Refusal>> for Error {
    fn from(e: TxError<Refusal>) -> Self {
        match e {
            TxError::Refused(refusal) => refusal(),
            TxError::Store(e) => Error::from(e),
        }
    }
}

impl Db {
    /// Commits `tx` (all its writes or none, see [`Db::transact`]). When
    /// conditions cancel it, the refusal of the first failed write that
    /// carries one is returned.
    pub async fn commit<T: Clone>(&self, tx: Tx<T>) -> Result<(), TxError<T>> {
        let (writes, refusals): (Vec<Write>, Vec<Option<T>>) = tx.steps.into_iter().unzip();
        match self.transact(writes).await {
            Ok(()) => Ok(()),
            Err(TableError::TransactionCanceled(failed)) => {
                let refusal = failed
                    .iter()
                    .zip(&refusals)
                    .find_map(|(f, r)| r.as_ref().filter(|_| *f).cloned());
                match refusal {
                    Some(r) => Err(TxError::Refused(r)),
                    None => Err(TxError::Store(TableError::TransactionCanceled(failed))),
                }
            }
            Err(e) => Err(TxError::Store(e)),
        }
    }
}

/// The table of a function that declares no store: every call fails.
struct AbsentTable;

fn no_store<T>() -> TableResult<T> {
    Err(TableError::Internal(
        "the store is not among this function's needs (app::Needs)".into(),
    ))
}

#[async_trait]
impl Table for AbsentTable {
    async fn get(&self, _: &Key) -> TableResult<Option<Item>> {
        no_store()
    }
    async fn batch_get(&self, _: &[Key]) -> TableResult<Vec<Option<Item>>> {
        no_store()
    }
    async fn put(&self, _: Item, _: Option<Cond>) -> TableResult<()> {
        no_store()
    }
    async fn update(&self, _: &Key, _: Vec<Update>, _: Option<Cond>) -> TableResult<Item> {
        no_store()
    }
    async fn delete(&self, _: &Key, _: Option<Cond>) -> TableResult<()> {
        no_store()
    }
    async fn transact(&self, _: Vec<Write>) -> TableResult<()> {
        no_store()
    }
    async fn query(&self, _: Query) -> TableResult<Page> {
        no_store()
    }
}

impl Db {
    /// The table of a function that declares no store.
    pub fn absent() -> Self {
        Self::new(Arc::new(AbsentTable))
    }
}
