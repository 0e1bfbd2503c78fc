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
struct Visit {
    #[diesel(column_name = email)]
    visitor: String,
    visits: i32,
}
fn main() {}
