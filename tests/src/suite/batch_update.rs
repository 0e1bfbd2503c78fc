//! `update_or_create_all(_with)`: the batch forms of `update_or_create`, the
//! same on every backend (sync API).

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::prelude::*;
use diesel_get_or_create::lazy;
use diesel_get_or_create::prelude::*;

use crate::backend::{TestBackend, TestDatabase};
use crate::counter::StatementCounter;
use crate::models::*;
use crate::schema::*;
use crate::suite::{count_users, visits_of};
use crate::{assert_unique_violation, call_all};

fn create(name: &str, visits: i32) -> (Names<'_>, diesel::dsl::Eq<users::visits, i32>) {
    (names(name, name, "B"), users::visits.eq(visits))
}

/// `visits + 1`.
fn bump() -> diesel::dsl::Eq<users::visits, diesel::dsl::Add<users::visits, i32>> {
    users::visits.eq(users::visits + 1)
}

/// An `AsChangeset` whose only field is `None`: it updates nothing.
#[derive(AsChangeset)]
#[diesel(table_name = memberships)]
struct Seat {
    seat_no: Option<i32>,
}

pub fn batch_update_updates_existing_rows_creates_the_others_in_input_order<B: TestBackend>() {
    let db = B::Db::new("batch_update_order");
    let mut conn = db.connect();
    let (ann, _) = crate::call!(
        &mut conn,
        User::get_or_create(users::email.key("ann@x.io"), create("ann", 7))
    )
    .unwrap();

    let rows = call_all!(
        &mut conn,
        User,
        update_with: bump(),
        [
            (users::email.key("bob@x.io"), create("bob", 1)),
            (users::email.key("ann@x.io"), create("ann2", 1)),
            (users::email.key("bob@x.io"), create("bob2", 5)),
            (users::email.key("cat@x.io"), create("cat", 1)),
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
            // Updated: its create values are not used.
            ("ann@x.io", "ann", 8, false),
            // A repeated key: created (or updated) once, the same row.
            ("bob@x.io", "bob", 1, false),
            ("cat@x.io", "cat", 1, true),
        ]
    );
    assert_eq!(rows[1].0.id, ann.id);
    assert_eq!(count_users(&mut conn), 3);

    // Again: every row updated once, whatever its repeats.
    let rows = call_all!(
        &mut conn,
        User,
        update_with: bump(),
        ["cat@x.io", "bob@x.io", "cat@x.io", "ann@x.io"]
            .map(|e| (users::email.key(e), create(e, 0)))
    )
    .unwrap();
    let got: Vec<(&str, i32, bool)> = rows
        .iter()
        .map(|(u, created)| (u.email.as_str(), u.visits, *created))
        .collect();
    assert_eq!(
        got,
        [
            ("cat@x.io", 2, false),
            ("bob@x.io", 2, false),
            ("cat@x.io", 2, false),
            ("ann@x.io", 9, false),
        ]
    );
    assert_eq!(visits_of(&mut conn, "cat@x.io"), Some(2));
}

pub fn batch_update_with_the_same_values_lazy_create_and_empty_changeset<B: TestBackend>() {
    let db = B::Db::new("batch_update_values");
    let mut conn = db.connect();
    let key = |org: i32, user: &'static str| {
        (
            memberships::org_id.key(org),
            memberships::user_name.key(user),
        )
    };
    crate::call!(
        &mut conn,
        Membership::get_or_create(key(1, "ann"), memberships::role.eq("owner"))
    )
    .unwrap();

    // The same values update every existing row and create the others.
    let rows = call_all!(
        &mut conn,
        Membership,
        update: (memberships::role.eq("member"), memberships::seat_no.eq(4)),
        [key(1, "bob"), key(1, "ann")]
    )
    .unwrap();
    let got: Vec<(&str, &str, i32, bool)> = rows
        .iter()
        .map(|(m, c)| (m.user.as_str(), m.role.as_str(), m.seat, *c))
        .collect();
    assert_eq!(
        got,
        [("bob", "member", 4, true), ("ann", "member", 4, false)]
    );

    // Lazy create values: computed for created keys only.
    let computed = AtomicUsize::new(0);
    let role = |role: &'static str| {
        let computed = &computed;
        lazy(move || {
            computed.fetch_add(1, Ordering::SeqCst);
            memberships::role.eq(role)
        })
    };
    let rows = call_all!(
        &mut conn,
        Membership,
        update_with: memberships::seat_no.eq(memberships::seat_no + 1),
        [
            (key(1, "ann"), role("x")),
            (key(2, "cat"), role("guest")),
            (key(1, "bob"), role("y")),
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
            (1, "ann", "member", 5, false),
            (2, "cat", "guest", 0, true),
            (1, "bob", "member", 5, false),
        ]
    );
    // Computed for `cat` only; on PostgreSQL for every key, which its one
    // upsert carries.
    let expected = if B::LAZY_BATCH_CREATE_VALUES_ON_UPDATE {
        3
    } else {
        1
    };
    assert_eq!(computed.load(Ordering::SeqCst), expected);

    // A changeset with nothing to set: the batch is `get_or_create_all`.
    let counter = StatementCounter::install(&mut conn);
    let nothing = Seat { seat_no: None };
    let rows = call_all!(
        &mut conn,
        Membership,
        update_with: &nothing,
        [(key(1, "ann"), role("z"))]
    )
    .unwrap();
    assert_eq!((rows[0].0.seat, rows[0].1), (5, false));
    assert_eq!(counter.take(), 1, "one read: {:?}", counter.statements());
}

pub fn batch_update_statements_standalone_and_in_a_transaction<B: TestBackend>() {
    let db = B::Db::new("batch_update_statements");
    let mut conn = db.connect();
    let counter = StatementCounter::install(&mut conn);
    let keys: Vec<String> = (0..10).map(|i| format!("s{i}@x.io")).collect();
    let items = |visits: i32| {
        keys.iter()
            .map(move |e| (users::email.key(e.as_str()), create(e, visits)))
    };
    let (update, create_count) = B::BATCH_UPDATE;
    counter.take();
    call_all!(&mut conn, User, update_with: bump(), items(1)).unwrap();
    assert_eq!(
        counter.take(),
        create_count.0,
        "all created: {:?}",
        counter.statements()
    );
    let rows = call_all!(&mut conn, User, update_with: bump(), items(1)).unwrap();
    assert!(rows.iter().all(|(u, c)| !c && u.visits == 2));
    assert_eq!(
        counter.take(),
        update.0,
        "all updated: {:?}",
        counter.statements()
    );

    let (update, create_count) = B::BATCH_UPDATE_IN_TRANSACTION;
    let keys: Vec<String> = (0..10).map(|i| format!("t{i}@x.io")).collect();
    let items = |visits: i32| {
        keys.iter()
            .map(move |e| (users::email.key(e.as_str()), create(e, visits)))
    };
    crate::txn::begin(&mut conn);
    counter.take();
    let rows = call_all!(&mut conn, User, update_with: bump(), items(1)).unwrap();
    assert!(rows.iter().all(|(_, c)| *c));
    assert_eq!(
        counter.take(),
        create_count.0,
        "all created in a transaction: {:?}",
        counter.statements()
    );
    let rows = call_all!(&mut conn, User, update_with: bump(), items(1)).unwrap();
    assert!(rows.iter().all(|(u, c)| !c && u.visits == 2));
    assert_eq!(
        counter.take(),
        update.0,
        "all updated in a transaction: {:?}",
        counter.statements()
    );
    crate::txn::rollback(&mut conn);
    assert_eq!(
        count_users(&mut conn),
        10,
        "the rolled-back batch left nothing"
    );
}

pub fn batch_update_larger_than_a_chunk<B: TestBackend>() {
    let db = B::Db::new("batch_update_chunks");
    let mut conn = db.connect();
    let emails: Vec<String> = (0..1203).map(|i| format!("u{i:04}@x.io")).collect();
    // Every third key exists.
    call_all!(
        &mut conn,
        User,
        emails
            .iter()
            .step_by(3)
            .map(|e| (users::email.key(e.as_str()), create(e, 10)))
    )
    .unwrap();
    let counter = StatementCounter::install(&mut conn);
    let rows = call_all!(
        &mut conn,
        User,
        update_with: bump(),
        emails
            .iter()
            .rev()
            .map(|e| (users::email.key(e.as_str()), create(e, 1)))
    )
    .unwrap();
    let statements = counter.take();
    assert_eq!(rows.len(), 1203);
    for ((user, created), e) in rows.iter().zip(emails.iter().rev()) {
        assert_eq!(&user.email, e);
        let existed = emails.iter().position(|x| x == e).unwrap() % 3 == 0;
        assert_eq!(*created, !existed, "{e}");
        assert_eq!(user.visits, if existed { 11 } else { 1 });
    }
    assert_eq!(count_users(&mut conn), 1203);
    // Bounded by chunks, whatever the batch's size: 3 chunks of keys to
    // update (or read, then 1 chunk to update on MySQL), 2 to create.
    let (update, create) = B::BATCH_UPDATE;
    assert!(
        statements <= 3 * update.0 + 2 * create.0,
        "{statements} statements: {:?}",
        counter.statements()
    );
}

pub fn batch_update_conflict_on_another_unique_column_is_an_error<B: TestBackend>() {
    let db = B::Db::new("batch_update_conflict");
    let mut conn = db.connect();
    call_all!(
        &mut conn,
        User,
        ["ann@x.io", "bob@x.io"].map(|e| (users::email.key(e), create(e, 0)))
    )
    .unwrap();
    // The update would give both rows one username.
    let err = call_all!(
        &mut conn,
        User,
        update_with: users::username.eq("same"),
        ["ann@x.io", "bob@x.io"].map(|e| (users::email.key(e), create(e, 0)))
    )
    .unwrap_err();
    assert_unique_violation(&err);
    // The create values would repeat ann's username.
    let err = call_all!(
        &mut conn,
        User,
        update_with: bump(),
        [(users::email.key("cat@x.io"), create("ann@x.io", 0))]
    )
    .unwrap_err();
    assert_unique_violation(&err);
    assert_eq!(count_users(&mut conn), 2);
    assert_eq!(visits_of(&mut conn, "ann@x.io"), Some(0), "nothing updated");
}
