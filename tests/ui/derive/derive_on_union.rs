diesel::table! {
    users (id) {
        id -> Integer,
        visits -> Integer,
    }
}

#[derive(diesel_get_or_create::GetOrCreate)]
union User {
    id: i32,
    visits: u32,
}

fn main() {}
