use diesel::prelude::*;
use diesel_get_or_create::prelude::*;

diesel::table! {
    visits (email) {
        email -> Text,
        page -> Text,
        count -> Integer,
    }
}

// The model's only constraint is one `#[unique]` (no `id` column).
#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = visits)]
struct Visit {
    #[unique]
    email: String,
    page: String,
    count: i32,
}

fn lookup(conn: &mut SqliteConnection) {
    let _ = Visit::get_or_create(conn, visits::page.key("/"), (visits::count.eq(0),));
}

fn main() {}
