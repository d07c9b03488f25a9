//! Fault injection for the reliability tests: a [`Table`] wrapper that fails
//! chosen calls (unavailable, throttled, a transaction conflict, an internal
//! error, or "failed after it committed"), and a [`Sender`] wrapper that
//! fails or slows chosen pipes. Both pass everything else through, and the
//! table keeps a log of the writes that committed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nambari_core::base::channel::Pipe;
use nambari_core::model::table::{Cond, Item, Key, Page, Query, TableError, TableResult, Update, Write};
use nambari_core::ports::sender::{InviteMessage, NoticeMessage, OtpMessage, SendError, Sender};
use nambari_core::ports::table::Table;

/// Text carried by every injected store error. It must reach the log (the
/// cause is logged) and never a response body.
pub const INJECTED_CAUSE: &str = "injected-cause: dynamodb.internal-host.example:8000 refused (secret detail)";

/// Which table operation a call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Get,
    BatchGet,
    Put,
    Update,
    Delete,
    Transact,
    Query,
}

/// One call as a fault rule sees it: the operation and the items it touches.
#[derive(Clone, Debug)]
pub struct Call {
    pub op: Op,
    pub keys: Vec<Key>,
}

impl Call {
    /// Whether the call touches an item whose `pk` starts with `prefix`.
    pub fn touches(&self, prefix: &str) -> bool {
        self.keys.iter().any(|k| k.pk.starts_with(prefix))
    }
}

/// How an injected failure looks to the code under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Unreachable (connection refused, timeout): `TableError::Unavailable`.
    Unavailable,
    /// Throttled (`ProvisionedThroughputExceeded`): also `Unavailable`.
    Throttled,
    /// A transaction cancelled by a conflicting transaction on one of its
    /// items, as `nambari-aws` maps DynamoDB's `TransactionConflict`:
    /// `TransactionCanceled` with every flag false.
    Conflict,
    /// Anything else the store may answer: `TableError::Internal`.
    Internal,
    /// The call is made and commits, then the caller sees `Unavailable`
    /// (a timeout after DynamoDB applied the write).
    AfterCommit,
    /// Not a failure: the call succeeds, after this long (a slow store, or
    /// a way to hold one request between two of its calls in a race).
    Slow(Duration),
}

type Predicate = Box<dyn Fn(&Call) -> bool + Send + Sync>;

struct Rule {
    matches: Predicate,
    failure: Failure,
    /// Matching calls to let through before failing.
    skip: u32,
    /// How many matching calls fail (after `skip`); `None` = until healed.
    times: Option<u32>,
}

/// A [`Table`] that fails the calls its rules match.
pub struct FaultyTable {
    inner: Arc<dyn Table>,
    rules: Mutex<Vec<Rule>>,
    calls: AtomicU64,
    injected: AtomicU64,
    committed: Mutex<Vec<(Op, Key)>>,
}

impl FaultyTable {
    pub fn new(inner: Arc<dyn Table>) -> Self {
        Self {
            inner,
            rules: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            committed: Mutex::new(Vec::new()),
        }
    }

    /// Fails every call matching `pred` with `failure` until [`Self::heal`].
    pub fn fail_when(&self, pred: impl Fn(&Call) -> bool + Send + Sync + 'static, failure: Failure) {
        self.add(Box::new(pred), failure, 0, None);
    }

    /// Fails the next `times` calls matching `pred`.
    pub fn fail_next(&self, pred: impl Fn(&Call) -> bool + Send + Sync + 'static, failure: Failure, times: u32) {
        self.add(Box::new(pred), failure, 0, Some(times));
    }

    /// Fails the `n`-th call from now (1-based), of any kind, once.
    pub fn fail_nth(&self, n: u32, failure: Failure) {
        self.add(Box::new(|_| true), failure, n.saturating_sub(1), Some(1));
    }

    /// Fails every call of any kind until [`Self::heal`].
    pub fn fail_all(&self, failure: Failure) {
        self.fail_when(|_| true, failure);
    }

    fn add(&self, matches: Predicate, failure: Failure, skip: u32, times: Option<u32>) {
        self.rules.lock().unwrap().push(Rule {
            matches,
            failure,
            skip,
            times,
        });
    }

    /// Removes every rule: the store works again.
    pub fn heal(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Failures injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// The writes that committed (single writes and each write of a
    /// committed transaction), in order.
    pub fn committed(&self) -> Vec<(Op, Key)> {
        self.committed.lock().unwrap().clone()
    }

    /// Committed puts of items whose `pk` starts with `pk_prefix` and whose `sk` is `sk`.
    pub fn puts_of(&self, pk_prefix: &str, sk: &str) -> Vec<Key> {
        self.committed()
            .into_iter()
            .filter(|(op, k)| *op == Op::Put && k.pk.starts_with(pk_prefix) && k.sk == sk)
            .map(|(_, k)| k)
            .collect()
    }

    /// The failure for this call, if a rule matches it (and counts it).
    fn fault(&self, call: &Call) -> Option<Failure> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut rules = self.rules.lock().unwrap();
        let mut hit = None;
        for (i, rule) in rules.iter_mut().enumerate() {
            if !(rule.matches)(call) {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            if let Some(t) = &mut rule.times {
                *t -= 1;
            }
            hit = Some((i, rule.failure));
            break;
        }
        let (i, failure) = hit?;
        if rules[i].times == Some(0) {
            rules.remove(i);
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        Some(failure)
    }

    fn error(failure: Failure, writes: usize) -> TableError {
        match failure {
            Failure::Unavailable | Failure::AfterCommit => TableError::Unavailable(INJECTED_CAUSE.into()),
            Failure::Throttled => {
                TableError::Unavailable(format!("ProvisionedThroughputExceededException: {INJECTED_CAUSE}").into())
            }
            Failure::Conflict => TableError::TransactionCanceled(vec![false; writes.max(1)]),
            Failure::Internal | Failure::Slow(_) => TableError::Internal(INJECTED_CAUSE.into()),
        }
    }

    fn record(&self, writes: impl IntoIterator<Item = (Op, Key)>) {
        self.committed.lock().unwrap().extend(writes);
    }

    /// Runs `call` through the rules: fails it, or runs `f` (and, for
    /// [`Failure::AfterCommit`], fails after running it).
    async fn run<T, F>(&self, call: Call, writes: usize, f: F) -> TableResult<T>
    where
        F: std::future::Future<Output = TableResult<T>>,
    {
        match self.fault(&call) {
            None => f.await,
            Some(Failure::Slow(d)) => {
                tokio::time::sleep(d).await;
                f.await
            }
            Some(Failure::AfterCommit) => {
                f.await?;
                Err(Self::error(Failure::AfterCommit, writes))
            }
            Some(failure) => Err(Self::error(failure, writes)),
        }
    }
}

fn write_op(w: &Write) -> Op {
    match w {
        Write::Put { .. } => Op::Put,
        Write::Update { .. } => Op::Update,
        Write::Delete { .. } => Op::Delete,
        Write::Check { .. } => Op::Transact,
    }
}

#[async_trait]
impl Table for FaultyTable {
    async fn get(&self, key: &Key) -> TableResult<Option<Item>> {
        let call = Call {
            op: Op::Get,
            keys: vec![key.clone()],
        };
        self.run(call, 0, self.inner.get(key)).await
    }

    async fn batch_get(&self, keys: &[Key]) -> TableResult<Vec<Option<Item>>> {
        let call = Call {
            op: Op::BatchGet,
            keys: keys.to_vec(),
        };
        self.run(call, 0, self.inner.batch_get(keys)).await
    }

    async fn put(&self, item: Item, cond: Option<Cond>) -> TableResult<()> {
        let key = Key::of(&item);
        let call = Call {
            op: Op::Put,
            keys: key.iter().cloned().collect(),
        };
        let r = self.run(call, 1, self.inner.put(item, cond)).await;
        if r.is_ok() {
            self.record(key.map(|k| (Op::Put, k)));
        }
        r
    }

    async fn update(&self, key: &Key, ops: Vec<Update>, cond: Option<Cond>) -> TableResult<Item> {
        let call = Call {
            op: Op::Update,
            keys: vec![key.clone()],
        };
        let r = self.run(call, 1, self.inner.update(key, ops, cond)).await;
        if r.is_ok() {
            self.record([(Op::Update, key.clone())]);
        }
        r
    }

    async fn delete(&self, key: &Key, cond: Option<Cond>) -> TableResult<()> {
        let call = Call {
            op: Op::Delete,
            keys: vec![key.clone()],
        };
        let r = self.run(call, 1, self.inner.delete(key, cond)).await;
        if r.is_ok() {
            self.record([(Op::Delete, key.clone())]);
        }
        r
    }

    async fn transact(&self, writes: Vec<Write>) -> TableResult<()> {
        let keyed: Vec<(Op, Key)> = writes
            .iter()
            .filter_map(|w| w.key().map(|k| (write_op(w), k)))
            .collect();
        let call = Call {
            op: Op::Transact,
            keys: keyed.iter().map(|(_, k)| k.clone()).collect(),
        };
        let n = writes.len();
        let r = self.run(call, n, self.inner.transact(writes)).await;
        if r.is_ok() {
            self.record(keyed.into_iter().filter(|(op, _)| *op != Op::Transact));
        }
        r
    }

    async fn query(&self, query: Query) -> TableResult<Page> {
        let call = Call {
            op: Op::Query,
            keys: vec![Key::new(query.pk.clone(), "")],
        };
        self.run(call, 0, self.inner.query(query)).await
    }
}

/// A [`Sender`] that passes messages to `inner` unless their pipe is set to
/// fail (at once, or after a delay).
pub struct FaultySender {
    inner: Arc<dyn Sender>,
    failing: Mutex<HashMap<Pipe, Duration>>,
    attempts: AtomicU64,
}

impl FaultySender {
    pub fn new(inner: Arc<dyn Sender>) -> Self {
        Self {
            inner,
            failing: Mutex::new(HashMap::new()),
            attempts: AtomicU64::new(0),
        }
    }

    /// Every send over `pipe` fails at once (until [`Self::heal`]).
    pub fn fail(&self, pipe: Pipe) {
        self.failing.lock().unwrap().insert(pipe, Duration::ZERO);
    }

    /// Every send over `pipe` hangs for `after`, then fails (a provider
    /// that times out).
    pub fn fail_slowly(&self, pipe: Pipe, after: Duration) {
        self.failing.lock().unwrap().insert(pipe, after);
    }

    pub fn heal(&self) {
        self.failing.lock().unwrap().clear();
    }

    /// Sends attempted, failed or not.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }
}

impl FaultySender {
    /// Counts the attempt, then fails it when `pipe` is set to fail (after
    /// its delay) or passes it on with `deliver`.
    async fn attempt<F>(&self, pipe: Pipe, deliver: F) -> Result<(), SendError>
    where
        F: std::future::Future<Output = Result<(), SendError>>,
    {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let delay = self.failing.lock().unwrap().get(&pipe).copied();
        match delay {
            None => deliver.await,
            Some(d) => {
                if !d.is_zero() {
                    tokio::time::sleep(d).await;
                }
                Err(SendError {
                    pipe,
                    reason: "injected: provider unavailable".into(),
                })
            }
        }
    }
}

#[async_trait]
impl Sender for FaultySender {
    async fn send(&self, msg: &OtpMessage) -> Result<(), SendError> {
        self.attempt(msg.pipe, self.inner.send(msg)).await
    }

    async fn send_invite(&self, msg: &InviteMessage) -> Result<(), SendError> {
        self.attempt(msg.pipe, self.inner.send_invite(msg)).await
    }

    async fn send_notice(&self, msg: &NoticeMessage) -> Result<(), SendError> {
        self.attempt(msg.pipe, self.inner.send_notice(msg)).await
    }
}
