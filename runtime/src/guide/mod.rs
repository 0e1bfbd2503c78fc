//! Guides: the topics longer than one item's documentation.
//!
//! Each operation's own documentation on [`GetOrCreate`](crate::GetOrCreate) says what it
//! does, what it returns, the statements it sends and the errors it returns. These pages
//! hold the rest:
//!
//! | page | what it holds |
//! |---|---|
//! | [`statements`] | the statements each call sends on each backend, and why those (the table the test suites assert) |
//! | [`transactions`] | standalone calls and calls inside your transaction, isolation levels, the errors returned, locks, sequences, SQLite's locking, async cancellation |
//! | [`retrying`] | [`transaction`](crate::transaction): your closure in a transaction, run again when the database aborts it |
//! | [`batches`] | the batch operations: repeated keys, ordering, chunks, deadlocks and what the race tests measured |
//! | [`schema`] | checking that the database has a unique index for each declared constraint, and the DDL that creates them |
//! | [`clusters`] | MariaDB Galera Cluster (tested), CockroachDB, YugabyteDB and Citus |
//! | [`testing`] | the properties the test suites check against real servers |

pub mod statements {
    #![doc = include_str!("statements.md")]
}

pub mod transactions {
    #![doc = include_str!("transactions.md")]
}

pub mod retrying {
    #![doc = include_str!("retrying.md")]
}

pub mod batches {
    #![doc = include_str!("batches.md")]
}

pub mod schema {
    #![doc = include_str!("schema.md")]
}

pub mod clusters {
    #![doc = include_str!("clusters.md")]
}

pub mod testing {
    #![doc = include_str!("testing.md")]
}
