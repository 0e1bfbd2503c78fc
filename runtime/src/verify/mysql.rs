//! MySQL and MariaDB: `information_schema.STATISTICS`, one row per column of
//! each index (`NON_UNIQUE = 0` for unique ones and the primary key).

use diesel::connection::LoadConnection;
use diesel::mysql::Mysql;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{Connection, QueryResult, QueryableByName, RunQueryDsl};

use super::{Introspect, SchemaBackend, TableName, UniqueIndex, Unusable};

fn quote(identifier: &str) -> String {
    format!("`{}`", identifier.replace('`', "``"))
}

impl SchemaBackend for Mysql {
    const CASE_INSENSITIVE: bool = true;

    fn create_unique_index(table: &TableName, name: &str, columns: &[&str]) -> String {
        let on = match &table.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(&table.name)),
            None => quote(&table.name),
        };
        let columns: Vec<String> = columns.iter().map(|c| quote(c)).collect();
        format!(
            "CREATE UNIQUE INDEX {} ON {on} ({});",
            quote(name),
            columns.join(", ")
        )
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    name: String,
    /// `NULL` for an expression part (MySQL 8 functional indexes).
    #[diesel(sql_type = Nullable<Text>)]
    column_name: Option<String>,
    #[diesel(sql_type = BigInt)]
    prefix: i64,
}

const TABLE_EXISTS: &str = "
    SELECT COUNT(*) AS n FROM information_schema.TABLES
     WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?";

const UNIQUE_INDEXES: &str = "
    SELECT INDEX_NAME AS name,
           COLUMN_NAME AS column_name,
           CAST(SUB_PART IS NOT NULL AS SIGNED) AS prefix
      FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND NON_UNIQUE = 0
     ORDER BY INDEX_NAME, SEQ_IN_INDEX";

impl<C> Introspect<C> for Mysql
where
    C: Connection<Backend = Mysql> + LoadConnection,
{
    fn unique_indexes(conn: &mut C, table: &TableName) -> QueryResult<Option<Vec<UniqueIndex>>> {
        let exists: Count = diesel::sql_query(TABLE_EXISTS)
            .bind::<Nullable<Text>, _>(table.schema.as_deref())
            .bind::<Text, _>(&table.name)
            .get_result(conn)?;
        if exists.n == 0 {
            return Ok(None);
        }
        let rows: Vec<Row> = diesel::sql_query(UNIQUE_INDEXES)
            .bind::<Nullable<Text>, _>(table.schema.as_deref())
            .bind::<Text, _>(&table.name)
            .load(conn)?;
        let mut indexes: Vec<UniqueIndex> = Vec::new();
        for row in rows {
            if indexes.last().is_none_or(|i| i.name != row.name) {
                indexes.push(UniqueIndex {
                    primary: row.name == "PRIMARY",
                    name: row.name.clone(),
                    columns: Vec::new(),
                    unusable: None,
                });
            }
            let index = indexes.last_mut().expect("pushed above");
            match row.column_name {
                Some(column) => index.columns.push(column),
                None => index.unusable = Some(Unusable::Expression),
            }
            if row.prefix != 0 && index.unusable.is_none() {
                index.unusable = Some(Unusable::Prefix);
            }
        }
        Ok(Some(indexes))
    }
}
