use diesel::prelude::*;
use diesel_get_or_create::prelude::*;

diesel::table! {
    tags (id) {
        id -> Integer,
        name -> Text,
    }
}

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = tags)]
#[get_or_create(krate = diesel_get_or_create)]
struct Tag {
    id: i32,
    #[unique]
    name: String,
}

fn main() {}
