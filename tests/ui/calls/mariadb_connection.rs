// Diesel 2.4's `MariadbConnection` (backend `Mariadb`) is not supported yet: the
// message says to connect with `MysqlConnection`, which runs every operation on MariaDB.
use diesel::prelude::*;
use diesel_get_or_create::prelude::*;

diesel::table! {
    users (id) {
        id -> Integer,
        email -> Text,
        visits -> Integer,
    }
}

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = users)]
struct User {
    id: i32,
    #[unique]
    email: String,
    visits: i32,
}

fn lookup(conn: &mut diesel::MariadbConnection) {
    let _ = User::get_or_create(conn, users::email.key("ann@x.io"), users::visits.eq(0));
}

fn main() {}
