//! Races and stress runs on MariaDB/MySQL at REPEATABLE READ (its default) and
//! READ COMMITTED, standalone and inside the callers' transactions. Each run
//! prints one `RACE |` line of figures.

use diesel::MysqlConnection;
use diesel_get_or_create_tests::my::TestDb;

type Conn = MysqlConnection;
const BACKEND: &str = "mariadb";
const NAIVE_ISOLATION: &str = "REPEATABLE READ";

include!("shared/races.rs");

stress_tests! {
    repeatable_read_standalone: "REPEATABLE READ", false;
    repeatable_read_in_transaction: "REPEATABLE READ", true;
    read_committed_standalone: "READ COMMITTED", false;
    read_committed_in_transaction: "READ COMMITTED", true;
}
