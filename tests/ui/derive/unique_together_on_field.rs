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
struct User {
    id: i32,
    #[unique_together(email, first_name)]
    email: String,
    first_name: String,
    last_name: String,
    visits: i32,
    nick: Option<String>,
}

fn main() {}
