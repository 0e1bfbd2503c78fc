//! `get_or_create_all`: the batch form, the same on every backend (sync API).

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::prelude::*;
use diesel_get_or_create::lazy;
use diesel_get_or_create::prelude::*;

use crate::backend::{TestBackend, TestDatabase};
use crate::counter::StatementCounter;
use crate::models::*;
use crate::schema::*;
use crate::suite::count_users;
use crate::{assert_unique_violation, query};

/// `Model::get_or_create_all(conn, items)` on any connection of the suites,
/// through the sync API or, on an async connection, the async API; with
/// `update_with: changeset` it is `update_or_create_all_with(conn, items,
/// changeset)`, and with `each: items` `update_or_create_all(conn, items)`.
#[macro_export]
macro_rules! call_all {
    ($conn:expr, $model:ident, update_with: $update:expr, $items:expr $(,)?) => {
        $crate::dispatch!(
            $conn,
            |c| <$model as ::diesel_get_or_create::GetOrCreate>::update_or_create_all_with(
                c, $items, $update
            ),
            async |a| {
                <$model as ::diesel_get_or_create::asynchronous::GetOrCreate>::update_or_create_all_with(
                    a, $items, $update,
                )
                .await
            },
        )
    };
    ($conn:expr, $model:ident, each: $items:expr $(,)?) => {
        $crate::dispatch!(
            $conn,
            |c| <$model as ::diesel_get_or_create::GetOrCreate>::update_or_create_all(c, $items),
            async |a| {
                <$model as ::diesel_get_or_create::asynchronous::GetOrCreate>::update_or_create_all(
                    a, $items,
                )
                .await
            },
        )
    };
    ($conn:expr, $model:ident, $items:expr $(,)?) => {
        $crate::dispatch!(
            $conn,
            |c| <$model as ::diesel_get_or_create::GetOrCreate>::get_or_create_all(c, $items),
            async |a| {
                <$model as ::diesel_get_or_create::asynchronous::GetOrCreate>::get_or_create_all(
                    a, $items,
                )
                .await
            },
        )
    };
}

fn user_defaults(name: &str, visits: i32) -> (Names<'_>, diesel::dsl::Eq<users::visits, i32>) {
    (names(name, name, "B"), users::visits.eq(visits))
}

pub fn batch_returns_input_order_creates_each_key_once_and_merges_repeats<B: TestBackend>() {
    let db = B::Db::new("batch_order");
    let mut conn = db.connect();
    let (ann, _) = crate::call!(
        &mut conn,
        User::get_or_create(users::email.key("ann@x.io"), user_defaults("ann", 7))
    )
    .unwrap();

    let rows = call_all!(
        &mut conn,
        User,
        [
            (users::email.key("bob@x.io"), user_defaults("bob", 1)),
            (users::email.key("ann@x.io"), user_defaults("ann2", 2)),
            (users::email.key("bob@x.io"), user_defaults("bob2", 3)),
            (users::email.key("cat@x.io"), user_defaults("cat", 4)),
        ]
    )
    .unwrap();
    let got: Vec<(&str, &str, i32, bool)> = rows
        .iter()
        .map(|(u, created)| (u.email.as_str(), u.username.as_str(), u.visits, *created))
        .collect();
    assert_eq!(
        got,
        [
            ("bob@x.io", "bob", 1, true),
            // A hit ignores its defaults.
            ("ann@x.io", "ann", 7, false),
            // A repeated key: the same row, created once, with the defaults
            // of its first occurrence.
            ("bob@x.io", "bob", 1, false),
            ("cat@x.io", "cat", 4, true),
        ]
    );
    assert_eq!(rows[1].0, ann);
    assert_eq!(rows[0].0, rows[2].0);
    assert_eq!(count_users(&mut conn), 3);

    // Again: every key found, nothing created, the same rows.
    let again = call_all!(
        &mut conn,
        User,
        ["cat@x.io", "bob@x.io", "ann@x.io"].map(|e| (users::email.key(e), user_defaults(e, 0)))
    )
    .unwrap();
    assert_eq!(
        again,
        vec![
            (rows[3].0.clone(), false),
            (rows[0].0.clone(), false),
            (ann, false)
        ]
    );
    // An empty batch sends nothing and returns nothing.
    let empty: Vec<(diesel_get_or_create::Key<users::email, &str>, ())> = Vec::new();
    let counter = StatementCounter::install(&mut conn);
    assert_eq!(call_all!(&mut conn, User, empty.clone()).unwrap(), vec![]);
    assert_eq!(counter.take(), 0);
}

pub fn batch_composite_keys_and_lazy_defaults<B: TestBackend>() {
    let db = B::Db::new("batch_composite");
    let mut conn = db.connect();
    crate::call!(
        &mut conn,
        Membership::get_or_create(
            (
                memberships::org_id.key(1),
                memberships::user_name.key("ann")
            ),
            (memberships::role.eq("owner"), memberships::seat_no.eq(1)),
        )
    )
    .unwrap();

    let computed = AtomicUsize::new(0);
    let role = |role: &'static str, seat: i32| {
        let computed = &computed;
        lazy(move || {
            computed.fetch_add(1, Ordering::SeqCst);
            (memberships::role.eq(role), memberships::seat_no.eq(seat))
        })
    };
    let rows = call_all!(
        &mut conn,
        Membership,
        [
            (
                (
                    memberships::user_name.key("ann"),
                    memberships::org_id.key(2)
                ),
                role("a2", 2)
            ),
            (
                (
                    memberships::user_name.key("ann"),
                    memberships::org_id.key(1)
                ),
                role("x", 9)
            ),
            (
                (
                    memberships::user_name.key("bob"),
                    memberships::org_id.key(1)
                ),
                role("b1", 3)
            ),
        ]
    )
    .unwrap();
    let got: Vec<(i32, &str, &str, i32, bool)> = rows
        .iter()
        .map(|(m, c)| (m.org, m.user.as_str(), m.role.as_str(), m.seat, *c))
        .collect();
    assert_eq!(
        got,
        [
            (2, "ann", "a2", 2, true),
            (1, "ann", "owner", 1, false),
            (1, "bob", "b1", 3, true),
        ]
    );
    assert_eq!(
        computed.load(Ordering::SeqCst),
        2,
        "lazy defaults are computed for inserted keys only"
    );
}

pub fn batch_larger_than_a_chunk_and_its_statements<B: TestBackend>() {
    let db = B::Db::new("batch_chunks");
    let mut conn = db.connect();
    let emails: Vec<String> = (0..1203).map(|i| format!("u{i:04}@x.io")).collect();
    // Every third key exists.
    for e in emails.iter().step_by(3) {
        crate::call!(
            &mut conn,
            User::get_or_create(users::email.key(e.as_str()), user_defaults(e, 0))
        )
        .unwrap();
    }
    let counter = StatementCounter::install(&mut conn);
    let rows = call_all!(
        &mut conn,
        User,
        emails
            .iter()
            .rev()
            .map(|e| (users::email.key(e.as_str()), user_defaults(e, 1)))
    )
    .unwrap();
    let statements = counter.take();
    assert_eq!(rows.len(), 1203);
    for ((user, created), e) in rows.iter().zip(emails.iter().rev()) {
        assert_eq!(&user.email, e);
        let existed = emails.iter().position(|x| x == e).unwrap() % 3 == 0;
        assert_eq!(*created, !existed, "{e}");
        assert_eq!(user.visits, if existed { 0 } else { 1 });
    }
    assert_eq!(count_users(&mut conn), 1203);
    // 3 chunks of at most 500 keys: the read, then per chunk of missing keys
    // (802 keys: 2 chunks) the backend's insert statements.
    let (miss, _) = B::BATCH_MISS;
    assert_eq!(statements, 3 + 2 * (miss - 1), "{:?}", counter.statements());

    // All present: one read per chunk.
    counter.take();
    let rows = call_all!(
        &mut conn,
        User,
        emails.iter().map(|e| (users::email.key(e.as_str()), ()))
    )
    .unwrap();
    assert!(rows.iter().all(|(_, created)| !created));
    assert_eq!(counter.take(), 3);
}

pub fn batch_statements_standalone_and_in_a_transaction<B: TestBackend>() {
    let db = B::Db::new("batch_statements");
    let mut conn = db.connect();
    let counter = StatementCounter::install(&mut conn);
    let batch = |tag: &'static str| {
        (0..10)
            .map(move |i| format!("{tag}{i}@x.io"))
            .collect::<Vec<_>>()
    };
    let keys = batch("s");
    let items = || {
        keys.iter()
            .map(|e| (users::email.key(e.as_str()), user_defaults(e, 0)))
    };
    counter.take();
    call_all!(&mut conn, User, items()).unwrap();
    assert_eq!(
        counter.take(),
        B::BATCH_MISS.0,
        "miss: {:?}",
        counter.statements()
    );
    call_all!(&mut conn, User, items()).unwrap();
    assert_eq!(counter.take(), 1, "hit: {:?}", counter.statements());

    let keys = batch("t");
    let items = || {
        keys.iter()
            .map(|e| (users::email.key(e.as_str()), user_defaults(e, 0)))
    };
    crate::txn::begin(&mut conn);
    counter.take();
    let created = call_all!(&mut conn, User, items()).unwrap();
    assert!(created.iter().all(|(_, c)| *c));
    assert_eq!(
        counter.take(),
        B::BATCH_MISS_IN_TRANSACTION.0,
        "miss in a transaction: {:?}",
        counter.statements()
    );
    call_all!(&mut conn, User, items()).unwrap();
    assert_eq!(counter.take(), 1);
    crate::txn::rollback(&mut conn);
    assert_eq!(
        count_users(&mut conn),
        10,
        "the rolled-back batch left nothing"
    );
}

pub fn batch_conflict_on_another_unique_column_is_an_error<B: TestBackend>() {
    let db = B::Db::new("batch_conflict");
    let mut conn = db.connect();
    crate::call!(
        &mut conn,
        User::get_or_create(users::email.key("ann@x.io"), user_defaults("taken", 0))
    )
    .unwrap();
    // `bob` would take the username `taken`.
    let err = call_all!(
        &mut conn,
        User,
        [
            (users::email.key("bob@x.io"), user_defaults("taken", 0)),
            (users::email.key("cat@x.io"), user_defaults("cat", 0)),
        ]
    )
    .unwrap_err();
    assert_unique_violation(&err);
    let bob: i64 = query!(
        &mut conn,
        get_result::<i64>,
        users::table.filter(users::email.eq("bob@x.io")).count()
    )
    .unwrap();
    assert_eq!(bob, 0);

    // Inside a transaction, which stays usable.
    crate::txn::begin(&mut conn);
    let err = call_all!(
        &mut conn,
        User,
        [(users::email.key("bob@x.io"), user_defaults("taken", 0))]
    )
    .unwrap_err();
    assert_unique_violation(&err);
    let rows = call_all!(
        &mut conn,
        User,
        [(users::email.key("dan@x.io"), user_defaults("dan", 0))]
    )
    .unwrap();
    assert!(rows[0].1);
    crate::txn::commit(&mut conn);
}
