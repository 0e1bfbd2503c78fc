// Behaviour of get_or_create / update_or_create, the same on every backend.
//
// `include!`d by each backend's test file, which defines `Conn` (its
// connection type), `TestDb`, `TAGS_DDL` (a `tags` table: serial `id`,
// unique `name`, `uses` defaulting to 0) and `is_repeated_column_error`.

fn ann(conn: &mut Conn) -> User {
    User::get_or_create(
        conn,
        users::email.key("ann@x.io"),
        (
            users::username.eq("ann"),
            users::first_name.eq("Ann"),
            users::last_name.eq("Lee"),
            users::visits.eq(0),
        ),
    )
    .unwrap()
    .0
}

fn count_users(conn: &mut Conn) -> i64 {
    users::table.count().get_result(conn).unwrap()
}

#[test]
fn get_or_create_creates_then_finds_and_ignores_defaults_on_hit() {
    let db = TestDb::new("goc");
    let mut conn = db.connect();
    let (created_row, created) = User::get_or_create(
        &mut conn,
        users::email.key("ann@x.io"),
        (
            users::username.eq("ann"),
            users::first_name.eq("Ann"),
            users::last_name.eq("Lee"),
            users::visits.eq(3),
        ),
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
    let (found, created) = User::get_or_create(
        &mut conn,
        users::email.key("ann@x.io"),
        (
            users::username.eq("someone-else"),
            users::first_name.eq("X"),
            users::last_name.eq("Y"),
            users::visits.eq(99),
        ),
    )
    .unwrap();
    assert!(!created);
    assert_eq!(found, created_row);
    let stored: User = users::table
        .select(User::as_select())
        .first(&mut conn)
        .unwrap();
    assert_eq!(stored, created_row);
    assert_eq!(count_users(&mut conn), 1);
}

#[test]
fn no_defaults_form_inserts_the_key_alone() {
    let db = TestDb::new("nodefaults");
    let mut conn = db.connect();
    let (m, created) = Membership::get_or_create(
        &mut conn,
        (
            memberships::org_id.key(1),
            memberships::user_name.key("ann"),
        ),
        memberships::role.eq("member"),
    )
    .unwrap();
    assert!(created);
    assert_eq!(m.seat, 0, "column default applies");

    // `()` defaults: the table's own defaults fill the rest.
    let db2 = TestDb::new("nodefaults2");
    let mut conn2 = db2.connect();
    diesel::sql_query(TAGS_DDL)
        .execute(&mut conn2)
        .unwrap();
    let (tag, created) = Tag::get_or_create(&mut conn2, tags::name.key("rust"), ()).unwrap();
    assert!(created);
    assert_eq!((tag.name.as_str(), tag.uses), ("rust", 0));
    let (again, created) = Tag::get_or_create(&mut conn2, tags::name.key("rust"), ()).unwrap();
    assert!(!created);
    assert_eq!(again, tag);
}

diesel::table! {
    tags (id) {
        id -> Integer,
        name -> Text,
        uses -> Integer,
    }
}

#[derive(Debug, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = tags)]
struct Tag {
    id: i32,
    #[unique]
    name: String,
    uses: i32,
}

#[test]
fn composite_key_in_both_orders_and_primary_key_lookup() {
    let db = TestDb::new("composite");
    let mut conn = db.connect();
    let original = ann(&mut conn);

    let (a, created) = User::get_or_create(
        &mut conn,
        (users::first_name.key("Ann"), users::last_name.key("Lee")),
        (users::email.eq("other@x.io"), users::username.eq("other")),
    )
    .unwrap();
    assert!(!created);
    assert_eq!(a, original);

    let (b, created) = User::get_or_create(
        &mut conn,
        (users::last_name.key("Lee"), users::first_name.key("Ann")),
        (users::email.eq("other@x.io"), users::username.eq("other")),
    )
    .unwrap();
    assert!(!created);
    assert_eq!(b, original);

    let (c, created) = User::get_or_create(
        &mut conn,
        (users::last_name.key("Lee"), users::first_name.key("Bob")),
        (users::email.eq("bob@x.io"), users::username.eq("bob")),
    )
    .unwrap();
    assert!(created);
    assert_eq!(
        (c.first_name.as_str(), c.last_name.as_str()),
        ("Bob", "Lee")
    );
    assert_eq!(c.visits, 7, "unset column takes the table default");

    let (by_id, created) = User::get_or_create(
        &mut conn,
        users::id.key(original.id),
        (
            users::email.eq("never@x.io"),
            users::username.eq("never"),
            users::first_name.eq("N"),
            users::last_name.eq("N"),
        ),
    )
    .unwrap();
    assert!(!created);
    assert_eq!(by_id, original);

    let (new_id, created) = User::get_or_create(
        &mut conn,
        users::id.key(1000),
        (
            users::email.eq("k@x.io"),
            users::username.eq("k"),
            users::first_name.eq("K"),
            users::last_name.eq("K"),
        ),
    )
    .unwrap();
    assert!(created);
    assert_eq!(new_id.id, 1000);
    assert_eq!(count_users(&mut conn), 3);
}

#[test]
fn renamed_columns_and_composite_primary_key() {
    let db = TestDb::new("renamed");
    let mut conn = db.connect();
    let (m, created) = Membership::get_or_create(
        &mut conn,
        (
            memberships::user_name.key("ann"),
            memberships::org_id.key(7),
        ),
        (memberships::role.eq("owner"), memberships::seat_no.eq(3)),
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
    let (m2, created) = Membership::update_or_create(
        &mut conn,
        (
            memberships::org_id.key(7),
            memberships::user_name.key("ann"),
        ),
        (memberships::role.eq("admin"), memberships::seat_no.eq(4)),
    )
    .unwrap();
    assert!(!created);
    assert_eq!((m2.role.as_str(), m2.seat), ("admin", 4));
    let seat: i32 = diesel::sql_query("SELECT seat AS seat_no FROM memberships")
        .get_result::<SeatRow>(&mut conn)
        .unwrap()
        .seat_no;
    assert_eq!(seat, 4, "the SQL column is `seat`");
}

#[derive(QueryableByName)]
struct SeatRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    seat_no: i32,
}

#[test]
fn update_or_create_with_uses_update_values_or_create_values() {
    let db = TestDb::new("uoc");
    let mut conn = db.connect();
    let key = || (users::first_name.key("Ann"), users::last_name.key("Lee"));

    let (u, created) = User::update_or_create_with(
        &mut conn,
        key(),
        users::visits.eq(users::visits + 1),
        (
            users::email.eq("ann@x.io"),
            users::username.eq("ann"),
            users::visits.eq(1),
        ),
    )
    .unwrap();
    assert!(created);
    assert_eq!(u.visits, 1);

    for expected in 2..=4 {
        let (u, created) = User::update_or_create_with(
            &mut conn,
            key(),
            users::visits.eq(users::visits + 1),
            (
                users::email.eq("never@x.io"),
                users::username.eq("never"),
                users::visits.eq(100),
            ),
        )
        .unwrap();
        assert!(!created);
        assert_eq!((u.visits, u.email.as_str()), (expected, "ann@x.io"));
    }
    assert_eq!(count_users(&mut conn), 1);
}

#[test]
fn update_or_create_same_values_both_ways_and_with_derived_structs() {
    let db = TestDb::new("uoc-same");
    let mut conn = db.connect();
    let (u, created) = User::update_or_create(
        &mut conn,
        users::email.key("ann@x.io"),
        UserDefaults {
            username: "ann",
            first_name: "Ann",
            last_name: "Lee",
            visits: None,
        },
    )
    .unwrap();
    assert!(created);
    assert_eq!(u.visits, 7, "None renders as the column default");

    let (u2, created) = User::update_or_create(
        &mut conn,
        users::email.key("ann@x.io"),
        &UserDefaults {
            username: "annie",
            first_name: "Ann",
            last_name: "Lee",
            visits: Some(9),
        },
    )
    .unwrap();
    assert!(!created);
    assert_eq!((u2.id, u2.username.as_str(), u2.visits), (u.id, "annie", 9));

    // An all-`None` changeset updates nothing: it is get_or_create.
    #[derive(AsChangeset, Clone)]
    #[diesel(table_name = users)]
    struct Touch {
        visits: Option<i32>,
    }
    let (u3, created) = User::update_or_create_with(
        &mut conn,
        users::email.key("ann@x.io"),
        Touch { visits: None },
        (),
    )
    .unwrap();
    assert!(!created);
    assert_eq!(u3, u2);
}

#[test]
fn nullable_unique_column_takes_a_non_null_key() {
    let db = TestDb::new("nullable");
    let mut conn = db.connect();
    let (d, created) = Device::get_or_create(
        &mut conn,
        devices::label.key("kitchen"),
        (devices::vendor.eq("acme"), devices::serial.eq(1_i64 << 40)),
    )
    .unwrap();
    assert!(created);
    assert_eq!(
        (d.label.as_deref(), d.serial),
        (Some("kitchen"), 1_i64 << 40)
    );
    let (again, created) = Device::get_or_create(
        &mut conn,
        (
            devices::serial.key(1_i64 << 40),
            devices::vendor.key("acme"),
        ),
        (),
    )
    .unwrap();
    assert!(!created);
    assert_eq!(again, d);
}

#[test]
fn conflict_on_a_column_outside_the_key_is_an_error_and_touches_nothing() {
    let db = TestDb::new("otherkey");
    let mut conn = db.connect();
    let original = ann(&mut conn);
    // Key `email` is new, but the defaults repeat Ann's `username`.
    let err = User::get_or_create(
        &mut conn,
        users::email.key("bob@x.io"),
        names("ann", "Bob", "Ray"),
    )
    .unwrap_err();
    diesel_get_or_create_tests::assert_unique_violation(&err);
    let err = User::update_or_create_with(
        &mut conn,
        users::email.key("bob@x.io"),
        users::visits.eq(users::visits + 1),
        names("ann", "Bob", "Ray"),
    )
    .unwrap_err();
    diesel_get_or_create_tests::assert_unique_violation(&err);
    let all: Vec<User> = users::table
        .select(User::as_select())
        .load(&mut conn)
        .unwrap();
    assert_eq!(all, vec![original]);
}

#[test]
fn defaults_that_repeat_a_key_column_are_refused_by_the_database() {
    let db = TestDb::new("repeatkey");
    let mut conn = db.connect();
    let result = User::get_or_create(
        &mut conn,
        users::email.key("ann@x.io"),
        (
            users::email.eq("other@x.io"),
            users::username.eq("ann"),
            users::first_name.eq("Ann"),
            users::last_name.eq("Lee"),
        ),
    );
    let err = result.unwrap_err();
    assert!(is_repeated_column_error(&err), "{err:?}");
    assert_eq!(count_users(&mut conn), 0);
}

#[test]
fn inside_an_outer_transaction_which_stays_usable_after_an_error() {
    let db = TestDb::new("txn");
    let mut conn = db.connect();
    let original = ann(&mut conn);
    conn.transaction::<_, Error, _>(|conn| {
        let (bob, created) = User::get_or_create(
            conn,
            users::email.key("bob@x.io"),
            names("bob", "Bob", "Ray"),
        )?;
        assert!(created);
        let err = User::get_or_create(
            conn,
            users::email.key("carl@x.io"),
            names("ann", "Carl", "Oz"),
        )
        .unwrap_err();
        diesel_get_or_create_tests::assert_unique_violation(&err);
        // The transaction is still usable: read, update, and commit.
        let (bob2, created) = User::update_or_create_with(
            conn,
            users::email.key("bob@x.io"),
            users::visits.eq(users::visits + 10),
            (),
        )?;
        assert!(!created);
        assert_eq!(bob2.visits, bob.visits + 10);
        assert_eq!(users::table.count().get_result::<i64>(conn)?, 2);
        Ok(())
    })
    .unwrap();
    assert_eq!(count_users(&mut conn), 2);

    // A rolled-back transaction takes the created row with it.
    let _ = conn.transaction::<(), Error, _>(|conn| {
        User::get_or_create(
            conn,
            users::email.key("dan@x.io"),
            names("dan", "Dan", "Poe"),
        )?;
        Err(Error::RollbackTransaction)
    });
    assert_eq!(count_users(&mut conn), 2);
    assert_eq!(ann(&mut conn), original);
}
