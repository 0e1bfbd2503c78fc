//! Checking declared constraints against the live schema, the same on every
//! backend.

use diesel::query_builder::QueryFragment;
use diesel::Connection;
use diesel_get_or_create::prelude::*;
use diesel_get_or_create::{
    ConstraintError, ConstraintKind, ConstraintReport, SchemaBackend, Unusable,
};

use crate::backend::AsConnRef;
use crate::backend::{TestBackend, TestDatabase};
use crate::call;
use crate::models::{Device, Gadget, Membership, User};
use crate::schema::gadgets;

fn exec<C: AsConnRef>(conn: &mut C, sql: &str) {
    crate::exec(conn, sql).unwrap();
}

/// `gadgets` with `constraints` appended to its columns (none unique).
fn gadgets<B: TestBackend>(db: &B::Db, constraints: &str) -> B::Conn {
    let mut conn = db.connect();
    exec(
        &mut conn,
        &format!(
            "CREATE TABLE gadgets (id INTEGER NOT NULL, code VARCHAR(50) NOT NULL, \
             maker VARCHAR(50) NOT NULL, model VARCHAR(50) NOT NULL, color VARCHAR(50){constraints})"
        ),
    );
    conn
}

fn verify_gadget<C: crate::backend::AsConnRef>(
    conn: &mut C,
) -> Result<ConstraintReport, ConstraintError> {
    call!(conn, Gadget::verify_constraints())
}

fn missing(result: Result<ConstraintReport, ConstraintError>) -> ConstraintReport {
    match result {
        Err(ConstraintError::Missing(report)) => {
            assert!(!report.is_ok());
            report
        }
        other => panic!("expected missing constraints, got {other:?}"),
    }
}

fn columns(report: &ConstraintReport) -> Vec<Vec<&'static str>> {
    report.models[0]
        .missing
        .iter()
        .map(|m| m.constraint.columns().to_vec())
        .collect()
}

pub fn drift_the_test_schema_has_every_declared_constraint<B: TestBackend>() {
    let db = B::Db::new("drift_schema");
    let mut conn = db.connect();
    let report = call!(
        &mut conn,
        verify_all(&[
            User::constraints(),
            Membership::constraints(),
            Device::constraints()
        ],)
    )
    .unwrap();
    let matched: Vec<usize> = report.models.iter().map(|m| m.matched.len()).collect();
    assert_eq!(matched, [4, 1, 3], "{report}");
    assert!(
        report
            .models
            .iter()
            .all(|m| m.table_found && m.missing.is_empty() && m.undeclared.is_empty()),
        "{report}"
    );
    // The renamed primary key columns of `Membership` are its SQL names.
    let membership = &report.models[1].matched[0];
    assert_eq!(membership.constraint.kind(), ConstraintKind::PrimaryKey);
    assert_eq!(membership.constraint.columns(), ["org_id", "user_name"]);
    assert!(membership.index.primary);
    assert!(
        report
            .to_string()
            .starts_with("8 of 8 declared uniqueness constraints"),
        "{report}"
    );
    assert!(call!(&mut conn, User::verify_constraints())
        .unwrap()
        .is_ok());
}

pub fn drift_a_missing_constraint_is_an_error_with_its_fix<B: TestBackend>() {
    let db = B::Db::new("drift_missing");
    let mut conn = gadgets::<B>(&db, ", PRIMARY KEY (id), UNIQUE (maker, model)");
    let report = missing(verify_gadget(&mut conn));
    assert_eq!(columns(&report), [["code"]]);
    let m = &report.models[0].missing[0];
    assert_eq!(m.constraint.kind(), ConstraintKind::Unique);
    assert!(m.unusable.is_empty());
    let text = report.to_string();
    assert!(text.contains("MISSING  #[unique] (code)"), "{text}");
    assert!(text.contains(&format!("fix: {}", m.create_sql)), "{text}");
    let error = ConstraintError::Missing(report.clone()).to_string();
    assert!(
        error.starts_with("the database does not enforce every declared uniqueness constraint"),
        "{error}"
    );

    exec(&mut conn, &report.missing_sql().join("\n"));
    let report = verify_gadget(&mut conn).unwrap();
    assert_eq!(report.models[0].matched.len(), 3, "{report}");
}

pub fn drift_a_composite_index_in_the_other_column_order_counts<B: TestBackend>() {
    let db = B::Db::new("drift_order");
    let mut conn = gadgets::<B>(
        &db,
        ", PRIMARY KEY (id), UNIQUE (code), UNIQUE (model, maker)",
    );
    let report = verify_gadget(&mut conn).unwrap();
    let pair = report.models[0]
        .matched
        .iter()
        .find(|m| m.constraint.kind() == ConstraintKind::UniqueTogether)
        .unwrap();
    assert_eq!(pair.constraint.columns(), ["maker", "model"]);
    assert_eq!(pair.index.columns, ["model", "maker"]);
}

pub fn drift_an_unusable_unique_index_does_not_count<B: TestBackend>() {
    let db = B::Db::new("drift_partial");
    let mut conn = gadgets::<B>(&db, ", PRIMARY KEY (id), UNIQUE (maker, model)");
    let (ddl, reason) = B::UNUSABLE_UNIQUE;
    exec(&mut conn, ddl);
    let report = missing(verify_gadget(&mut conn));
    assert_eq!(columns(&report), [["code"]]);
    let rejected = &report.models[0].missing[0].unusable;
    assert_eq!(rejected.len(), 1, "{report}");
    assert_eq!(rejected[0].unusable, Some(reason));
    assert!(report.to_string().contains("does not count"), "{report}");
    assert!(report.models[0].undeclared.is_empty(), "{report}");
}

/// Only for backends with expression indexes: panics on the others.
pub fn drift_an_expression_index_does_not_count<B: TestBackend>() {
    let ddl = B::EXPRESSION_UNIQUE.unwrap_or_else(|| {
        panic!(
            "{} has no expression indexes: do not run this test on it",
            B::NAME
        )
    });
    let db = B::Db::new("drift_expression");
    let mut conn = gadgets::<B>(&db, ", PRIMARY KEY (id), UNIQUE (maker, model)");
    exec(&mut conn, ddl);
    let report = missing(verify_gadget(&mut conn));
    assert_eq!(columns(&report), [["code"]]);
    // Its column list is empty (the expression has no column name), so it
    // is reported as undeclared rather than next to `code`.
    let extra = &report.models[0].undeclared;
    assert_eq!(extra.len(), 1, "{report}");
    assert_eq!(extra[0].unusable, Some(Unusable::Expression));
}

pub fn drift_an_undeclared_unique_index_is_reported_not_refused<B: TestBackend>() {
    let db = B::Db::new("drift_undeclared");
    let mut conn = gadgets::<B>(
        &db,
        ", PRIMARY KEY (id), UNIQUE (code), UNIQUE (maker, model), UNIQUE (color)",
    );
    let report = verify_gadget(&mut conn).unwrap();
    let extra = &report.models[0].undeclared;
    assert_eq!(extra.len(), 1, "{report}");
    assert_eq!(extra[0].columns, ["color"]);
    assert!(!extra[0].primary);
    let text = report.to_string();
    assert!(text.contains("3 of 3 declared uniqueness constraints have a unique index in the database (0 missing, 1 undeclared"), "{text}");
    assert!(text.contains("is not declared on Gadget"), "{text}");
}

/// The statements that create every constraint `Gadget` declares, for the
/// backend of `C`.
fn gadget_ddl<C: Connection>(_: &C) -> Vec<String>
where
    C::Backend: SchemaBackend,
    gadgets::table: QueryFragment<C::Backend>,
{
    Gadget::unique_constraints_sql::<C::Backend>()
}

/// [`gadget_ddl`] for an async connection.
#[cfg(feature = "async")]
fn gadget_ddl_async<C: diesel_async::AsyncConnectionCore>(_: &C) -> Vec<String>
where
    C::Backend: SchemaBackend,
    gadgets::table: QueryFragment<C::Backend>,
{
    Gadget::unique_constraints_sql::<C::Backend>()
}

pub fn drift_the_emitted_ddl_makes_a_bare_table_pass<B: TestBackend>() {
    let db = B::Db::new("drift_ddl");
    let mut conn = gadgets::<B>(&db, "");
    let report = missing(verify_gadget(&mut conn));
    assert_eq!(
        columns(&report),
        [vec!["id"], vec!["code"], vec!["maker", "model"]]
    );

    let ddl = crate::dispatch!(&mut conn, |c| gadget_ddl(c), async |a| gadget_ddl_async(a));
    assert_eq!(ddl.len(), 3);
    for statement in &ddl {
        exec(&mut conn, statement);
    }
    let report = verify_gadget(&mut conn).unwrap();
    assert_eq!(report.models[0].matched.len(), 3, "{report}");
    assert!(report.models[0].undeclared.is_empty(), "{report}");
}

pub fn drift_a_missing_table_is_reported<B: TestBackend>() {
    let db = B::Db::new("drift_no_table");
    let mut conn = db.connect();
    let report = missing(call!(
        &mut conn,
        verify_all(&[User::constraints(), Gadget::constraints()])
    ));
    assert!(report.models[0].missing.is_empty());
    assert!(!report.models[1].table_found);
    assert_eq!(report.models[1].missing.len(), 3);
    assert!(
        report.to_string().contains("table gadgets does not exist"),
        "{report}"
    );
}
