//! Races on SQLite: separate connections to one database file, one thread
//! each, released together by a barrier; the shared race suite
//! (`suite::races`), as on the servers. SQLite has one isolation level
//! (its transactions are serializable).
//!
//! The same harness runs this crate and a naive read-then-insert; the naive
//! strategy must fail the checks that this crate passes, which shows that
//! the races really happen here. Each run prints one `RACE |` line of figures.

use diesel_get_or_create_tests::sqlite::Sqlite;

diesel_get_or_create_tests::race_tests! {
    Sqlite;
    standalone: Serializable, Standalone;
    in_transaction: Serializable, InTransaction;
}

// The same races of `get_or_create_all` (8 callers, the same 100 keys in
// orders of their own: `batch_races::*`), and the naive batch that must fail
// them; and races of overlapping batches (each caller about 50 of 100 keys,
// 5 of them twice: `batch_races::overlapping::*`) (`suite::batch_races`).
// No deadlock, in either race.
diesel_get_or_create_tests::batch_race_tests! {
    Sqlite;
    standalone: Serializable, Standalone;
    in_transaction: Serializable, InTransaction;
}
