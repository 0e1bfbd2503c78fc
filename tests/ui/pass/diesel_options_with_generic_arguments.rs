// Values of `#[diesel(..)]` options the derive does not read pass through
// whole, commas inside generic arguments included: `deserialize_as` names a
// type with a lifetime, a type and a const argument, before `column_name`; the
// options of Diesel's other derives on the same struct pass through too.
use std::marker::PhantomData;

use diesel::deserialize::{self, Queryable};
use diesel::prelude::*;
use diesel::sql_types::Integer;
use diesel::sqlite::Sqlite;
use diesel_get_or_create::prelude::*;

diesel::table! {
    counters (id) {
        id -> Integer,
        name -> Text,
        hits -> Integer,
    }
}

struct Tagged<'a, T, const N: usize>(T, PhantomData<&'a ()>);

impl<const N: usize> Queryable<Integer, Sqlite> for Tagged<'static, i32, N> {
    type Row = i32;

    fn build(row: i32) -> deserialize::Result<Self> {
        Ok(Tagged(row * N as i32, PhantomData))
    }
}

impl<const N: usize> From<Tagged<'static, i32, N>> for i32 {
    fn from(tagged: Tagged<'static, i32, N>) -> i32 {
        tagged.0
    }
}

#[derive(Queryable, Selectable, Insertable, AsChangeset, Identifiable, GetOrCreate)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite), table_name = counters, primary_key(id))]
#[diesel(treat_none_as_null = true)]
struct Counter {
    #[diesel(skip_insertion)]
    id: i32,
    #[unique]
    name: String,
    #[diesel(deserialize_as = Tagged<'static, i32, 2>, column_name = hits)]
    doubled_hits: i32,
}

fn main() -> QueryResult<()> {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    diesel::sql_query(
        "CREATE TABLE counters (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, hits INTEGER NOT NULL)",
    )
    .execute(&mut conn)?;
    let (counter, created) =
        Counter::get_or_create(&mut conn, counters::name.key("a"), (counters::hits.eq(21),))?;
    assert_eq!((counter.doubled_hits, created), (42, true));
    Ok(())
}
