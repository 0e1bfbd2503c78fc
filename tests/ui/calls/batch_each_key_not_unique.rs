use diesel::prelude::*;
use diesel_get_or_create::prelude::*;

diesel::table! {
    users (id) {
        id -> Integer,
        email -> Text,
        first_name -> Text,
        last_name -> Text,
        visits -> Integer,
        nick -> Nullable<Text>,
    }
}

#[derive(Clone, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = users)]
#[unique_together(first_name, last_name)]
struct User {
    id: i32,
    #[unique]
    email: String,
    first_name: String,
    last_name: String,
    visits: i32,
    #[unique]
    nick: Option<String>,
}

fn lookup(conn: &mut SqliteConnection) {
    // Each key with its own values: checked as one call's key is.
    let _ = User::update_or_create_all(
        conn,
        [3, 4].map(|v| (users::visits.key(v), users::nick.eq("n"))),
    );
}

fn main() {}
