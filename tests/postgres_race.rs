//! Races and stress runs on PostgreSQL at READ COMMITTED, REPEATABLE READ and
//! SERIALIZABLE, standalone and inside the callers' transactions. Each run
//! prints one `RACE |` line of figures.

use diesel::PgConnection;
use diesel_get_or_create_tests::pg::TestDb;

type Conn = PgConnection;
const BACKEND: &str = "postgres";
const NAIVE_ISOLATION: &str = "READ COMMITTED";

include!("shared/races.rs");

stress_tests! {
    read_committed_standalone: "READ COMMITTED", false;
    read_committed_in_transaction: "READ COMMITTED", true;
    repeatable_read_standalone: "REPEATABLE READ", false;
    repeatable_read_in_transaction: "REPEATABLE READ", true;
    serializable_standalone: "SERIALIZABLE", false;
    serializable_in_transaction: "SERIALIZABLE", true;
}
