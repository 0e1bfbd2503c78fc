//! Races and stress runs on MariaDB/MySQL at REPEATABLE READ (its default) and
//! READ COMMITTED, standalone and inside the callers' transactions, and the
//! naive strategies that must fail them (`suite::races`). Each run prints one
//! `RACE |` line of figures.

use diesel_get_or_create_tests::my::Mysql;

diesel_get_or_create_tests::race_tests! {
    Mysql;
    repeatable_read_standalone: RepeatableRead, Standalone;
    repeatable_read_in_transaction: RepeatableRead, InTransaction;
    read_committed_standalone: ReadCommitted, Standalone;
    read_committed_in_transaction: ReadCommitted, InTransaction;
}

// The same races of `get_or_create_all` (8 callers, the same 100 keys in
// orders of their own: `batch_races::*`), and the naive batch that must fail
// them; and races of overlapping batches (each caller about 50 of 100 keys,
// 5 of them twice: `batch_races::overlapping::*`) (`suite::batch_races`).
// MariaDB/MySQL deadlocks in the overlapping races (a multi-row INSERT that
// fails on a later key rolls back its earlier rows, and the callers waiting
// on them then deadlock): a known limitation, printed but not asserted; the
// crate runs a standalone call again, and a caller's transaction retries.
diesel_get_or_create_tests::batch_race_tests! {
    Mysql;
    repeatable_read_standalone: RepeatableRead, Standalone;
    repeatable_read_in_transaction: RepeatableRead, InTransaction;
    read_committed_standalone: ReadCommitted, Standalone;
    read_committed_in_transaction: ReadCommitted, InTransaction;
}
