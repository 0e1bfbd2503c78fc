//! Deterministic interleavings of two or three connections, the same on every
//! server backend: a lost race, a row lock held until commit, a connection
//! killed mid-call. The code waits until the server reports a connection as
//! blocked on a lock; there are no sleeps.

use diesel::prelude::*;
use diesel_get_or_create::prelude::*;

use crate::backend::{Mode, ServerBackend, TestDatabase};
use crate::call;
use crate::counter::StatementCounter;
use crate::models::*;
use crate::schema::*;
use crate::suite::{bump, count_users, visits_of};
use crate::txn;

fn get<C: crate::backend::AsConnRef>(
    conn: &mut C,
    email: &str,
    last_name: &str,
) -> QueryResult<(User, bool)> {
    call!(
        conn,
        User::get_or_create(users::email.key(email), names(email, email, last_name))
    )
}

/// Connection B inserts the key in an open transaction; A's insert blocks on
/// it; B commits; A must return B's row, in the number of statements the
/// backend's `LOST_RACE_CASES` gives.
pub fn lost_race_returns_the_winners_row<B: ServerBackend>() {
    let db = B::Db::new("lost_race");
    let mut observer = B::admin(&db);
    for &(isolation, mode, expected) in B::LOST_RACE_CASES {
        let email = format!("{}-{mode:?}@x.io", isolation.sql().replace(' ', "-"));
        let mut b = db.connect_at(isolation);
        let mut a = db.connect_at(isolation);
        let a_id = B::session_id(&mut a);
        let counter = StatementCounter::install(&mut a);
        txn::begin(&mut b);
        let (winner, created) = get(&mut b, &email, "W").unwrap();
        assert!(created);
        let (result, statements) = std::thread::scope(|s| {
            let a_call = s.spawn(|| {
                let call = |c: &mut B::Conn| get(c, &email, "L");
                let r = match mode {
                    Mode::InTransaction => txn::transaction(&mut a, call),
                    Mode::Standalone => call(&mut a),
                };
                (r, counter.statements())
            });
            B::wait_until_blocked(&mut observer, a_id);
            txn::commit(&mut b);
            a_call.join().unwrap()
        });
        let setting = format!("{} {mode:?}", isolation.sql());
        let (row, created) = result.unwrap_or_else(|e| panic!("{setting}: {e}"));
        assert!(!created, "{setting}");
        assert_eq!(row, winner, "{setting}");
        assert_eq!(statements.len(), expected, "{setting}: {statements:?}");
    }
}

/// Django ticket 29499: the row update_or_create touches stays locked until
/// the caller's transaction ends, and no concurrent change is lost.
pub fn update_or_create_locks_the_row_until_the_transaction_ends<B: ServerBackend>() {
    let db = B::Db::new("lock");
    for &isolation in B::LOCK_ISOLATIONS {
        let level = isolation.sql();
        let ann = format!("ann-{}@x.io", level.replace(' ', "-"));
        let bob = format!("bob-{}@x.io", level.replace(' ', "-"));
        let mut a = db.connect_at(isolation);
        let mut b = db.connect_at(isolation);
        let mut c = B::lock_prober(&db);
        txn::begin(&mut a);
        count_users(&mut a); // A's snapshot
        let (_, created) = bump(&mut b, &ann, 1).unwrap(); // B inserts concurrently
        assert!(created);
        assert_eq!(B::locked_read(&mut c, &ann).unwrap(), 1);
        let (u, created) = bump(&mut a, &ann, 10).unwrap();
        assert_eq!(
            (u.visits, created),
            (11, false),
            "{level}: A updates B's row"
        );
        for _ in 0..2 {
            let err = B::locked_read(&mut c, &ann).unwrap_err();
            assert!(B::is_lock_refusal(&err), "{level}: still locked: {err}");
        }
        txn::commit(&mut a);
        assert_eq!(
            B::locked_read(&mut c, &ann).unwrap(),
            11,
            "{level}: both writers' changes"
        );

        // A creates the row; B's concurrent update_or_create waits for A's commit
        // and applies its change on top.
        txn::begin(&mut a);
        let (_, created) = bump(&mut a, &bob, 1).unwrap();
        assert!(created);
        let b_id = B::session_id(&mut b);
        let mut observer = B::admin(&db);
        let b_result = std::thread::scope(|s| {
            let t = s.spawn(|| bump(&mut b, &bob, 100));
            B::wait_until_blocked(&mut observer, b_id);
            txn::commit(&mut a);
            t.join().unwrap()
        });
        let (u, created) = b_result.unwrap();
        assert_eq!((u.visits, created), (101, false), "{level}");
        assert_eq!(visits_of(&mut c, &bob), Some(101));
    }
}

/// A connection killed while its call waits for a lock: the call returns an
/// error and leaves nothing behind.
pub fn killed_connection_returns_an_error_and_leaves_no_partial_row<B: ServerBackend>() {
    let db = B::Db::new("kill");
    let mut admin = B::admin(&db);
    let mut holder = db.connect();

    // 1. get_or_create blocked on an uncommitted insert of the same key.
    txn::begin(&mut holder);
    call!(
        &mut holder,
        User::get_or_create(users::email.key("k@x.io"), names("k", "K", "K"))
    )
    .unwrap();
    let mut victim = db.connect();
    let id = B::session_id(&mut victim);
    let result = std::thread::scope(|s| {
        let t = s.spawn(|| {
            call!(
                &mut victim,
                User::get_or_create(users::email.key("k@x.io"), names("k2", "K2", "K2"))
            )
        });
        B::wait_until_blocked(&mut admin, id);
        B::kill_session(&mut admin, id);
        t.join().unwrap()
    });
    assert!(result.is_err(), "{result:?}");
    txn::rollback(&mut holder);
    assert_eq!(
        count_users(&mut admin),
        0,
        "neither the holder's nor the victim's row exists"
    );

    // 2. update_or_create blocked on a row lock, inside the victim's transaction.
    bump(&mut admin, "k@x.io", 1).unwrap();
    txn::begin(&mut holder);
    bump(&mut holder, "k@x.io", 1).unwrap();
    let mut victim = db.connect();
    let id = B::session_id(&mut victim);
    let result = std::thread::scope(|s| {
        let t = s.spawn(|| {
            txn::transaction(&mut victim, |v| {
                get(v, "other@x.io", "O")?;
                bump(v, "k@x.io", 100)
            })
        });
        B::wait_until_blocked(&mut admin, id);
        B::kill_session(&mut admin, id);
        t.join().unwrap()
    });
    assert!(result.is_err(), "{result:?}");
    txn::commit(&mut holder);
    assert_eq!(
        visits_of(&mut admin, "k@x.io"),
        Some(2),
        "only the holder's change"
    );
    assert_eq!(
        visits_of(&mut admin, "other@x.io"),
        None,
        "the victim's transaction left nothing"
    );
}

/// Pooled connections (r2d2, or deadpool) race like plain ones, and the crate sees the
/// transaction opened on a pooled connection: an error inside it leaves it
/// usable (on PostgreSQL that takes the savepoint).
pub fn pooled_connections_race_and_keep_transactions_usable<B: ServerBackend>() {
    let db = B::Db::new("pool");
    let pool = B::pool(&db, 8);
    let barrier = std::sync::Barrier::new(8);
    let results: Vec<(i32, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let mut conn = B::checkout(&pool);
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    call!(
                        &mut conn,
                        User::get_or_create(users::email.key("pool@x.io"), names("pool", "P", "Q"))
                    )
                    .map(|(u, created)| (u.id, created))
                    .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|(_, created)| *created).count(),
        1,
        "{results:?}"
    );
    assert!(
        results.iter().all(|(id, _)| *id == results[0].0),
        "{results:?}"
    );

    let mut conn = B::checkout(&pool);
    txn::transaction(&mut conn, |conn| {
        let err = call!(
            conn,
            User::get_or_create(users::email.key("other@x.io"), names("pool", "O", "O"))
        )
        .unwrap_err();
        crate::assert_unique_violation(&err);
        let (_, created) = bump(conn, "after@x.io", 1)?;
        assert!(created, "the transaction is still usable");
        Ok(())
    })
    .unwrap();
    assert_eq!(visits_of(&mut conn, "after@x.io"), Some(1));
}
