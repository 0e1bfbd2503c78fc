// One typo, one error: the calls that use the intended key compile quietly.
use diesel::prelude::*;
use diesel_get_or_create::prelude::*;

diesel::table! {
    teams (id) {
        id -> Integer,
        org -> Integer,
        slug -> Text,
    }
}

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = teams)]
#[unique_together(org, slgu)]
struct Team {
    id: i32,
    org: i32,
    slug: String,
}

fn lookups(conn: &mut SqliteConnection) {
    let _ = Team::get_or_create(conn, (teams::org.key(1), teams::slug.key("core")), ());
    let _ = Team::update_or_create(conn, (teams::slug.key("core"), teams::org.key(1)), (teams::id.eq(1),));
}

fn main() {}
