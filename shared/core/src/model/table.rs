//! The shape of stored data: items, keys, conditions, updates and writes
//! of the one DynamoDB-shaped table (the store itself is the
//! [`Table`](crate::ports::table::Table) port).
//!
//! Items are JSON objects. Every item has string `pk` and `sk` attributes; the
//! optional `gsi1pk`/`gsi1sk` pair feeds the one global secondary index, and
//! `expires_at` (epoch seconds) is the TTL attribute. A table never filters on
//! `expires_at` itself — [`crate::ports::table::Db`] does, because DynamoDB deletes
//! expired items lazily (and moto never does).

use serde_json::Value;

use crate::base::error::Error;

/// A stored item: a JSON object with at least `pk` and `sk`.
pub type Item = serde_json::Map<String, Value>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1PK: &str = "gsi1pk";
pub const GSI1SK: &str = "gsi1sk";
pub const EXPIRES_AT: &str = "expires_at";
/// Name of the one global secondary index.
pub const GSI1: &str = "gsi1";

/// The primary key of an item.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// The key of an item, if it has string `pk` and `sk` attributes.
    pub fn of(item: &Item) -> Option<Self> {
        Some(Self::new(item.get(PK)?.as_str()?, item.get(SK)?.as_str()?))
    }
}

/// A condition on the current state of one item (DynamoDB's
/// `ConditionExpression`). Attribute names are top-level attributes only.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    /// The item exists (`attribute_exists(pk)`).
    Exists,
    /// The item does not exist (`attribute_not_exists(pk)`).
    NotExists,
    AttrExists(String),
    AttrNotExists(String),
    /// Equal; false when the attribute is missing.
    Eq(String, Value),
    /// Not equal; true when the attribute is missing (as in DynamoDB).
    Ne(String, Value),
    /// Ordered comparisons on numbers (or strings); false when missing.
    Lt(String, Value),
    Le(String, Value),
    Gt(String, Value),
    Ge(String, Value),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    pub fn eq(attr: &str, v: impl Into<Value>) -> Self {
        Self::Eq(attr.into(), v.into())
    }
    pub fn ne(attr: &str, v: impl Into<Value>) -> Self {
        Self::Ne(attr.into(), v.into())
    }
    pub fn lt(attr: &str, v: impl Into<Value>) -> Self {
        Self::Lt(attr.into(), v.into())
    }
    pub fn le(attr: &str, v: impl Into<Value>) -> Self {
        Self::Le(attr.into(), v.into())
    }
    pub fn gt(attr: &str, v: impl Into<Value>) -> Self {
        Self::Gt(attr.into(), v.into())
    }
    pub fn ge(attr: &str, v: impl Into<Value>) -> Self {
        Self::Ge(attr.into(), v.into())
    }
    pub fn and(self, other: Cond) -> Self {
        match self {
            Cond::And(mut v) => {
                v.push(other);
                Cond::And(v)
            }
            c => Cond::And(vec![c, other]),
        }
    }
    pub fn or(self, other: Cond) -> Self {
        Cond::Or(vec![self, other])
    }
    /// The item is missing or has expired at `now` (so it may be replaced).
    pub fn absent_at(now: i64) -> Self {
        Cond::NotExists.or(Cond::le(EXPIRES_AT, now))
    }
    /// The item exists and has not expired at `now`.
    pub fn live_at(now: i64) -> Self {
        Cond::Exists.and(Cond::AttrNotExists(EXPIRES_AT.into()).or(Cond::gt(EXPIRES_AT, now)))
    }
}

/// One action of an update (DynamoDB's `UpdateExpression`).
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// `SET attr = value`.
    Set(String, Value),
    /// `ADD attr n`: adds to a number, treating a missing attribute as 0.
    Add(String, i64),
    /// `REMOVE attr`.
    Remove(String),
}

impl Update {
    pub fn set(attr: &str, v: impl Into<Value>) -> Self {
        Self::Set(attr.into(), v.into())
    }
    pub fn add(attr: &str, n: i64) -> Self {
        Self::Add(attr.into(), n)
    }
    pub fn remove(attr: &str) -> Self {
        Self::Remove(attr.into())
    }
}

/// One write of a transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    Put {
        item: Item,
        cond: Option<Cond>,
    },
    /// Creates the item (with just its key and the updated attributes) when
    /// it does not exist, as DynamoDB does, unless the condition forbids it.
    Update {
        key: Key,
        ops: Vec<Update>,
        cond: Option<Cond>,
    },
    Delete {
        key: Key,
        cond: Option<Cond>,
    },
    /// Only checks a condition (DynamoDB's `ConditionCheck`).
    Check {
        key: Key,
        cond: Cond,
    },
}

impl Write {
    pub fn key(&self) -> Option<Key> {
        match self {
            Write::Put { item, .. } => Key::of(item),
            Write::Update { key, .. } | Write::Delete { key, .. } | Write::Check { key, .. } => Some(key.clone()),
        }
    }
}

/// A query on one partition of the table or of the GSI.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// `Some(GSI1)` to query the index (on `gsi1pk`/`gsi1sk`).
    pub index: Option<&'static str>,
    /// The partition key value.
    pub pk: String,
    /// Only sort keys that start with this prefix.
    pub sk_prefix: Option<String>,
    /// Ascending sort-key order when true.
    pub forward: bool,
    /// At most this many items (before the caller's own filtering).
    pub limit: u32,
    /// Continue after this item's keys (from [`Page::next`]).
    pub start: Option<Item>,
}

/// One page of a query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    /// The keys to continue from, when there may be more.
    pub next: Option<Item>,
}

/// Why a table call failed.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The condition of a single write was false.
    #[error("conditional check failed")]
    ConditionFailed,
    /// A transaction was cancelled; `true` at index `i` means the condition
    /// of write `i` was false. All `false` means a conflict with another
    /// transaction (retryable).
    #[error("transaction cancelled")]
    TransactionCanceled(Vec<bool>),
    /// Throttled or unreachable; the request may succeed later.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else (bad request to the store, undecodable item, …).
    #[error("store error: {0}")]
    Internal(String),
}

pub type TableResult<T> = Result<T, TableError>;

impl From<TableError> for Error {
    fn from(e: TableError) -> Self {
        match e {
            TableError::Unavailable(source) => Error::Unavailable(source),
            // A conflict that outlived its retries: busy, try again (503).
            TableError::TransactionCanceled(v) if !v.iter().any(|f| *f) => {
                Error::Unavailable("transaction conflict with a concurrent request".into())
            }
            other => Error::Internal(other.to_string()),
        }
    }
}
