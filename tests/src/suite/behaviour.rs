//! Behaviour of get_or_create / update_or_create, the same on every backend.

use diesel::prelude::*;
use diesel::result::Error;
use diesel_get_or_create::prelude::*;

use crate::backend::{Count, Statements, TestBackend, TestDatabase};
use crate::counter::StatementCounter;
use crate::models::*;
use crate::schema::*;
use crate::suite::{bump, count_users, visits_of};
use crate::{call, query};

fn ann<C: crate::backend::AsConnRef>(conn: &mut C) -> User {
    call!(
        conn,
        User::get_or_create(
            users::email.key("ann@x.io"),
            (
                users::username.eq("ann"),
                users::first_name.eq("Ann"),
                users::last_name.eq("Lee"),
                users::visits.eq(0),
            ),
        )
    )
    .unwrap()
    .0
}

fn all_users<C: crate::backend::AsConnRef>(conn: &mut C) -> Vec<User> {
    query!(
        conn,
        load::<User>,
        users::table.select(User::as_select()).order(users::id)
    )
    .unwrap()
}

pub fn get_or_create_creates_then_finds_and_ignores_defaults_on_hit<B: TestBackend>() {
    let db = B::Db::new("goc");
    let mut conn = db.connect();
    let (created_row, created) = call!(
        &mut conn,
        User::get_or_create(
            users::email.key("ann@x.io"),
            (
                users::username.eq("ann"),
                users::first_name.eq("Ann"),
                users::last_name.eq("Lee"),
                users::visits.eq(3),
            ),
        )
    )
    .unwrap();
    assert!(created);
    assert_eq!(
        (
            created_row.email.as_str(),
            created_row.username.as_str(),
            created_row.visits
        ),
        ("ann@x.io", "ann", 3)
    );

    // Other defaults on a hit: returned as stored, nothing written.
    let (found, created) = call!(
        &mut conn,
        User::get_or_create(
            users::email.key("ann@x.io"),
            (
                users::username.eq("someone-else"),
                users::first_name.eq("X"),
                users::last_name.eq("Y"),
                users::visits.eq(99),
            ),
        )
    )
    .unwrap();
    assert!(!created);
    assert_eq!(found, created_row);
    assert_eq!(all_users(&mut conn), vec![created_row]);
}

pub fn no_defaults_form_inserts_the_key_alone<B: TestBackend>() {
    let db = B::Db::new("nodefaults");
    let mut conn = db.connect();
    let (m, created) = call!(
        &mut conn,
        Membership::get_or_create(
            (
                memberships::org_id.key(1),
                memberships::user_name.key("ann"),
            ),
            memberships::role.eq("member"),
        )
    )
    .unwrap();
    assert!(created);
    assert_eq!(m.seat, 0, "column default applies");

    // `()` defaults: the table's own defaults fill the rest.
    let db2 = B::Db::new("nodefaults2");
    let mut conn2 = db2.connect();
    crate::exec(&mut conn2, B::TAGS_DDL).unwrap();
    let (tag, created) = call!(&mut conn2, Tag::get_or_create(tags::name.key("rust"), ())).unwrap();
    assert!(created);
    assert_eq!((tag.name.as_str(), tag.uses), ("rust", 0));
    let (again, created) =
        call!(&mut conn2, Tag::get_or_create(tags::name.key("rust"), ())).unwrap();
    assert!(!created);
    assert_eq!(again, tag);
}

pub fn composite_key_in_both_orders_and_primary_key_lookup<B: TestBackend>() {
    let db = B::Db::new("composite");
    let mut conn = db.connect();
    let original = ann(&mut conn);

    let (a, created) = call!(
        &mut conn,
        User::get_or_create(
            (users::first_name.key("Ann"), users::last_name.key("Lee")),
            (users::email.eq("other@x.io"), users::username.eq("other")),
        )
    )
    .unwrap();
    assert!(!created);
    assert_eq!(a, original);

    let (b, created) = call!(
        &mut conn,
        User::get_or_create(
            (users::last_name.key("Lee"), users::first_name.key("Ann")),
            (users::email.eq("other@x.io"), users::username.eq("other")),
        )
    )
    .unwrap();
    assert!(!created);
    assert_eq!(b, original);

    let (c, created) = call!(
        &mut conn,
        User::get_or_create(
            (users::last_name.key("Lee"), users::first_name.key("Bob")),
            (users::email.eq("bob@x.io"), users::username.eq("bob")),
        )
    )
    .unwrap();
    assert!(created);
    assert_eq!(
        (c.first_name.as_str(), c.last_name.as_str()),
        ("Bob", "Lee")
    );
    assert_eq!(c.visits, 7, "unset column takes the table default");

    let (by_id, created) = call!(
        &mut conn,
        User::get_or_create(
            users::id.key(original.id),
            (
                users::email.eq("never@x.io"),
                users::username.eq("never"),
                users::first_name.eq("N"),
                users::last_name.eq("N"),
            ),
        )
    )
    .unwrap();
    assert!(!created);
    assert_eq!(by_id, original);

    let (new_id, created) = call!(
        &mut conn,
        User::get_or_create(
            users::id.key(1000),
            (
                users::email.eq("k@x.io"),
                users::username.eq("k"),
                users::first_name.eq("K"),
                users::last_name.eq("K"),
            ),
        )
    )
    .unwrap();
    assert!(created);
    assert_eq!(new_id.id, 1000);
    assert_eq!(count_users(&mut conn), 3);
}

#[derive(QueryableByName)]
struct SeatRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    seat_no: i32,
}

pub fn renamed_columns_and_composite_primary_key<B: TestBackend>() {
    let db = B::Db::new("renamed");
    let mut conn = db.connect();
    let (m, created) = call!(
        &mut conn,
        Membership::get_or_create(
            (
                memberships::user_name.key("ann"),
                memberships::org_id.key(7),
            ),
            (memberships::role.eq("owner"), memberships::seat_no.eq(3)),
        )
    )
    .unwrap();
    assert!(created);
    assert_eq!(
        m,
        Membership {
            org: 7,
            user: "ann".into(),
            role: "owner".into(),
            seat: 3
        }
    );
    let (m2, created) = call!(
        &mut conn,
        Membership::update_or_create(
            (
                memberships::org_id.key(7),
                memberships::user_name.key("ann"),
            ),
            (memberships::role.eq("admin"), memberships::seat_no.eq(4)),
        )
    )
    .unwrap();
    assert!(!created);
    assert_eq!((m2.role.as_str(), m2.seat), ("admin", 4));
    let seat: i32 = query!(
        &mut conn,
        get_result::<SeatRow>,
        diesel::sql_query("SELECT seat AS seat_no FROM memberships")
    )
    .unwrap()
    .seat_no;
    assert_eq!(seat, 4, "the SQL column is `seat`");
}

pub fn update_or_create_with_uses_update_values_or_create_values<B: TestBackend>() {
    let db = B::Db::new("uoc");
    let mut conn = db.connect();
    let key = || (users::first_name.key("Ann"), users::last_name.key("Lee"));

    let (u, created) = call!(
        &mut conn,
        User::update_or_create_with(
            key(),
            users::visits.eq(users::visits + 1),
            (
                users::email.eq("ann@x.io"),
                users::username.eq("ann"),
                users::visits.eq(1),
            ),
        )
    )
    .unwrap();
    assert!(created);
    assert_eq!(u.visits, 1);

    for expected in 2..=4 {
        let (u, created) = call!(
            &mut conn,
            User::update_or_create_with(
                key(),
                users::visits.eq(users::visits + 1),
                (
                    users::email.eq("never@x.io"),
                    users::username.eq("never"),
                    users::visits.eq(100),
                ),
            )
        )
        .unwrap();
        assert!(!created);
        assert_eq!((u.visits, u.email.as_str()), (expected, "ann@x.io"));
    }
    assert_eq!(count_users(&mut conn), 1);
}

/// Create values that cannot form a row (a NULL in a NOT NULL column, a
/// division by zero, a bad cast) never fail a call on an existing row
/// (`update_or_create_with`'s update, `get_or_create`'s hit), standalone or
/// inside the caller's transaction, which stays usable: like Django's
/// `create_defaults`, they are for creating only.
pub fn create_values_that_cannot_form_a_row_never_fail_a_call_on_an_existing_row<B: TestBackend>() {
    use diesel::dsl::sql;
    use diesel::sql_types::Integer;

    let db = B::Db::new("bad-create");
    let mut conn = db.connect();
    let bump_with = |c: &mut B::Conn, create: &'static str| {
        call!(
            c,
            User::update_or_create_with(
                users::email.key("ann@x.io"),
                users::visits.eq(users::visits + 1),
                (
                    names("ann", "Ann", "Lee"),
                    users::visits.eq(sql::<Integer>(create))
                ),
            )
        )
    };
    let get_with = |c: &mut B::Conn, create: &'static str| {
        call!(
            c,
            User::get_or_create(
                users::email.key("ann@x.io"),
                (
                    names("ann", "Ann", "Lee"),
                    users::visits.eq(sql::<Integer>(create))
                ),
            )
        )
    };
    let (u, created) = bump_with(&mut conn, "1").unwrap();
    assert_eq!((u.visits, created), (1, true));
    let bad = ["NULL", "1 / 0", "CAST('x' AS INTEGER)"];
    let mut visits = 1;
    for create in bad {
        let (u, created) = bump_with(&mut conn, create).unwrap_or_else(|e| panic!("{create}: {e}"));
        visits += 1;
        assert_eq!((u.visits, created), (visits, false), "{create}");
        let (u, created) = get_with(&mut conn, create).unwrap_or_else(|e| panic!("{create}: {e}"));
        assert_eq!(
            (u.visits, created),
            (visits, false),
            "get_or_create, {create}"
        );
    }
    crate::txn::begin(&mut conn);
    for create in bad {
        let (u, created) = bump_with(&mut conn, create).unwrap_or_else(|e| panic!("{create}: {e}"));
        visits += 1;
        assert_eq!(
            (u.visits, created),
            (visits, false),
            "{create} in a transaction"
        );
        let (u, created) = get_with(&mut conn, create).unwrap_or_else(|e| panic!("{create}: {e}"));
        assert_eq!(
            (u.visits, created),
            (visits, false),
            "get_or_create, {create} in a transaction"
        );
    }
    assert_eq!(count_users(&mut conn), 1, "the transaction stays usable");
    crate::txn::commit(&mut conn);
    assert_eq!(visits_of(&mut db.connect(), "ann@x.io"), Some(visits));
}

/// `lazy` defaults are computed only by the call that inserts the row:
/// never on a hit (standalone or inside a transaction), once on a miss,
/// and for `update_or_create_with` only when it creates (on PostgreSQL its
/// one upsert carries the create values, so there they are computed on every
/// call: [`TestBackend::LAZY_CREATE_VALUES_ON_UPDATE`]).
pub fn lazy_defaults_are_computed_only_when_the_row_is_created<B: TestBackend>() {
    use diesel_get_or_create::lazy;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let db = B::Db::new("lazy");
    let mut conn = db.connect();
    let computed = AtomicUsize::new(0);
    let defaults = || {
        lazy(|| {
            computed.fetch_add(1, Ordering::SeqCst);
            names("ann", "Ann", "Lee")
        })
    };
    let (ann, created) = call!(
        &mut conn,
        User::get_or_create(users::email.key("ann@x.io"), defaults())
    )
    .unwrap();
    assert_eq!((created, ann.username.as_str()), (true, "ann"));
    assert_eq!(
        computed.load(Ordering::SeqCst),
        1,
        "computed for the insert"
    );
    for _ in 0..3 {
        let (found, created) = call!(
            &mut conn,
            User::get_or_create(users::email.key("ann@x.io"), defaults())
        )
        .unwrap();
        assert_eq!((found, created), (ann.clone(), false));
    }
    crate::txn::transaction(&mut conn, |conn| {
        call!(
            conn,
            User::get_or_create(users::email.key("ann@x.io"), defaults())
        )
    })
    .unwrap();
    assert_eq!(computed.load(Ordering::SeqCst), 1, "never on a hit");

    let bump_lazily = |conn: &mut B::Conn, email: &'static str| {
        call!(
            conn,
            User::update_or_create_with(
                users::email.key(email),
                users::visits.eq(users::visits + 1),
                lazy(|| {
                    computed.fetch_add(1, Ordering::SeqCst);
                    (names(email, email, "L"), users::visits.eq(1))
                }),
            )
        )
        .unwrap()
    };
    let (bob, created) = bump_lazily(&mut conn, "bob@x.io");
    assert_eq!((created, bob.visits), (true, 1));
    assert_eq!(
        computed.load(Ordering::SeqCst),
        2,
        "computed for the insert"
    );
    let (bob, created) = bump_lazily(&mut conn, "bob@x.io");
    assert_eq!((created, bob.visits), (false, 2));
    let on_update = usize::from(B::LAZY_CREATE_VALUES_ON_UPDATE);
    assert_eq!(computed.load(Ordering::SeqCst), 2 + on_update, "an update");
}

/// An `AsChangeset` whose only field is `None`: it updates nothing.
#[derive(AsChangeset, Clone)]
#[diesel(table_name = users)]
struct Touch {
    visits: Option<i32>,
}

pub fn update_or_create_same_values_both_ways_and_with_derived_structs<B: TestBackend>() {
    let db = B::Db::new("uoc-same");
    let mut conn = db.connect();
    let (u, created) = call!(
        &mut conn,
        User::update_or_create(
            users::email.key("ann@x.io"),
            UserDefaults {
                username: "ann",
                first_name: "Ann",
                last_name: "Lee",
                visits: None,
            },
        )
    )
    .unwrap();
    assert!(created);
    assert_eq!(u.visits, 7, "None renders as the column default");

    let (u2, created) = call!(
        &mut conn,
        User::update_or_create(
            users::email.key("ann@x.io"),
            &UserDefaults {
                username: "annie",
                first_name: "Ann",
                last_name: "Lee",
                visits: Some(9),
            },
        )
    )
    .unwrap();
    assert!(!created);
    assert_eq!((u2.id, u2.username.as_str(), u2.visits), (u.id, "annie", 9));

    // An all-`None` changeset updates nothing: it is get_or_create.
    let (u3, created) = call!(
        &mut conn,
        User::update_or_create_with(users::email.key("ann@x.io"), Touch { visits: None }, (),)
    )
    .unwrap();
    assert!(!created);
    assert_eq!(u3, u2);
}

pub fn nullable_unique_column_takes_a_non_null_key<B: TestBackend>() {
    let db = B::Db::new("nullable");
    let mut conn = db.connect();
    let (d, created) = call!(
        &mut conn,
        Device::get_or_create(
            devices::label.key("kitchen"),
            (devices::vendor.eq("acme"), devices::serial.eq(1_i64 << 40)),
        )
    )
    .unwrap();
    assert!(created);
    assert_eq!(
        (d.label.as_deref(), d.serial),
        (Some("kitchen"), 1_i64 << 40)
    );
    let (again, created) = call!(
        &mut conn,
        Device::get_or_create(
            (
                devices::serial.key(1_i64 << 40),
                devices::vendor.key("acme"),
            ),
            (),
        )
    )
    .unwrap();
    assert!(!created);
    assert_eq!(again, d);
}

pub fn conflict_on_a_column_outside_the_key_is_an_error_and_touches_nothing<B: TestBackend>() {
    let db = B::Db::new("otherkey");
    let mut conn = db.connect();
    let original = ann(&mut conn);
    // Key `email` is new, but the defaults repeat Ann's `username`.
    let err = call!(
        &mut conn,
        User::get_or_create(users::email.key("bob@x.io"), names("ann", "Bob", "Ray"),)
    )
    .unwrap_err();
    crate::assert_unique_violation(&err);
    let err = call!(
        &mut conn,
        User::update_or_create_with(
            users::email.key("bob@x.io"),
            users::visits.eq(users::visits + 1),
            names("ann", "Bob", "Ray"),
        )
    )
    .unwrap_err();
    crate::assert_unique_violation(&err);
    assert_eq!(all_users(&mut conn), vec![original.clone()]);

    // Bob exists now: the same create values (Ann's `username`) must neither
    // fail the update of Bob's row nor touch Ann's (MySQL's `ON DUPLICATE KEY
    // UPDATE` may meet Ann's row first: its key check refuses it), standalone
    // and inside a transaction.
    let (bob, _) = call!(
        &mut conn,
        User::get_or_create(users::email.key("bob@x.io"), names("bob", "Bob", "Ray"))
    )
    .unwrap();
    for in_transaction in [false, true] {
        if in_transaction {
            crate::txn::begin(&mut conn);
        }
        let (u, created) = call!(
            &mut conn,
            User::update_or_create_with(
                users::email.key("bob@x.io"),
                users::visits.eq(users::visits + 1),
                names("ann", "Bob", "Ray"),
            )
        )
        .unwrap();
        assert_eq!((u.id, u.username.as_str(), created), (bob.id, "bob", false));
        if in_transaction {
            crate::txn::commit(&mut conn);
        }
    }
    let users = all_users(&mut conn);
    assert_eq!(users[0], original);
    assert_eq!((users[1].id, users[1].visits), (bob.id, bob.visits + 2));
}

pub fn defaults_that_repeat_a_key_column_are_refused_by_the_database<B: TestBackend>() {
    let db = B::Db::new("repeatkey");
    let mut conn = db.connect();
    let result = call!(
        &mut conn,
        User::get_or_create(
            users::email.key("ann@x.io"),
            (
                users::email.eq("other@x.io"),
                users::username.eq("ann"),
                users::first_name.eq("Ann"),
                users::last_name.eq("Lee"),
            ),
        )
    );
    let err = result.unwrap_err();
    assert!(B::is_repeated_column_error(&err), "{err:?}");
    assert_eq!(count_users(&mut conn), 0);

    // As create values they are only for creating: an existing row is updated.
    let repeating = || (users::email.eq("other@x.io"), names("ann", "Ann", "Lee"));
    let err = bump_creating(&mut conn, repeating()).unwrap_err();
    assert!(B::is_repeated_column_error(&err), "{err:?}");
    ann(&mut conn);
    let (u, created) = bump_creating(&mut conn, repeating()).unwrap();
    assert_eq!(
        (u.email.as_str(), u.visits, created),
        ("ann@x.io", 1, false)
    );
    assert_eq!(count_users(&mut conn), 1);
}

/// `update_or_create_with(users::email.key("ann@x.io"), visits + 1, create)`.
fn bump_creating<C: crate::backend::AsConnRef>(
    conn: &mut C,
    create: (diesel::dsl::Eq<users::email, &'static str>, Names<'static>),
) -> QueryResult<(User, bool)> {
    call!(
        conn,
        User::update_or_create_with(
            users::email.key("ann@x.io"),
            users::visits.eq(users::visits + 1),
            create,
        )
    )
}

pub fn inside_an_outer_transaction_which_stays_usable_after_an_error<B: TestBackend>() {
    let db = B::Db::new("txn");
    let mut conn = db.connect();
    let original = ann(&mut conn);
    crate::txn::transaction(&mut conn, |conn| {
        let (bob, created) = call!(
            conn,
            User::get_or_create(users::email.key("bob@x.io"), names("bob", "Bob", "Ray"))
        )?;
        assert!(created);
        let err = call!(
            conn,
            User::get_or_create(users::email.key("carl@x.io"), names("ann", "Carl", "Oz"))
        )
        .unwrap_err();
        crate::assert_unique_violation(&err);
        // The transaction is still usable: read, update, and commit.
        let (bob2, created) = call!(
            conn,
            User::update_or_create_with(
                users::email.key("bob@x.io"),
                users::visits.eq(users::visits + 10),
                (),
            )
        )?;
        assert!(!created);
        assert_eq!(bob2.visits, bob.visits + 10);
        assert_eq!(query!(conn, get_result::<i64>, users::table.count())?, 2);
        Ok(())
    })
    .unwrap();
    assert_eq!(count_users(&mut conn), 2);

    // A rolled-back transaction takes the created row with it.
    let _ = crate::txn::transaction(&mut conn, |conn| {
        call!(
            conn,
            User::get_or_create(users::email.key("dan@x.io"), names("dan", "Dan", "Poe"))
        )?;
        Err::<(), _>(Error::RollbackTransaction)
    });
    assert_eq!(count_users(&mut conn), 2);
    assert_eq!(ann(&mut conn), original);
}

/// The statements of each call, standalone then inside the caller's
/// transaction, as [`TestBackend::STATEMENTS`] and
/// [`TestBackend::STATEMENTS_IN_TRANSACTION`] give them. This asserts the
/// "Statements per call" table of the crate documentation,
/// `diesel_get_or_create::guide::statements` (`runtime/src/guide/statements.md`). Returns the
/// standalone calls' statements, for the backend's own checks of their text.
pub fn statements_per_call<B: TestBackend>() -> StatementLogs {
    let db = B::Db::new("statements");
    let mut conn = db.connect();
    let counter = StatementCounter::install(&mut conn);
    let ann = || names("ann", "Ann", "Lee");
    let take = |call: &str, (expected, what): Count| {
        let log = counter.statements();
        assert_eq!(counter.take(), expected, "{call}: {what}: {log:?}");
        log
    };
    let Statements {
        miss,
        hit,
        update,
        create,
    } = B::STATEMENTS;

    let (_, created) = call!(
        &mut conn,
        User::get_or_create(users::email.key("ann@x.io"), ann())
    )
    .unwrap();
    assert!(created);
    let miss = take("miss", miss);
    call!(
        &mut conn,
        User::get_or_create(users::email.key("ann@x.io"), ann())
    )
    .unwrap();
    let hit = take("hit", hit);
    let (u, created) = bump(&mut conn, "ann@x.io", 1).unwrap();
    assert_eq!((created, u.visits), (false, 8));
    let update = take("update", update);
    let (u, created) = bump(&mut conn, "bob@x.io", 1).unwrap();
    assert_eq!((created, u.visits), (true, 1));
    let create = take("create", create);

    let in_transaction = B::STATEMENTS_IN_TRANSACTION;
    crate::txn::transaction(&mut conn, |conn| {
        counter.take();
        call!(
            conn,
            User::get_or_create(users::email.key("ann@x.io"), ann())
        )?;
        take("hit in a transaction", in_transaction.hit);
        call!(
            conn,
            User::get_or_create(users::email.key("cy@x.io"), names("cy", "Cy", "Oh"))
        )?;
        take("miss in a transaction", in_transaction.miss);
        bump(conn, "cy@x.io", 1)?;
        take("update in a transaction", in_transaction.update);
        bump(conn, "dan@x.io", 1)?;
        take("create in a transaction", in_transaction.create);
        Ok(())
    })
    .unwrap();
    StatementLogs {
        miss,
        hit,
        update,
        create,
    }
}

/// The statements each standalone call of [`statements_per_call`] sent.
#[derive(Debug)]
pub struct StatementLogs {
    pub miss: Vec<String>,
    pub hit: Vec<String>,
    pub update: Vec<String>,
    pub create: Vec<String>,
}
