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

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = users)]
#[unique_together = "first_name, last_name"]
struct User {
    id: i32,
    email: String,
    first_name: String,
    last_name: String,
    visits: i32,
    nick: Option<String>,
}
fn main() {}
