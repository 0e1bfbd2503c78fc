diesel::table! {
    users (id) {
        id -> Integer,
        visits -> Integer,
    }
}

#[derive(diesel_get_or_create::GetOrCreate)]
struct User;

fn main() {}
