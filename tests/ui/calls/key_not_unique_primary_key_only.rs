use diesel::prelude::*;
use diesel_get_or_create::prelude::*;

diesel::table! {
    users (id) {
        id -> Integer,
        email -> Text,
        visits -> Integer,
    }
}

// The model's only constraint is its primary key: `email` has no `#[unique]`.
#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = users)]
struct User {
    id: i32,
    email: String,
    visits: i32,
}

fn lookup(conn: &mut SqliteConnection) {
    let _ = User::get_or_create(conn, users::email.key("ann@x.io"), (users::visits.eq(0),));
}

fn main() {}
