//! PostgreSQL: `pg_index`, which backs every unique and primary key
//! constraint (`pg_constraint` rows point at these indexes).

use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, Bool, Text};
use diesel::QueryableByName;

use super::{Schema, SchemaBackend, TableName, UniqueIndex, Unusable};

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

fn qualified(table: &TableName) -> String {
    match &table.schema {
        Some(schema) => format!("{}.{}", quote(schema), quote(&table.name)),
        None => quote(&table.name),
    }
}

impl SchemaBackend for Pg {
    const CASE_INSENSITIVE: bool = false;

    fn create_unique_index(table: &TableName, name: &str, columns: &[&str]) -> String {
        let columns: Vec<String> = columns.iter().map(|c| quote(c)).collect();
        format!(
            "CREATE UNIQUE INDEX {} ON {} ({});",
            quote(name),
            qualified(table),
            columns.join(", ")
        )
    }
}

#[derive(QueryableByName)]
pub struct Found {
    #[diesel(sql_type = Bool)]
    #[allow(dead_code)] // its existence is the answer
    found: bool,
}

#[derive(QueryableByName)]
pub struct Row {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Bool)]
    is_primary: bool,
    #[diesel(sql_type = Bool)]
    partial: bool,
    #[diesel(sql_type = Bool)]
    expression: bool,
    #[diesel(sql_type = Bool)]
    deferrable: bool,
    #[diesel(sql_type = Bool)]
    invalid: bool,
    #[diesel(sql_type = Array<Text>)]
    columns: Vec<String>,
}

// The key columns only (`INCLUDE` columns come after `indnkeyatts`), in index
// order; an expression has attribute number 0 and no `pg_attribute` row.
const UNIQUE_INDEXES: &str = "
    SELECT c.relname::text AS name,
           x.indisprimary AS is_primary,
           x.indpred IS NOT NULL AS partial,
           x.indexprs IS NOT NULL AS expression,
           NOT x.indimmediate AS deferrable,
           NOT (x.indisvalid AND x.indisready) AS invalid,
           ARRAY(SELECT a.attname::text
                   FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                  WHERE k.ord <= x.indnkeyatts
                  ORDER BY k.ord) AS columns
      FROM pg_index x
      JOIN pg_class c ON c.oid = x.indexrelid
     WHERE x.indrelid = to_regclass($1) AND x.indisunique
     ORDER BY c.relname";

impl Schema for Pg {
    type TableRow = Found;
    type IndexRow = Row;

    fn table_query(table: &TableName) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
        // No row when the table does not exist.
        diesel::sql_query("SELECT true AS found WHERE to_regclass($1) IS NOT NULL")
            .into_boxed()
            .bind::<Text, _>(qualified(table))
    }

    fn indexes_query(table: &TableName) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
        diesel::sql_query(UNIQUE_INDEXES)
            .into_boxed()
            .bind::<Text, _>(qualified(table))
    }

    fn unique_indexes(_: Vec<Found>, rows: Vec<Row>) -> Option<Vec<UniqueIndex>> {
        Some(
            rows.into_iter()
                .map(|r| UniqueIndex {
                    unusable: if r.invalid {
                        Some(Unusable::Invalid)
                    } else if r.partial {
                        Some(Unusable::Partial)
                    } else if r.expression {
                        Some(Unusable::Expression)
                    } else if r.deferrable {
                        Some(Unusable::Deferrable)
                    } else {
                        None
                    },
                    name: r.name,
                    columns: r.columns,
                    primary: r.is_primary,
                })
                .collect(),
        )
    }
}
