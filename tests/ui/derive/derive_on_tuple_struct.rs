diesel::table! {
    users (id) {
        id -> Integer,
        visits -> Integer,
    }
}

#[derive(diesel::Queryable, diesel_get_or_create::GetOrCreate)]
#[diesel(table_name = users)]
struct User(i32, i32);

fn main() {}
