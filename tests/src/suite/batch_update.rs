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

pub fn batch_update_each_values_lazy_create_and_empty_changeset<B: TestBackend>() {
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

    // Each key's values update its row or create it.
    let values =
        |role: &'static str, seat: i32| (memberships::role.eq(role), memberships::seat_no.eq(seat));
    let rows = call_all!(
        &mut conn,
        Membership,
        each: [
            (key(1, "bob"), values("member", 4)),
            (key(1, "ann"), values("member", 4)),
        ]
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

/// Values of a membership whose `seat_no: None` inserts the column's default
/// and leaves an existing row's seat as it is.
#[derive(Insertable, Clone)]
#[diesel(table_name = memberships)]
struct RoleSeat {
    role: &'static str,
    seat_no: Option<i32>,
}

pub fn batch_update_each_key_gets_its_own_values<B: TestBackend>() {
    let db = B::Db::new("batch_update_each");
    let mut conn = db.connect();
    let key = |org: i32, user: &'static str| {
        (
            memberships::org_id.key(org),
            memberships::user_name.key(user),
        )
    };
    let role_seat = |role, seat_no| RoleSeat { role, seat_no };
    for user in ["ann", "bob"] {
        crate::call!(
            &mut conn,
            Membership::get_or_create(
                key(1, user),
                (memberships::role.eq("owner"), memberships::seat_no.eq(9))
            )
        )
        .unwrap();
    }
    // Different values per key; `None` leaves `bob`'s seat and gives `dan`
    // the default; a repeated key takes its first occurrence's values.
    let rows = call_all!(
        &mut conn,
        Membership,
        each: [
            (key(1, "ann"), role_seat("admin", Some(3))),
            (key(1, "bob"), role_seat("guest", None)),
            (key(2, "cat"), role_seat("member", Some(5))),
            (key(1, "ann"), role_seat("ignored", Some(8))),
            (key(2, "dan"), role_seat("member", None)),
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
            (1, "ann", "admin", 3, false),
            (1, "bob", "guest", 9, false),
            (2, "cat", "member", 5, true),
            (1, "ann", "admin", 3, false),
            (2, "dan", "member", 0, true),
        ]
    );
    let stored: Vec<(String, String, i32)> = crate::query!(
        &mut conn,
        load::<(String, String, i32)>,
        memberships::table
            .order((memberships::org_id, memberships::user_name))
            .select((
                memberships::user_name,
                memberships::role,
                memberships::seat_no
            ))
    )
    .unwrap();
    let stored: Vec<(&str, &str, i32)> = stored
        .iter()
        .map(|(u, r, s)| (u.as_str(), r.as_str(), *s))
        .collect();
    assert_eq!(
        stored,
        [
            ("ann", "admin", 3),
            ("bob", "guest", 9),
            ("cat", "member", 5),
            ("dan", "member", 0)
        ]
    );

    // Statements: every key exists / every key is missing, standalone and
    // inside the caller's transaction.
    let counter = StatementCounter::install(&mut conn);
    let keys: Vec<String> = (0..10).map(|i| format!("e{i}@x.io")).collect();
    let items = |visits: i32| {
        keys.iter()
            .map(move |e| (users::email.key(e.as_str()), create(e, visits)))
    };
    let ((exist, missing), (exist_tx, missing_tx)) = (B::BATCH_EACH, B::BATCH_EACH_IN_TRANSACTION);
    counter.take();
    let rows = call_all!(&mut conn, User, each: items(1)).unwrap();
    assert!(rows.iter().all(|(u, c)| *c && u.visits == 1));
    assert_eq!(
        counter.take(),
        missing.0,
        "all created ({}): {:?}",
        missing.1,
        counter.statements()
    );
    let rows = call_all!(&mut conn, User, each: items(2)).unwrap();
    assert!(rows.iter().all(|(u, c)| !*c && u.visits == 2));
    assert_eq!(
        counter.take(),
        exist.0,
        "all updated ({}): {:?}",
        exist.1,
        counter.statements()
    );
    let more: Vec<String> = (0..10).map(|i| format!("f{i}@x.io")).collect();
    let items = |visits: i32| {
        more.iter()
            .map(move |e| (users::email.key(e.as_str()), create(e, visits)))
    };
    crate::txn::begin(&mut conn);
    counter.take();
    let rows = call_all!(&mut conn, User, each: items(3)).unwrap();
    assert!(rows.iter().all(|(u, c)| *c && u.visits == 3));
    assert_eq!(
        counter.take(),
        missing_tx.0,
        "in a transaction, all created ({}): {:?}",
        missing_tx.1,
        counter.statements()
    );
    let rows = call_all!(&mut conn, User, each: items(4)).unwrap();
    assert!(rows.iter().all(|(u, c)| !*c && u.visits == 4));
    assert_eq!(
        counter.take(),
        exist_tx.0,
        "in a transaction, all updated ({}): {:?}",
        exist_tx.1,
        counter.statements()
    );
    crate::txn::rollback(&mut conn);
    assert_eq!(
        count_users(&mut conn),
        10,
        "the rolled-back batch left nothing"
    );
}
