//! An in-memory [`Table`] with DynamoDB's semantics: conditional writes,
//! all-or-nothing transactions, `ADD` counters, sorted queries on the table
//! and the GSI. Like DynamoDB it never hides expired items by itself; the
//! [`crate::ports::table::Db`] layer does that for both tables.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use crate::model::table::{
    Cond, GSI1, GSI1PK, GSI1SK, Item, Key, PK, Page, Query, SK, TableError, TableResult, Update, Write,
};
use crate::ports::table::Table;

/// A table held in a `BTreeMap` behind a mutex (never held across an await).
#[derive(Default)]
pub struct MemoryTable {
    items: Mutex<Items>,
}

/// The items, and the GSI as the keys of the items under each `gsi1pk`, so
/// that a query reads one partition, never the whole table.
#[derive(Default)]
struct Items {
    map: BTreeMap<Key, Item>,
    gsi: BTreeMap<String, BTreeSet<Key>>,
}

impl Items {
    fn get(&self, key: &Key) -> Option<&Item> {
        self.map.get(key)
    }

    fn insert(&mut self, key: Key, item: Item) {
        self.unindex(&key);
        if let Some(g) = item.get(GSI1PK).and_then(Value::as_str) {
            self.gsi.entry(g.to_owned()).or_default().insert(key.clone());
        }
        self.map.insert(key, item);
    }

    fn remove(&mut self, key: &Key) {
        self.unindex(key);
        self.map.remove(key);
    }

    fn unindex(&mut self, key: &Key) {
        let Some(g) = self.map.get(key).and_then(|i| i.get(GSI1PK)).and_then(Value::as_str) else {
            return;
        };
        if let Some(set) = self.gsi.get_mut(g) {
            set.remove(key);
            if set.is_empty() {
                self.gsi.remove(g);
            }
        }
    }

    /// The items of one partition of the table or of the GSI.
    fn partition(&self, pk: &str, gsi: bool) -> Vec<&Item> {
        if gsi {
            self.gsi
                .get(pk)
                .map(|keys| keys.iter().filter_map(|k| self.map.get(k)).collect())
                .unwrap_or_default()
        } else {
            self.map
                .range(Key::new(pk, "")..)
                .take_while(|(k, _)| k.pk == pk)
                .map(|(_, i)| i)
                .collect()
        }
    }
}

impl MemoryTable {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> TableResult<std::sync::MutexGuard<'_, Items>> {
        self.items
            .lock()
            .map_err(|_| TableError::Internal("memory table lock poisoned".into()))
    }

    /// Number of stored items, expired ones included (for tests).
    pub fn len(&self) -> usize {
        self.items.lock().map(|m| m.map.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match compare(a, b) {
        Some(o) => o == Ordering::Equal,
        None => a == b,
    }
}

/// Evaluates a condition against the current item (`None` when missing).
pub(crate) fn eval(cond: &Cond, item: Option<&Item>) -> bool {
    let attr = |name: &str| item.and_then(|i| i.get(name));
    let ord = |name: &str, v: &Value, ok: fn(Ordering) -> bool| {
        attr(name).and_then(|a| compare(a, v)).map(ok).unwrap_or(false)
    };
    match cond {
        Cond::Exists => item.is_some(),
        Cond::NotExists => item.is_none(),
        Cond::AttrExists(a) => attr(a).is_some(),
        Cond::AttrNotExists(a) => attr(a).is_none(),
        Cond::Eq(a, v) => attr(a).is_some_and(|x| values_equal(x, v)),
        Cond::Ne(a, v) => !attr(a).is_some_and(|x| values_equal(x, v)),
        Cond::Lt(a, v) => ord(a, v, |o| o == Ordering::Less),
        Cond::Le(a, v) => ord(a, v, |o| o != Ordering::Greater),
        Cond::Gt(a, v) => ord(a, v, |o| o == Ordering::Greater),
        Cond::Ge(a, v) => ord(a, v, |o| o != Ordering::Less),
        Cond::And(cs) => cs.iter().all(|c| eval(c, item)),
        Cond::Or(cs) => cs.iter().any(|c| eval(c, item)),
        Cond::Not(c) => !eval(c, item),
    }
}

fn check_item(item: &Item) -> TableResult<Key> {
    Key::of(item).ok_or_else(|| TableError::Internal("item without string pk/sk".into()))
}

fn apply_update(key: &Key, current: Option<&Item>, ops: &[Update]) -> TableResult<Item> {
    let mut item = current.cloned().unwrap_or_else(|| {
        let mut i = Item::new();
        i.insert(PK.into(), Value::String(key.pk.clone()));
        i.insert(SK.into(), Value::String(key.sk.clone()));
        i
    });
    for op in ops {
        match op {
            Update::Set(a, _) | Update::Add(a, _) | Update::Remove(a) if a == PK || a == SK => {
                return Err(TableError::Internal("cannot update a key attribute".into()));
            }
            Update::Set(a, v) => {
                item.insert(a.clone(), v.clone());
            }
            Update::Add(a, n) => {
                let old = match item.get(a) {
                    None => 0,
                    Some(v) => v
                        .as_i64()
                        .ok_or_else(|| TableError::Internal(format!("ADD on non-number {a}")))?,
                };
                let sum = old
                    .checked_add(*n)
                    .ok_or_else(|| TableError::Internal(format!("ADD overflows {a}")))?;
                item.insert(a.clone(), Value::from(sum));
            }
            Update::Remove(a) => {
                item.remove(a);
            }
        }
    }
    Ok(item)
}

fn str_attr<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).and_then(Value::as_str).unwrap_or("")
}

/// The sort position of an item in a query: (sort key, pk, sk).
fn position(item: &Item, index: Option<&str>) -> (String, String, String) {
    let sort = if index == Some(GSI1) { GSI1SK } else { SK };
    (
        str_attr(item, sort).to_owned(),
        str_attr(item, PK).to_owned(),
        str_attr(item, SK).to_owned(),
    )
}

#[async_trait]
impl Table for MemoryTable {
    async fn get(&self, key: &Key) -> TableResult<Option<Item>> {
        Ok(self.lock()?.get(key).cloned())
    }

    async fn batch_get(&self, keys: &[Key]) -> TableResult<Vec<Option<Item>>> {
        if keys.len() > 100 {
            return Err(TableError::Internal("batch_get of more than 100 keys".into()));
        }
        let map = self.lock()?;
        Ok(keys.iter().map(|k| map.get(k).cloned()).collect())
    }

    async fn put(&self, item: Item, cond: Option<Cond>) -> TableResult<()> {
        let key = check_item(&item)?;
        let mut map = self.lock()?;
        if let Some(c) = &cond
            && !eval(c, map.get(&key))
        {
            return Err(TableError::ConditionFailed);
        }
        map.insert(key, item);
        Ok(())
    }

    async fn update(&self, key: &Key, ops: Vec<Update>, cond: Option<Cond>) -> TableResult<Item> {
        let mut map = self.lock()?;
        let current = map.get(key);
        if let Some(c) = &cond
            && !eval(c, current)
        {
            return Err(TableError::ConditionFailed);
        }
        let item = apply_update(key, current, &ops)?;
        map.insert(key.clone(), item.clone());
        Ok(item)
    }

    async fn delete(&self, key: &Key, cond: Option<Cond>) -> TableResult<()> {
        let mut map = self.lock()?;
        if let Some(c) = &cond
            && !eval(c, map.get(key))
        {
            return Err(TableError::ConditionFailed);
        }
        map.remove(key);
        Ok(())
    }

    async fn transact(&self, writes: Vec<Write>) -> TableResult<()> {
        if writes.is_empty() || writes.len() > 100 {
            return Err(TableError::Internal("transaction of 0 or more than 100 writes".into()));
        }
        let mut keys = Vec::with_capacity(writes.len());
        for w in &writes {
            let k = w
                .key()
                .ok_or_else(|| TableError::Internal("item without string pk/sk".into()))?;
            if keys.contains(&k) {
                return Err(TableError::Internal("two writes on one item in a transaction".into()));
            }
            keys.push(k);
        }
        let mut map = self.lock()?;
        let failed: Vec<bool> = writes
            .iter()
            .zip(&keys)
            .map(|(w, k)| {
                let current = map.get(k);
                match w {
                    Write::Put { cond, .. } | Write::Update { cond, .. } | Write::Delete { cond, .. } => {
                        cond.as_ref().is_some_and(|c| !eval(c, current))
                    }
                    Write::Check { cond, .. } => !eval(cond, current),
                }
            })
            .collect();
        if failed.iter().any(|f| *f) {
            return Err(TableError::TransactionCanceled(failed));
        }
        // Compute every new state first so a bad update leaves nothing half-applied.
        let mut changes: Vec<(Key, Option<Item>)> = Vec::with_capacity(writes.len());
        for (w, k) in writes.into_iter().zip(keys) {
            match w {
                Write::Put { item, .. } => changes.push((k, Some(item))),
                Write::Update { ops, .. } => {
                    let item = apply_update(&k, map.get(&k), &ops)?;
                    changes.push((k, Some(item)));
                }
                Write::Delete { .. } => changes.push((k, None)),
                Write::Check { .. } => {}
            }
        }
        for (k, v) in changes {
            match v {
                Some(item) => {
                    map.insert(k, item);
                }
                None => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }

    async fn query(&self, q: Query) -> TableResult<Page> {
        let map = self.lock()?;
        let (pk_attr, sk_attr) = if q.index == Some(GSI1) {
            (GSI1PK, GSI1SK)
        } else {
            (PK, SK)
        };
        // `partition` holds exactly the items whose partition key is q.pk.
        let mut items: Vec<&Item> = map
            .partition(&q.pk, q.index == Some(GSI1))
            .into_iter()
            .filter(|i| {
                let sk = i.get(sk_attr).and_then(Value::as_str);
                match &q.sk_prefix {
                    None => sk.is_some(),
                    Some(p) => sk.is_some_and(|s| s.starts_with(p.as_str())),
                }
            })
            .collect();
        items.sort_by_key(|i| position(i, q.index));
        if !q.forward {
            items.reverse();
        }
        if let Some(start) = &q.start {
            let from = position(start, q.index);
            items.retain(|i| {
                let p = position(i, q.index);
                if q.forward { p > from } else { p < from }
            });
        }
        let limit = q.limit.max(1) as usize;
        let more = items.len() >= limit;
        items.truncate(limit);
        let next = if more {
            items.last().map(|last| {
                let mut k = Item::new();
                for a in [PK, SK, pk_attr, sk_attr] {
                    if let Some(v) = last.get(a) {
                        k.insert(a.into(), v.clone());
                    }
                }
                k
            })
        } else {
            None
        };
        Ok(Page {
            items: items.into_iter().cloned().collect(),
            next,
        })
    }
}
