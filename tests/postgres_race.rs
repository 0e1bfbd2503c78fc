//! Races and stress runs on PostgreSQL at READ COMMITTED, REPEATABLE READ and
//! SERIALIZABLE, standalone and inside the callers' transactions, and the
//! naive strategies that must fail them (`suite::races`). Each run prints one
//! `RACE |` line of figures.

use diesel_get_or_create_tests::pg::Postgres;

diesel_get_or_create_tests::race_tests! {
    Postgres;
    read_committed_standalone: ReadCommitted, Standalone;
    read_committed_in_transaction: ReadCommitted, InTransaction;
    repeatable_read_standalone: RepeatableRead, Standalone;
    repeatable_read_in_transaction: RepeatableRead, InTransaction;
    serializable_standalone: Serializable, Standalone;
    serializable_in_transaction: Serializable, InTransaction;
}

// The same races of `get_or_create_all` (8 callers, the same 100 keys in
// orders of their own: `batch_races::*`), and the naive batch that must fail
// them; and races of overlapping batches (each caller about 50 of 100 keys,
// 5 of them twice: `batch_races::overlapping::*`) (`suite::batch_races`).
// No deadlock, in either race, at any level.
diesel_get_or_create_tests::batch_race_tests! {
    Postgres;
    read_committed_standalone: ReadCommitted, Standalone;
    read_committed_in_transaction: ReadCommitted, InTransaction;
    repeatable_read_standalone: RepeatableRead, Standalone;
    repeatable_read_in_transaction: RepeatableRead, InTransaction;
    serializable_standalone: Serializable, Standalone;
    serializable_in_transaction: Serializable, InTransaction;
}
