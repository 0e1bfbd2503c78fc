// `#[get_or_create(crate = ..)]`: the derive names the runtime through the
// given path, for a renamed dependency or a re-export (as a path or, as in
// serde, a string).
use diesel::prelude::*;

mod db {
    pub use diesel_get_or_create as goc;
}

use db::goc::prelude::*;

diesel::table! {
    tags (id) {
        id -> Integer,
        name -> Text,
    }
}

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = tags)]
#[get_or_create(crate = crate::db::goc)]
struct Tag {
    id: i32,
    #[unique]
    name: String,
}

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = tags)]
#[get_or_create(crate = "self::db::goc")]
struct SameTag {
    id: i32,
    #[unique]
    name: String,
}

fn main() -> QueryResult<()> {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    diesel::sql_query("CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
        .execute(&mut conn)?;
    let (tag, created) = Tag::get_or_create(&mut conn, tags::name.key("rust"), ())?;
    assert!(created);
    let (same, created) = SameTag::get_or_create(&mut conn, tags::name.key("rust"), ())?;
    assert_eq!((same.id, created), (tag.id, false));
    Ok(())
}
