// Columns named by Rust keywords, as Diesel's `table!` declares them
// (`r#type`), in every place the derive reads a column: a `#[unique]` field,
// `#[unique_together(..)]`, `column_name = "loop"` and `primary_key(r#fn)`.
use diesel::prelude::*;
use diesel_get_or_create::prelude::*;

diesel::table! {
    items (r#fn) {
        r#fn -> Integer,
        r#type -> Text,
        r#match -> Integer,
        r#loop -> Text,
    }
}

#[derive(Debug, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = items, primary_key(r#fn))]
#[unique_together(r#match, looped)]
struct Item {
    r#fn: i32,
    #[unique]
    r#type: String,
    r#match: i32,
    #[diesel(column_name = "loop")]
    looped: String,
}

fn main() -> QueryResult<()> {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    diesel::sql_query(
        r#"CREATE TABLE items ("fn" INTEGER PRIMARY KEY, "type" TEXT NOT NULL UNIQUE,
               "match" INTEGER NOT NULL, "loop" TEXT NOT NULL, UNIQUE ("match", "loop"))"#,
    )
    .execute(&mut conn)?;
    let (item, created) = Item::get_or_create(
        &mut conn,
        items::r#type.key("a"),
        (items::r#match.eq(1), items::r#loop.eq("x")),
    )?;
    assert!(created);
    let (same, created) = Item::get_or_create(
        &mut conn,
        (items::r#loop.key("x"), items::r#match.key(1)),
        (items::r#type.eq("b"),),
    )?;
    assert_eq!((same.r#fn, created), (item.r#fn, false));
    let (same, _) = Item::get_or_create(&mut conn, items::r#fn.key(item.r#fn), ())?;
    assert_eq!(same.r#type, "a");
    assert_eq!(same.looped, "x");
    Ok(())
}
