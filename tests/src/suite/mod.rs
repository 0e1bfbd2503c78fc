//! The suites every backend runs, as functions generic over the backend
//! ([`TestBackend`](crate::backend::TestBackend),
//! [`ServerBackend`](crate::backend::ServerBackend)).
//!
//! A backend's test file gets one `#[test]` per test of a suite with
//! [`suite_tests!`](crate::suite_tests): `suite_tests!(Postgres, behaviour);`,
//! and the race tests with [`race_tests!`](crate::race_tests).

use diesel::prelude::*;
use diesel_get_or_create::prelude::*;

use crate::backend::AsConnRef;
use crate::models::{names, User};
use crate::schema::users;
use crate::{call, query};

pub mod batch;
pub mod batch_races;
pub mod batch_update;
pub mod behaviour;
pub mod constraints;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod interleavings;
pub mod races;

/// `#[test]` functions running tests of the suites on backend `$backend`:
///
/// - `suite_tests!(Backend, behaviour)`, `(.., constraints)`,
///   `(.., interleavings)`: every test of that suite (a test added to a suite
///   is added to its list here, and so runs on every backend);
/// - `suite_tests!(Backend, module: [name, ..])`: the tests named.
///
/// `constraints::drift_an_expression_index_does_not_count` is not in the
/// list: it is for the backends with expression indexes
/// ([`TestBackend::EXPRESSION_UNIQUE`](crate::backend::TestBackend::EXPRESSION_UNIQUE)).
#[macro_export]
macro_rules! suite_tests {
    ($backend:ty, behaviour) => {
        $crate::suite_tests!($backend, behaviour: [
            get_or_create_creates_then_finds_and_ignores_defaults_on_hit,
            no_defaults_form_inserts_the_key_alone,
            composite_key_in_both_orders_and_primary_key_lookup,
            renamed_columns_and_composite_primary_key,
            update_or_create_with_uses_update_values_or_create_values,
            create_values_that_cannot_form_a_row_never_fail_a_call_on_an_existing_row,
            lazy_defaults_are_computed_only_when_the_row_is_created,
            update_or_create_same_values_both_ways_and_with_derived_structs,
            nullable_unique_column_takes_a_non_null_key,
            conflict_on_a_column_outside_the_key_is_an_error_and_touches_nothing,
            defaults_that_repeat_a_key_column_are_refused_by_the_database,
            inside_an_outer_transaction_which_stays_usable_after_an_error,
        ]);
    };
    ($backend:ty, batch_update) => {
        $crate::suite_tests!($backend, batch_update: [
            batch_update_updates_existing_rows_creates_the_others_in_input_order,
            batch_update_each_values_lazy_create_and_empty_changeset,
            batch_update_each_key_gets_its_own_values,
            batch_update_statements_standalone_and_in_a_transaction,
            batch_update_larger_than_a_chunk,
            batch_update_conflict_on_another_unique_column_is_an_error,
        ]);
    };
    ($backend:ty, batch) => {
        $crate::suite_tests!($backend, batch: [
            batch_returns_input_order_creates_each_key_once_and_merges_repeats,
            batch_composite_keys_and_lazy_defaults,
            batch_larger_than_a_chunk_and_its_statements,
            batch_statements_standalone_and_in_a_transaction,
            batch_conflict_on_another_unique_column_is_an_error,
        ]);
    };
    ($backend:ty, constraints) => {
        $crate::suite_tests!($backend, constraints: [
            drift_the_test_schema_has_every_declared_constraint,
            drift_a_missing_constraint_is_an_error_with_its_fix,
            drift_a_composite_index_in_the_other_column_order_counts,
            drift_an_unusable_unique_index_does_not_count,
            drift_an_undeclared_unique_index_is_reported_not_refused,
            drift_the_emitted_ddl_makes_a_bare_table_pass,
            drift_a_missing_table_is_reported,
        ]);
    };
    ($backend:ty, interleavings) => {
        $crate::suite_tests!($backend, interleavings: [
            lost_race_returns_the_winners_row,
            update_or_create_locks_the_row_until_the_transaction_ends,
            killed_connection_returns_an_error_and_leaves_no_partial_row,
            pooled_connections_race_and_keep_transactions_usable,
        ]);
    };
    ($backend:ty, $module:ident: [$($name:ident),* $(,)?]) => {$(
        #[test]
        fn $name() {
            $crate::suite::$module::$name::<$backend>()
        }
    )*};
}

/// The number of users.
pub fn count_users<C: AsConnRef>(conn: &mut C) -> i64 {
    query!(conn, get_result::<i64>, users::table.count()).unwrap()
}

/// `visits` of the user `email`, if there is one.
pub fn visits_of<C: AsConnRef>(conn: &mut C, email: &str) -> Option<i32> {
    query!(
        conn,
        first::<i32>,
        users::table
            .filter(users::email.eq(email))
            .select(users::visits)
    )
    .optional()
    .unwrap()
}

/// Add `by` to the visits of user `email`, or create the user with `by` visits.
pub fn bump<C: AsConnRef>(conn: &mut C, email: &str, by: i32) -> QueryResult<(User, bool)> {
    call!(
        conn,
        User::update_or_create_with(
            users::email.key(email),
            users::visits.eq(users::visits + by),
            (names(email, email, "L"), users::visits.eq(by)),
        )
    )
}
