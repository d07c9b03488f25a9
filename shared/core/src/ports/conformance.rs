//! The store conformance suite: what every [`Table`] must do, so the domain
//! code behaves the same on [`crate::ports::memory::MemoryTable`] and on DynamoDB.
//!
//! Each case is a `pub async fn` that takes a fresh, empty table and panics
//! when the table misbehaves. [`conformance_tests!`](crate::conformance_tests)
//! turns them into one `#[tokio::test]` each:
//!
//! ```ignore
//! mod conformance {
//!     // Any expression that evaluates to a future whose output is a
//!     // concrete `Table + 'static`; it is evaluated once per test.
//!     nambari_core::conformance_tests!(async { MyTable::connect().await });
//! }
//! ```
//!
//! The calling crate needs `tokio` (features `macros`, `rt-multi-thread`).
//! Timestamps here are plain numbers: a table never looks at the clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::model::table::{Cond, GSI1, Item, Key, Page, Query, TableError, Update, Write};
use crate::ports::table::Table;

/// Expands to one `#[tokio::test]` per conformance case, each on a fresh
/// table made by `$make` (an expression evaluating to a future whose output
/// implements [`Table`](crate::ports::table::Table) + `'static`).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            get_returns_none_for_a_missing_item,
            get_returns_the_item_as_it_was_put,
            put_replaces_the_whole_item,
            put_if_absent_fails_when_the_item_exists,
            put_if_exists_fails_when_the_item_is_missing,
            absent_at_allows_replacing_an_expired_item_but_not_a_live_one,
            live_at_holds_only_for_an_existing_unexpired_item,
            number_comparisons_use_numeric_order,
            string_comparisons_use_byte_order,
            comparisons_on_a_missing_attribute_are_false_except_ne,
            conditions_on_a_missing_item_see_no_attributes,
            values_of_different_types_are_never_equal,
            and_or_not_combine_conditions,
            update_creates_a_missing_item,
            update_returns_the_whole_item_after_the_update,
            update_add_starts_a_missing_attribute_at_zero,
            update_with_a_failing_condition_changes_nothing,
            update_remove_deletes_attributes,
            update_without_actions_creates_the_bare_item,
            update_of_a_key_attribute_is_an_error,
            delete_removes_the_item_and_ignores_a_missing_one,
            delete_with_a_condition_only_deletes_when_it_holds,
            batch_get_returns_items_in_key_order_with_none_for_missing,
            batch_get_reads_a_hundred_keys,
            transaction_applies_every_write,
            transaction_is_all_or_nothing_and_flags_the_failed_write,
            transaction_check_write_can_cancel_it_without_writing,
            transaction_with_two_writes_on_one_item_is_an_error,
            query_returns_one_partition_in_sort_key_order,
            query_with_sk_prefix_returns_only_matching_items,
            query_pages_through_every_item_without_duplicates_or_gaps,
            query_on_gsi1_uses_the_index_keys,
            the_gsi_follows_updates_replacements_and_deletes,
        );

        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_conditional_puts_of_one_key_let_exactly_one_win() {
            let table: ::std::sync::Arc<dyn $crate::ports::table::Table> = ::std::sync::Arc::new($make.await);
            $crate::ports::conformance::concurrent_conditional_puts_of_one_key_let_exactly_one_win(table).await;
        }
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let table = $make.await;
                $crate::ports::conformance::$case(&table).await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------
// Helpers

/// An item from a JSON object literal.
pub fn item(v: Value) -> Item {
    match v {
        Value::Object(m) => m,
        other => panic!("not a JSON object: {other}"),
    }
}

fn key(pk: &str, sk: &str) -> Key {
    Key::new(pk, sk)
}

fn is_condition_failed<T: std::fmt::Debug>(r: &Result<T, TableError>) -> bool {
    matches!(r, Err(TableError::ConditionFailed))
}

/// Whether `cond` holds on the stored item `it` (re-put unchanged under it).
async fn holds(t: &dyn Table, it: &Item, cond: Cond) -> bool {
    match t.put(it.clone(), Some(cond.clone())).await {
        Ok(()) => true,
        Err(TableError::ConditionFailed) => false,
        Err(e) => panic!("put under {cond:?} failed: {e:?}"),
    }
}

/// Whether `cond` holds on the item at `k` (a transaction's Check write).
async fn check(t: &dyn Table, k: &Key, cond: Cond) -> bool {
    match t
        .transact(vec![Write::Check {
            key: k.clone(),
            cond: cond.clone(),
        }])
        .await
    {
        Ok(()) => true,
        Err(TableError::TransactionCanceled(flags)) => {
            assert_eq!(flags, vec![true], "flags of a failed check under {cond:?}");
            false
        }
        Err(e) => panic!("check of {cond:?} failed: {e:?}"),
    }
}

async fn get(t: &dyn Table, k: &Key) -> Option<Item> {
    t.get(k).await.unwrap()
}

fn sort_keys(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| i["sk"].as_str().unwrap().to_owned()).collect()
}

fn query(pk: &str) -> Query {
    Query {
        index: None,
        pk: pk.into(),
        sk_prefix: None,
        forward: true,
        limit: 100,
        start: None,
    }
}

/// Every item of a query, page by page, checking each page's size.
async fn query_all(t: &dyn Table, mut q: Query) -> Vec<Item> {
    let mut all = Vec::new();
    for _ in 0..100 {
        let Page { items, next } = t.query(q.clone()).await.unwrap();
        assert!(items.len() <= q.limit as usize, "page larger than the limit");
        all.extend(items);
        match next {
            Some(start) => q.start = Some(start),
            None => return all,
        }
    }
    panic!("query did not finish in 100 pages");
}

// ---------------------------------------------------------------------------
// Reads and puts

pub async fn get_returns_none_for_a_missing_item(t: &dyn Table) {
    assert_eq!(get(t, &key("user#1", "profile")).await, None);
    t.put(item(json!({"pk": "user#1", "sk": "other"})), None).await.unwrap();
    assert_eq!(get(t, &key("user#1", "profile")).await, None);
    assert_eq!(get(t, &key("user#2", "other")).await, None);
}

pub async fn get_returns_the_item_as_it_was_put(t: &dyn Table) {
    let it = item(json!({
        "pk": "user#1", "sk": "profile",
        "zero": 0, "count": 3, "neg": -17, "max": i64::MAX, "min": i64::MIN,
        "expires_at": 1_750_000_000, "ratio": 0.25,
        "name": "Ada", "empty": "", "unicode": "Nambari ✓ ñ",
        "yes": true, "no": false, "nothing": null,
        "list": [1, "two", [3], {"four": 4}], "map": {"a": {"b": [true, null]}, "n": -1},
    }));
    t.put(it.clone(), None).await.unwrap();
    let got = get(t, &key("user#1", "profile")).await.expect("item was put");
    assert_eq!(got, it);
    for k in ["zero", "count", "neg", "max", "min", "expires_at"] {
        assert!(got[k].is_i64(), "{k} must come back as an integer, got {:?}", got[k]);
    }
    assert!(got["map"]["n"].is_i64());
    assert_eq!(got["max"].as_i64(), Some(i64::MAX));
}

pub async fn put_replaces_the_whole_item(t: &dyn Table) {
    let k = key("user#1", "profile");
    t.put(item(json!({"pk": "user#1", "sk": "profile", "a": 1, "b": 2})), None)
        .await
        .unwrap();
    t.put(item(json!({"pk": "user#1", "sk": "profile", "a": 3})), None)
        .await
        .unwrap();
    assert_eq!(
        get(t, &k).await,
        Some(item(json!({"pk": "user#1", "sk": "profile", "a": 3})))
    );
}

pub async fn put_if_absent_fails_when_the_item_exists(t: &dyn Table) {
    let first = item(json!({"pk": "code#1", "sk": "code", "v": "first"}));
    let second = item(json!({"pk": "code#1", "sk": "code", "v": "second"}));
    t.put(first.clone(), Some(Cond::NotExists)).await.unwrap();
    let r = t.put(second, Some(Cond::NotExists)).await;
    assert!(is_condition_failed(&r), "second put-if-absent: {r:?}");
    assert_eq!(get(t, &key("code#1", "code")).await, Some(first));
}

pub async fn put_if_exists_fails_when_the_item_is_missing(t: &dyn Table) {
    let it = item(json!({"pk": "code#1", "sk": "code"}));
    let r = t.put(it.clone(), Some(Cond::Exists)).await;
    assert!(is_condition_failed(&r), "put-if-exists on a missing item: {r:?}");
    assert_eq!(get(t, &key("code#1", "code")).await, None);
    t.put(it.clone(), None).await.unwrap();
    t.put(it, Some(Cond::Exists)).await.unwrap();
}

pub async fn absent_at_allows_replacing_an_expired_item_but_not_a_live_one(t: &dyn Table) {
    let now = 1_000_000;
    let at = |v: &str, exp: i64| item(json!({"pk": "otp#1", "sk": "otp", "v": v, "expires_at": exp}));
    // Missing: allowed.
    t.put(at("a", now + 10), Some(Cond::absent_at(now))).await.unwrap();
    // Live (expires later): refused, unchanged.
    let r = t.put(at("b", now + 10), Some(Cond::absent_at(now))).await;
    assert!(is_condition_failed(&r), "replacing a live item: {r:?}");
    assert_eq!(get(t, &key("otp#1", "otp")).await.unwrap()["v"], "a");
    // Expired: allowed, also exactly at the expiry second.
    t.put(at("c", now), Some(Cond::absent_at(now + 10))).await.unwrap();
    assert_eq!(get(t, &key("otp#1", "otp")).await.unwrap()["v"], "c");
    t.put(at("d", now + 100), Some(Cond::absent_at(now))).await.unwrap();
    assert_eq!(get(t, &key("otp#1", "otp")).await.unwrap()["v"], "d");
    // An item without expires_at never expires.
    t.put(item(json!({"pk": "user#1", "sk": "profile"})), None)
        .await
        .unwrap();
    let r = t
        .put(
            item(json!({"pk": "user#1", "sk": "profile", "v": 2})),
            Some(Cond::absent_at(now)),
        )
        .await;
    assert!(is_condition_failed(&r), "replacing an item that never expires: {r:?}");
}

pub async fn live_at_holds_only_for_an_existing_unexpired_item(t: &dyn Table) {
    let now = 1_000_000;
    let k = key("session#1", "session");
    assert!(!check(t, &k, Cond::live_at(now)).await, "missing item is not live");
    let s = item(json!({"pk": "session#1", "sk": "session", "expires_at": now + 1}));
    t.put(s.clone(), None).await.unwrap();
    assert!(check(t, &k, Cond::live_at(now)).await);
    assert!(
        !check(t, &k, Cond::live_at(now + 1)).await,
        "expired at its expiry second"
    );
    assert!(!check(t, &k, Cond::live_at(now + 2)).await);
    t.put(item(json!({"pk": "session#1", "sk": "session"})), None)
        .await
        .unwrap();
    assert!(check(t, &k, Cond::live_at(now)).await, "no expires_at: always live");
}

// ---------------------------------------------------------------------------
// Conditions

pub async fn number_comparisons_use_numeric_order(t: &dyn Table) {
    let it = item(json!({"pk": "n", "sk": "n", "n": 10, "neg": -5, "f": 2.5}));
    t.put(it.clone(), None).await.unwrap();
    // 10 vs 9 and 10 vs 100 catch string-wise comparison of numbers.
    let cases: Vec<(Cond, bool)> = vec![
        (Cond::eq("n", 10), true),
        (Cond::eq("n", 9), false),
        (Cond::ne("n", 10), false),
        (Cond::ne("n", 9), true),
        (Cond::lt("n", 9), false),
        (Cond::lt("n", 10), false),
        (Cond::lt("n", 11), true),
        (Cond::lt("n", 100), true),
        (Cond::le("n", 9), false),
        (Cond::le("n", 10), true),
        (Cond::le("n", 11), true),
        (Cond::gt("n", 9), true),
        (Cond::gt("n", 10), false),
        (Cond::gt("n", 100), false),
        (Cond::ge("n", 9), true),
        (Cond::ge("n", 10), true),
        (Cond::ge("n", 11), false),
        (Cond::lt("neg", 0), true),
        (Cond::gt("neg", -6), true),
        (Cond::lt("neg", -6), false),
        (Cond::gt("f", 2), true),
        (Cond::lt("f", 3), true),
        (Cond::eq("f", 2.5), true),
        (Cond::eq("n", 10.0), true),
    ];
    for (cond, expected) in cases {
        assert_eq!(holds(t, &it, cond.clone()).await, expected, "{cond:?}");
    }
}

pub async fn string_comparisons_use_byte_order(t: &dyn Table) {
    let it = item(json!({"pk": "s", "sk": "s", "s": "banana", "upper": "B"}));
    t.put(it.clone(), None).await.unwrap();
    let cases: Vec<(Cond, bool)> = vec![
        (Cond::eq("s", "banana"), true),
        (Cond::eq("s", "Banana"), false),
        (Cond::ne("s", "apple"), true),
        (Cond::ne("s", "banana"), false),
        (Cond::gt("s", "apple"), true),
        (Cond::lt("s", "cherry"), true),
        (Cond::lt("s", "banana"), false),
        (Cond::le("s", "banana"), true),
        (Cond::ge("s", "banana"), true),
        (Cond::gt("s", "banan"), true),
        (Cond::lt("s", "bananas"), true),
        (Cond::lt("upper", "a"), true),
        (Cond::gt("upper", "a"), false),
    ];
    for (cond, expected) in cases {
        assert_eq!(holds(t, &it, cond.clone()).await, expected, "{cond:?}");
    }
}

pub async fn comparisons_on_a_missing_attribute_are_false_except_ne(t: &dyn Table) {
    let it = item(json!({"pk": "m", "sk": "m", "other": 1}));
    t.put(it.clone(), None).await.unwrap();
    let cases: Vec<(Cond, bool)> = vec![
        (Cond::eq("n", 1), false),
        (Cond::ne("n", 1), true),
        (Cond::ne("n", "x"), true),
        (Cond::lt("n", 1), false),
        (Cond::le("n", 1), false),
        (Cond::gt("n", 1), false),
        (Cond::ge("n", 1), false),
        (Cond::lt("n", "x"), false),
        (Cond::gt("n", "x"), false),
        (Cond::AttrExists("n".into()), false),
        (Cond::AttrNotExists("n".into()), true),
        (Cond::AttrExists("other".into()), true),
        (Cond::AttrNotExists("other".into()), false),
        (Cond::Not(Box::new(Cond::lt("n", 1))), true),
    ];
    for (cond, expected) in cases {
        assert_eq!(holds(t, &it, cond.clone()).await, expected, "{cond:?}");
    }
}

pub async fn conditions_on_a_missing_item_see_no_attributes(t: &dyn Table) {
    let k = key("nobody", "here");
    let cases: Vec<(Cond, bool)> = vec![
        (Cond::Exists, false),
        (Cond::NotExists, true),
        (Cond::AttrExists("n".into()), false),
        (Cond::AttrNotExists("n".into()), true),
        (Cond::eq("n", 1), false),
        (Cond::ne("n", 1), true),
        (Cond::lt("n", 1), false),
        (Cond::ge("n", 1), false),
    ];
    for (cond, expected) in cases {
        assert_eq!(check(t, &k, cond.clone()).await, expected, "{cond:?}");
    }
    assert_eq!(get(t, &k).await, None, "a check never creates the item");
}

pub async fn values_of_different_types_are_never_equal(t: &dyn Table) {
    let it = item(json!({"pk": "t", "sk": "t", "n": 1, "s": "1", "b": true}));
    t.put(it.clone(), None).await.unwrap();
    let cases: Vec<(Cond, bool)> = vec![
        (Cond::eq("n", "1"), false),
        (Cond::ne("n", "1"), true),
        (Cond::eq("s", 1), false),
        (Cond::ne("s", 1), true),
        (Cond::eq("b", true), true),
        (Cond::eq("b", false), false),
        (Cond::ne("b", false), true),
        (Cond::ne("b", "true"), true),
    ];
    for (cond, expected) in cases {
        assert_eq!(holds(t, &it, cond.clone()).await, expected, "{cond:?}");
    }
}

pub async fn and_or_not_combine_conditions(t: &dyn Table) {
    let it = item(json!({"pk": "c", "sk": "c", "n": 5, "s": "x"}));
    t.put(it.clone(), None).await.unwrap();
    let yes = || Cond::eq("n", 5);
    let no = || Cond::eq("n", 6);
    let not = |c: Cond| Cond::Not(Box::new(c));
    let cases: Vec<(Cond, bool)> = vec![
        (yes().and(yes()), true),
        (yes().and(no()), false),
        (no().and(yes()), false),
        (yes().or(no()), true),
        (no().or(yes()), true),
        (no().or(no()), false),
        (not(yes()), false),
        (not(no()), true),
        (Cond::And(vec![yes(), Cond::eq("s", "x"), Cond::Exists]), true),
        (Cond::And(vec![yes(), Cond::eq("s", "x"), Cond::NotExists]), false),
        (Cond::Or(vec![no(), no(), Cond::eq("s", "x")]), true),
        (not(no().or(yes())), false),
        (not(no()).and(not(Cond::eq("s", "y"))), true),
        (yes().and(no().or(Cond::gt("n", 4))), true),
        (Cond::And(vec![]), true),
        (Cond::Or(vec![]), false),
    ];
    for (cond, expected) in cases {
        assert_eq!(holds(t, &it, cond.clone()).await, expected, "{cond:?}");
    }
}

// ---------------------------------------------------------------------------
// Updates

pub async fn update_creates_a_missing_item(t: &dyn Table) {
    let k = key("user#1", "profile");
    let got = t
        .update(&k, vec![Update::set("name", "Ada"), Update::set("age", 36)], None)
        .await
        .unwrap();
    let expected = item(json!({"pk": "user#1", "sk": "profile", "name": "Ada", "age": 36}));
    assert_eq!(got, expected);
    assert_eq!(get(t, &k).await, Some(expected));
}

pub async fn update_returns_the_whole_item_after_the_update(t: &dyn Table) {
    let k = key("user#1", "profile");
    t.put(
        item(json!({"pk": "user#1", "sk": "profile", "a": 1, "b": "keep", "c": [1]})),
        None,
    )
    .await
    .unwrap();
    let got = t
        .update(
            &k,
            vec![
                Update::set("a", 2),
                Update::add("n", 3),
                Update::remove("c"),
                Update::set("d", json!({"x": 1})),
            ],
            Some(Cond::Exists),
        )
        .await
        .unwrap();
    let expected = item(json!({"pk": "user#1", "sk": "profile", "a": 2, "b": "keep", "n": 3, "d": {"x": 1}}));
    assert_eq!(got, expected);
    assert_eq!(get(t, &k).await, Some(expected));
}

pub async fn update_add_starts_a_missing_attribute_at_zero(t: &dyn Table) {
    let k = key("rate#1", "window");
    let got = t.update(&k, vec![Update::add("count", 5)], None).await.unwrap();
    assert_eq!(got["count"], json!(5));
    assert!(
        got["count"].is_i64(),
        "ADD result must be an integer: {:?}",
        got["count"]
    );
    let got = t.update(&k, vec![Update::add("count", -2)], None).await.unwrap();
    assert_eq!(got["count"], json!(3));
    let got = t.update(&k, vec![Update::add("count", 1)], None).await.unwrap();
    assert_eq!(got["count"], json!(4));
    assert_eq!(get(t, &k).await.unwrap()["count"], json!(4));
    // A counter guarded by a condition on itself (a rate limit).
    let r = t
        .update(&k, vec![Update::add("count", 1)], Some(Cond::lt("count", 4)))
        .await;
    assert!(is_condition_failed(&r), "{r:?}");
    let got = t
        .update(&k, vec![Update::add("count", 1)], Some(Cond::lt("count", 5)))
        .await
        .unwrap();
    assert_eq!(got["count"], json!(5));
    // A new counter under a condition that also holds on a missing item.
    let k2 = key("rate#2", "window");
    let got = t
        .update(
            &k2,
            vec![Update::add("count", 1), Update::set("expires_at", 100)],
            Some(Cond::NotExists.or(Cond::lt("count", 3))),
        )
        .await
        .unwrap();
    assert_eq!(
        got,
        item(json!({"pk": "rate#2", "sk": "window", "count": 1, "expires_at": 100}))
    );
}

pub async fn update_with_a_failing_condition_changes_nothing(t: &dyn Table) {
    let k = key("user#1", "profile");
    let before = item(json!({"pk": "user#1", "sk": "profile", "v": 1, "n": 10}));
    t.put(before.clone(), None).await.unwrap();
    let r = t
        .update(
            &k,
            vec![Update::set("v", 2), Update::add("n", 1), Update::remove("v2")],
            Some(Cond::eq("v", 0)),
        )
        .await;
    assert!(is_condition_failed(&r), "{r:?}");
    assert_eq!(get(t, &k).await, Some(before));
    // On a missing item, a failing condition does not create it.
    let missing = key("user#2", "profile");
    let r = t.update(&missing, vec![Update::set("v", 1)], Some(Cond::Exists)).await;
    assert!(is_condition_failed(&r), "{r:?}");
    assert_eq!(get(t, &missing).await, None);
}

pub async fn update_remove_deletes_attributes(t: &dyn Table) {
    let k = key("user#1", "profile");
    t.put(item(json!({"pk": "user#1", "sk": "profile", "a": 1, "b": 2})), None)
        .await
        .unwrap();
    let got = t
        .update(&k, vec![Update::remove("a"), Update::remove("never_there")], None)
        .await
        .unwrap();
    assert_eq!(got, item(json!({"pk": "user#1", "sk": "profile", "b": 2})));
    assert_eq!(get(t, &k).await, Some(got));
}

pub async fn update_without_actions_creates_the_bare_item(t: &dyn Table) {
    let k = key("user#1", "profile");
    let got = t.update(&k, vec![], None).await.unwrap();
    assert_eq!(got, item(json!({"pk": "user#1", "sk": "profile"})));
    assert_eq!(get(t, &k).await, Some(got));
    t.put(item(json!({"pk": "user#1", "sk": "profile", "a": 1})), None)
        .await
        .unwrap();
    let got = t.update(&k, vec![], Some(Cond::Exists)).await.unwrap();
    assert_eq!(got, item(json!({"pk": "user#1", "sk": "profile", "a": 1})));
}

pub async fn update_of_a_key_attribute_is_an_error(t: &dyn Table) {
    let k = key("user#1", "profile");
    t.put(item(json!({"pk": "user#1", "sk": "profile"})), None)
        .await
        .unwrap();
    for op in [
        Update::set("pk", "user#2"),
        Update::set("sk", "x"),
        Update::remove("sk"),
    ] {
        let r = t.update(&k, vec![op.clone()], None).await;
        assert!(matches!(r, Err(TableError::Internal(_))), "{op:?}: {r:?}");
    }
    assert_eq!(get(t, &k).await, Some(item(json!({"pk": "user#1", "sk": "profile"}))));
}

// ---------------------------------------------------------------------------
// Deletes

pub async fn delete_removes_the_item_and_ignores_a_missing_one(t: &dyn Table) {
    let k = key("user#1", "profile");
    t.put(item(json!({"pk": "user#1", "sk": "profile"})), None)
        .await
        .unwrap();
    t.put(item(json!({"pk": "user#1", "sk": "other"})), None).await.unwrap();
    t.delete(&k, None).await.unwrap();
    assert_eq!(get(t, &k).await, None);
    assert!(get(t, &key("user#1", "other")).await.is_some());
    t.delete(&k, None).await.unwrap();
}

pub async fn delete_with_a_condition_only_deletes_when_it_holds(t: &dyn Table) {
    let k = key("code#1", "code");
    let it = item(json!({"pk": "code#1", "sk": "code", "hash": "abc"}));
    t.put(it.clone(), None).await.unwrap();
    let r = t.delete(&k, Some(Cond::eq("hash", "xyz"))).await;
    assert!(is_condition_failed(&r), "{r:?}");
    assert_eq!(get(t, &k).await, Some(it));
    t.delete(&k, Some(Cond::eq("hash", "abc"))).await.unwrap();
    assert_eq!(get(t, &k).await, None);
    let r = t.delete(&k, Some(Cond::Exists)).await;
    assert!(is_condition_failed(&r), "delete-if-exists of a missing item: {r:?}");
}

// ---------------------------------------------------------------------------
// Batch reads

pub async fn batch_get_returns_items_in_key_order_with_none_for_missing(t: &dyn Table) {
    for i in [1, 3, 4] {
        t.put(item(json!({"pk": format!("user#{i}"), "sk": "profile", "i": i})), None)
            .await
            .unwrap();
    }
    assert_eq!(t.batch_get(&[]).await.unwrap(), Vec::<Option<Item>>::new());
    let keys: Vec<Key> = [4, 2, 1, 3, 5, 4]
        .iter()
        .map(|i| key(&format!("user#{i}"), "profile"))
        .collect();
    let got = t.batch_get(&keys).await.unwrap();
    let ids: Vec<Option<i64>> = got
        .iter()
        .map(|o| o.as_ref().map(|i| i["i"].as_i64().unwrap()))
        .collect();
    assert_eq!(ids, vec![Some(4), None, Some(1), Some(3), None, Some(4)]);
    assert_eq!(
        got[0].as_ref().unwrap(),
        &item(json!({"pk": "user#4", "sk": "profile", "i": 4}))
    );
}

pub async fn batch_get_reads_a_hundred_keys(t: &dyn Table) {
    for i in (0..100).step_by(2) {
        t.put(item(json!({"pk": format!("k#{i:03}"), "sk": "x", "i": i})), None)
            .await
            .unwrap();
    }
    let keys: Vec<Key> = (0..100).rev().map(|i| key(&format!("k#{i:03}"), "x")).collect();
    let got = t.batch_get(&keys).await.unwrap();
    assert_eq!(got.len(), 100);
    for (k, o) in keys.iter().zip(&got) {
        let i: i64 = k.pk[2..].parse().unwrap();
        match o {
            Some(it) => assert_eq!(it["i"].as_i64(), Some(i)),
            None => assert_eq!(i % 2, 1, "{k:?} missing"),
        }
    }
    assert_eq!(got.iter().filter(|o| o.is_some()).count(), 50);
}

// ---------------------------------------------------------------------------
// Transactions

pub async fn transaction_applies_every_write(t: &dyn Table) {
    t.put(item(json!({"pk": "old", "sk": "x"})), None).await.unwrap();
    t.put(item(json!({"pk": "guard", "sk": "x", "state": "open"})), None)
        .await
        .unwrap();
    t.put(item(json!({"pk": "counter", "sk": "x", "n": 1})), None)
        .await
        .unwrap();
    t.transact(vec![
        Write::Put {
            item: item(json!({"pk": "new", "sk": "x", "v": 1})),
            cond: Some(Cond::NotExists),
        },
        Write::Update {
            key: key("counter", "x"),
            ops: vec![Update::add("n", 1), Update::set("s", "y")],
            cond: Some(Cond::eq("n", 1)),
        },
        Write::Update {
            key: key("created", "x"),
            ops: vec![Update::add("n", 7)],
            cond: None,
        },
        Write::Delete {
            key: key("old", "x"),
            cond: Some(Cond::Exists),
        },
        Write::Check {
            key: key("guard", "x"),
            cond: Cond::eq("state", "open"),
        },
    ])
    .await
    .unwrap();
    assert_eq!(
        get(t, &key("new", "x")).await,
        Some(item(json!({"pk": "new", "sk": "x", "v": 1})))
    );
    assert_eq!(
        get(t, &key("counter", "x")).await,
        Some(item(json!({"pk": "counter", "sk": "x", "n": 2, "s": "y"})))
    );
    assert_eq!(
        get(t, &key("created", "x")).await,
        Some(item(json!({"pk": "created", "sk": "x", "n": 7})))
    );
    assert_eq!(get(t, &key("old", "x")).await, None);
    assert_eq!(
        get(t, &key("guard", "x")).await,
        Some(item(json!({"pk": "guard", "sk": "x", "state": "open"})))
    );
}

pub async fn transaction_is_all_or_nothing_and_flags_the_failed_write(t: &dyn Table) {
    let counter = item(json!({"pk": "counter", "sk": "x", "n": 1}));
    let old = item(json!({"pk": "old", "sk": "x"}));
    t.put(counter.clone(), None).await.unwrap();
    t.put(old.clone(), None).await.unwrap();
    let r = t
        .transact(vec![
            Write::Put {
                item: item(json!({"pk": "new", "sk": "x"})),
                cond: Some(Cond::NotExists),
            },
            Write::Update {
                key: key("counter", "x"),
                ops: vec![Update::add("n", 1)],
                cond: Some(Cond::eq("n", 5)),
            },
            Write::Delete {
                key: key("old", "x"),
                cond: None,
            },
        ])
        .await;
    match &r {
        Err(TableError::TransactionCanceled(flags)) => assert_eq!(flags, &vec![false, true, false]),
        other => panic!("expected TransactionCanceled([false, true, false]), got {other:?}"),
    }
    assert_eq!(get(t, &key("new", "x")).await, None);
    assert_eq!(get(t, &key("counter", "x")).await, Some(counter));
    assert_eq!(get(t, &key("old", "x")).await, Some(old));
}

pub async fn transaction_check_write_can_cancel_it_without_writing(t: &dyn Table) {
    let write = || Write::Put {
        item: item(json!({"pk": "session#1", "sk": "session"})),
        cond: None,
    };
    let guard = || Write::Check {
        key: key("user#1", "profile"),
        cond: Cond::Exists.and(Cond::ne("status", "blocked")),
    };
    let r = t.transact(vec![write(), guard()]).await;
    assert!(
        matches!(&r, Err(TableError::TransactionCanceled(f)) if f == &vec![false, true]),
        "{r:?}"
    );
    assert_eq!(get(t, &key("session#1", "session")).await, None);
    assert_eq!(get(t, &key("user#1", "profile")).await, None, "a check never writes");

    let user = item(json!({"pk": "user#1", "sk": "profile", "status": "blocked"}));
    t.put(user.clone(), None).await.unwrap();
    let r = t.transact(vec![guard(), write()]).await;
    assert!(
        matches!(&r, Err(TableError::TransactionCanceled(f)) if f == &vec![true, false]),
        "{r:?}"
    );
    assert_eq!(get(t, &key("session#1", "session")).await, None);

    t.put(item(json!({"pk": "user#1", "sk": "profile", "status": "ok"})), None)
        .await
        .unwrap();
    t.transact(vec![guard(), write()]).await.unwrap();
    assert!(get(t, &key("session#1", "session")).await.is_some());
    assert_eq!(
        get(t, &key("user#1", "profile")).await,
        Some(item(json!({"pk": "user#1", "sk": "profile", "status": "ok"})))
    );
}

pub async fn transaction_with_two_writes_on_one_item_is_an_error(t: &dyn Table) {
    let r = t
        .transact(vec![
            Write::Put {
                item: item(json!({"pk": "a", "sk": "x"})),
                cond: None,
            },
            Write::Update {
                key: key("a", "x"),
                ops: vec![Update::set("v", 1)],
                cond: None,
            },
        ])
        .await;
    assert!(matches!(r, Err(TableError::Internal(_))), "{r:?}");
    assert_eq!(get(t, &key("a", "x")).await, None);
    let r = t.transact(vec![]).await;
    assert!(matches!(r, Err(TableError::Internal(_))), "empty transaction: {r:?}");
}

// ---------------------------------------------------------------------------
// Queries

async fn put_partition(t: &dyn Table, pk: &str, sks: &[&str]) {
    for sk in sks {
        t.put(item(json!({"pk": pk, "sk": sk, "v": format!("{pk}/{sk}")})), None)
            .await
            .unwrap();
    }
}

pub async fn query_returns_one_partition_in_sort_key_order(t: &dyn Table) {
    put_partition(t, "user#1", &["session#b", "profile", "session#a", "code#1", "Z"]).await;
    put_partition(t, "user#10", &["profile", "session#c"]).await;
    put_partition(t, "user#", &["profile"]).await;

    let page = t.query(query("user#1")).await.unwrap();
    assert_eq!(
        sort_keys(&page.items),
        ["Z", "code#1", "profile", "session#a", "session#b"]
    );
    assert_eq!(
        page.items[2],
        item(json!({"pk": "user#1", "sk": "profile", "v": "user#1/profile"}))
    );
    assert_eq!(page.next, None);

    let page = t
        .query(Query {
            forward: false,
            ..query("user#1")
        })
        .await
        .unwrap();
    assert_eq!(
        sort_keys(&page.items),
        ["session#b", "session#a", "profile", "code#1", "Z"]
    );

    let page = t.query(query("user#2")).await.unwrap();
    assert_eq!(page, Page::default());
}

pub async fn query_with_sk_prefix_returns_only_matching_items(t: &dyn Table) {
    put_partition(
        t,
        "user#1",
        &["session#b", "profile", "session#a", "session", "sessions#x", "code#1"],
    )
    .await;
    put_partition(t, "user#2", &["session#c"]).await;
    let q = |prefix: &str, forward: bool| Query {
        sk_prefix: Some(prefix.into()),
        forward,
        ..query("user#1")
    };
    let page = t.query(q("session#", true)).await.unwrap();
    assert_eq!(sort_keys(&page.items), ["session#a", "session#b"]);
    let page = t.query(q("session#", false)).await.unwrap();
    assert_eq!(sort_keys(&page.items), ["session#b", "session#a"]);
    let page = t.query(q("session", true)).await.unwrap();
    assert_eq!(
        sort_keys(&page.items),
        ["session", "session#a", "session#b", "sessions#x"]
    );
    let page = t.query(q("nothing", true)).await.unwrap();
    assert!(page.items.is_empty());
    let page = t.query(q("profile", true)).await.unwrap();
    assert_eq!(sort_keys(&page.items), ["profile"]);
}

pub async fn query_pages_through_every_item_without_duplicates_or_gaps(t: &dyn Table) {
    let sks: Vec<String> = (0..7).map(|i| format!("item#{i:02}")).collect();
    let refs: Vec<&str> = sks.iter().map(String::as_str).collect();
    put_partition(t, "list", &refs).await;
    put_partition(t, "list", &["other#1", "other#2"]).await;
    put_partition(t, "list2", &["item#99"]).await;

    for forward in [true, false] {
        for limit in [1, 2, 3, 7, 8] {
            let q = Query {
                sk_prefix: Some("item#".into()),
                forward,
                limit,
                ..query("list")
            };
            let first = t.query(q.clone()).await.unwrap();
            assert_eq!(first.items.len(), (limit as usize).min(7), "first page, limit {limit}");
            if limit < 7 {
                assert!(first.next.is_some(), "more to come after the first page, limit {limit}");
            }
            let all = query_all(t, q).await;
            let mut expected = sks.clone();
            if !forward {
                expected.reverse();
            }
            assert_eq!(sort_keys(&all), expected, "forward {forward}, limit {limit}");
            let unique: BTreeSet<String> = sort_keys(&all).into_iter().collect();
            assert_eq!(unique.len(), all.len(), "duplicates with limit {limit}");
        }
    }
    // The whole partition, prefix-less, two at a time.
    let all = query_all(
        t,
        Query {
            limit: 2,
            ..query("list")
        },
    )
    .await;
    assert_eq!(all.len(), 9);
}

pub async fn query_on_gsi1_uses_the_index_keys(t: &dyn Table) {
    let put = |pk: &str, g: Option<(&str, &str)>| {
        let mut it = item(json!({"pk": pk, "sk": "profile"}));
        if let Some((gpk, gsk)) = g {
            it.insert("gsi1pk".into(), json!(gpk));
            it.insert("gsi1sk".into(), json!(gsk));
        }
        it
    };
    let items = [
        put("user#1", Some(("phone#+255700000001", "user#c"))),
        put("user#2", Some(("phone#+255700000001", "user#a"))),
        put("user#3", Some(("phone#+255700000001", "other#b"))),
        put("user#4", Some(("phone#+255700000002", "user#d"))),
        put("user#5", None),
    ];
    for it in &items {
        t.put(it.clone(), None).await.unwrap();
    }
    // An item with only half of the index key is not in the index.
    t.put(
        item(json!({"pk": "user#6", "sk": "profile", "gsi1pk": "phone#+255700000001"})),
        None,
    )
    .await
    .unwrap();

    let q = Query {
        index: Some(GSI1),
        ..query("phone#+255700000001")
    };
    let pks = |items: &[Item]| -> Vec<String> { items.iter().map(|i| i["pk"].as_str().unwrap().to_owned()).collect() };
    let page = t.query(q.clone()).await.unwrap();
    assert_eq!(pks(&page.items), ["user#3", "user#2", "user#1"]);
    assert_eq!(page.items[1], items[1], "the index projects whole items");
    assert_eq!(page.next, None);

    let page = t
        .query(Query {
            forward: false,
            sk_prefix: Some("user#".into()),
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(pks(&page.items), ["user#1", "user#2"]);

    let all = query_all(t, Query { limit: 1, ..q.clone() }).await;
    assert_eq!(pks(&all), ["user#3", "user#2", "user#1"]);
    let all = query_all(
        t,
        Query {
            limit: 2,
            forward: false,
            ..q.clone()
        },
    )
    .await;
    assert_eq!(pks(&all), ["user#1", "user#2", "user#3"]);

    // A table query never sees the GSI's partition key.
    let page = t.query(query("phone#+255700000001")).await.unwrap();
    assert!(page.items.is_empty());
}

pub async fn the_gsi_follows_updates_replacements_and_deletes(t: &dyn Table) {
    let on = |g: &'static str| Query {
        index: Some(GSI1),
        ..query(g)
    };
    let pks = |items: &[Item]| -> Vec<String> { items.iter().map(|i| i["pk"].as_str().unwrap().to_owned()).collect() };
    t.put(
        item(json!({"pk": "s#1", "sk": "s", "gsi1pk": "owner#a", "gsi1sk": "1"})),
        None,
    )
    .await
    .unwrap();
    t.put(
        item(json!({"pk": "s#2", "sk": "s", "gsi1pk": "owner#a", "gsi1sk": "2"})),
        None,
    )
    .await
    .unwrap();
    // An update that moves s#1 to another index partition.
    t.update(&Key::new("s#1", "s"), vec![Update::set("gsi1pk", "owner#b")], None)
        .await
        .unwrap();
    assert_eq!(pks(&t.query(on("owner#a")).await.unwrap().items), ["s#2"]);
    assert_eq!(pks(&t.query(on("owner#b")).await.unwrap().items), ["s#1"]);
    // A put that replaces s#2 without index keys takes it out of the index.
    t.put(item(json!({"pk": "s#2", "sk": "s"})), None).await.unwrap();
    assert!(t.query(on("owner#a")).await.unwrap().items.is_empty());
    // A transactional delete removes s#1 from it.
    t.transact(vec![Write::Delete {
        key: Key::new("s#1", "s"),
        cond: None,
    }])
    .await
    .unwrap();
    assert!(t.query(on("owner#b")).await.unwrap().items.is_empty());
    // A partition next to another's in key order is not mixed with it.
    t.put(item(json!({"pk": "s#1x", "sk": "s"})), None).await.unwrap();
    t.put(item(json!({"pk": "s#1", "sk": "t"})), None).await.unwrap();
    assert_eq!(pks(&t.query(query("s#1")).await.unwrap().items), ["s#1"]);
}

// ---------------------------------------------------------------------------
// Concurrency

pub async fn concurrent_conditional_puts_of_one_key_let_exactly_one_win(t: Arc<dyn Table>) {
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let t = Arc::clone(&t);
            tokio::spawn(async move {
                let it = item(json!({"pk": "code#1", "sk": "code", "writer": i}));
                (i, t.put(it, Some(Cond::NotExists)).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (i, r) = task.await.unwrap();
        match r {
            Ok(()) => winners.push(i),
            Err(TableError::ConditionFailed) => {}
            Err(e) => panic!("writer {i}: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored = t.get(&key("code#1", "code")).await.unwrap().unwrap();
    assert_eq!(stored["writer"], json!(winners[0]));
}

#[cfg(test)]
mod memory_table {
    crate::conformance_tests!(async { crate::ports::memory::MemoryTable::new() });
}
