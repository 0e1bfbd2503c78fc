// Deterministic interleavings of two or three connections, the same on every
// server backend: a lost race, a row lock held until commit, a connection
// killed mid-call. The code waits until the server reports a connection as
// blocked on a lock; there are no sleeps.
//
// `include!`d after `shared/behaviour.rs` by each server backend's test file,
// which defines `session_id`, `wait_until_blocked` and `kill_session`,
// `LOST_RACE_CASES` (isolation, in the caller's transaction, statements
// expected), `LOCK_ISOLATIONS`, `lock_prober` and `locked_read` (a locking read
// that fails at once, or after 1 s, on a locked row).

fn visits_of(conn: &mut Conn, email: &str) -> Option<i32> {
    users::table
        .filter(users::email.eq(email))
        .select(users::visits)
        .first(conn)
        .optional()
        .unwrap()
}

fn bump(conn: &mut Conn, email: &str, by: i32) -> QueryResult<(User, bool)> {
    User::update_or_create_with(
        conn,
        users::email.key(email),
        users::visits.eq(users::visits + by),
        (names(email, email, "L"), users::visits.eq(by)),
    )
}

/// Connection B inserts the key in an open transaction; A's insert blocks on
/// it; B commits; A must return B's row, in the number of statements the
/// backend's `LOST_RACE_CASES` gives.
#[test]
fn lost_race_returns_the_winners_row() {
    let db = TestDb::new("lost_race");
    let mut observer = db.connect();
    for &(isolation, in_txn, expected) in LOST_RACE_CASES {
        let email = format!("{}-{in_txn}@x.io", isolation.replace(' ', "-"));
        let mut b = db.connect_at(isolation);
        let mut a = db.connect_at(isolation);
        let a_id = session_id(&mut a);
        let counter = StatementCounter::install(&mut a);
        txn::begin(&mut b);
        let (winner, created) = User::get_or_create(&mut b, users::email.key(&*email), names(&email, &email, "W")).unwrap();
        assert!(created);
        let (result, statements) = std::thread::scope(|s| {
            let a_call = s.spawn(|| {
                let call = |c: &mut Conn| {
                    User::get_or_create(c, users::email.key(&*email), names(&email, &email, "L"))
                };
                let r = if in_txn { a.transaction(call) } else { call(&mut a) };
                (r, counter.statements())
            });
            wait_until_blocked(&mut observer, a_id);
            txn::commit(&mut b);
            a_call.join().unwrap()
        });
        let (row, created) = result.unwrap_or_else(|e| panic!("{isolation} in_txn={in_txn}: {e}"));
        assert!(!created, "{isolation}");
        assert_eq!(row, winner, "{isolation}");
        assert_eq!(statements.len(), expected, "{isolation} in_txn={in_txn}: {statements:?}");
    }
}

/// Django ticket 29499: the row update_or_create touches stays locked until
/// the caller's transaction ends, and no concurrent change is lost.
#[test]
fn update_or_create_locks_the_row_until_the_transaction_ends() {
    let db = TestDb::new("lock");
    for &isolation in LOCK_ISOLATIONS {
        let ann = format!("ann-{}@x.io", isolation.replace(' ', "-"));
        let bob = format!("bob-{}@x.io", isolation.replace(' ', "-"));
        let mut a = db.connect_at(isolation);
        let mut b = db.connect_at(isolation);
        let mut c = lock_prober(&db);
        txn::begin(&mut a);
        users::table.count().get_result::<i64>(&mut a).unwrap(); // A's snapshot
        let (_, created) = bump(&mut b, &ann, 1).unwrap(); // B inserts concurrently
        assert!(created);
        assert_eq!(locked_read(&mut c, &ann).unwrap(), 1);
        let (u, created) = bump(&mut a, &ann, 10).unwrap();
        assert_eq!((u.visits, created), (11, false), "{isolation}: A updates B's row");
        for _ in 0..2 {
            let err = locked_read(&mut c, &ann).unwrap_err();
            assert!(is_lock_refusal(&err), "{isolation}: still locked: {err}");
        }
        txn::commit(&mut a);
        assert_eq!(locked_read(&mut c, &ann).unwrap(), 11, "{isolation}: both writers' changes");

        // A creates the row; B's concurrent update_or_create waits for A's commit
        // and applies its change on top.
        txn::begin(&mut a);
        let (_, created) = bump(&mut a, &bob, 1).unwrap();
        assert!(created);
        let b_id = session_id(&mut b);
        let mut observer = db.connect();
        let b_result = std::thread::scope(|s| {
            let t = s.spawn(|| bump(&mut b, &bob, 100));
            wait_until_blocked(&mut observer, b_id);
            txn::commit(&mut a);
            t.join().unwrap()
        });
        let (u, created) = b_result.unwrap();
        assert_eq!((u.visits, created), (101, false), "{isolation}");
        assert_eq!(visits_of(&mut c, &bob), Some(101));
    }
}

/// A connection killed while its call waits for a lock: the call returns an
/// error and leaves nothing behind.
#[test]
fn killed_connection_returns_an_error_and_leaves_no_partial_row() {
    let db = TestDb::new("kill");
    let mut admin = db.connect();
    let mut holder = db.connect();

    // 1. get_or_create blocked on an uncommitted insert of the same key.
    txn::begin(&mut holder);
    User::get_or_create(&mut holder, users::email.key("k@x.io"), names("k", "K", "K")).unwrap();
    let mut victim = db.connect();
    let id = session_id(&mut victim);
    let result = std::thread::scope(|s| {
        let t = s.spawn(|| User::get_or_create(&mut victim, users::email.key("k@x.io"), names("k2", "K2", "K2")));
        wait_until_blocked(&mut admin, id);
        kill_session(&mut admin, id);
        t.join().unwrap()
    });
    assert!(result.is_err(), "{result:?}");
    txn::rollback(&mut holder);
    let n: i64 = users::table.count().get_result(&mut admin).unwrap();
    assert_eq!(n, 0, "neither the holder's nor the victim's row exists");

    // 2. update_or_create blocked on a row lock, inside the victim's transaction.
    bump(&mut admin, "k@x.io", 1).unwrap();
    txn::begin(&mut holder);
    bump(&mut holder, "k@x.io", 1).unwrap();
    let mut victim = db.connect();
    let id = session_id(&mut victim);
    let result = std::thread::scope(|s| {
        let t = s.spawn(|| {
            victim.transaction::<_, Error, _>(|v| {
                User::get_or_create(v, users::email.key("other@x.io"), names("o", "O", "O"))?;
                bump(v, "k@x.io", 100)
            })
        });
        wait_until_blocked(&mut admin, id);
        kill_session(&mut admin, id);
        t.join().unwrap()
    });
    assert!(result.is_err(), "{result:?}");
    txn::commit(&mut holder);
    assert_eq!(visits_of(&mut admin, "k@x.io"), Some(2), "only the holder's change");
    assert_eq!(visits_of(&mut admin, "other@x.io"), None, "the victim's transaction left nothing");
}


/// Pooled connections (r2d2) race like plain ones, and the crate sees the
/// transaction opened on a pooled connection: an error inside it leaves it
/// usable (on PostgreSQL that takes the savepoint).
#[test]
fn pooled_connections_race_and_keep_transactions_usable() {
    let db = TestDb::new("pool");
    let pool = db.pool(8);
    let barrier = std::sync::Barrier::new(8);
    let results: Vec<(i32, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let mut conn = pool.get().unwrap();
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    User::get_or_create(&mut conn, users::email.key("pool@x.io"), names("pool", "P", "Q"))
                        .map(|(u, created)| (u.id, created))
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1, "{results:?}");
    assert!(results.iter().all(|(id, _)| *id == results[0].0), "{results:?}");

    let mut conn = pool.get().unwrap();
    conn.transaction::<_, Error, _>(|conn| {
        let err = User::get_or_create(conn, users::email.key("other@x.io"), names("pool", "O", "O")).unwrap_err();
        diesel_get_or_create_tests::assert_unique_violation(&err);
        let (_, created) = bump(conn, "after@x.io", 1)?;
        assert!(created, "the transaction is still usable");
        Ok(())
    })
    .unwrap();
    assert_eq!(visits_of(&mut conn, "after@x.io"), Some(1));
}
