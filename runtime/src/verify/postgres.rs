//! PostgreSQL: `pg_index`, which backs every unique and primary key
//! constraint (`pg_constraint` rows point at these indexes).

use diesel::connection::LoadConnection;
use diesel::pg::Pg;
use diesel::sql_types::{Array, Bool, Text};
use diesel::{Connection, QueryResult, QueryableByName, RunQueryDsl};

use super::{Introspect, SchemaBackend, TableName, UniqueIndex, Unusable};

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
struct Found {
    #[diesel(sql_type = Bool)]
    found: bool,
}

#[derive(QueryableByName)]
struct Row {
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

impl<C> Introspect<C> for Pg
where
    C: Connection<Backend = Pg> + LoadConnection,
{
    fn unique_indexes(conn: &mut C, table: &TableName) -> QueryResult<Option<Vec<UniqueIndex>>> {
        let name = qualified(table);
        let found: Found = diesel::sql_query("SELECT to_regclass($1) IS NOT NULL AS found")
            .bind::<Text, _>(&name)
            .get_result(conn)?;
        if !found.found {
            return Ok(None);
        }
        let rows: Vec<Row> = diesel::sql_query(UNIQUE_INDEXES)
            .bind::<Text, _>(&name)
            .load(conn)?;
        Ok(Some(
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
        ))
    }
}
