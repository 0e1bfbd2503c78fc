//! The guarantees on a 3-node MariaDB Galera cluster (multi-primary,
//! certification at COMMIT), with callers spread over the nodes: the races on
//! one missing key and the counter, standalone and inside the callers'
//! transactions (run by `diesel_get_or_create::transaction`), at
//! `wsrep_sync_wait` 0 and 1; and the loss of a node mid-run.
//!
//! The cluster is the one `scripts/galera.sh` starts (`scripts/test.sh` runs it)
//! and names in `GOC_GALERA_URLS`. Without it these tests fail, naming what is
//! missing. Each run prints one `GALERA |` line of figures; the table of the
//! run recorded in `docs/design-notes.md` is made of them.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_get_or_create::prelude::*;
use diesel_get_or_create_tests::counter::StatementCounter;
use diesel_get_or_create_tests::models::{names, User};
use diesel_get_or_create_tests::my::SCHEMA;
use diesel_get_or_create_tests::schema::users;

// --- the cluster ------------------------------------------------------------------------

/// The client URLs of the 3 nodes (database `test`), from `GOC_GALERA_URLS`.
fn urls() -> Vec<String> {
    let urls = std::env::var("GOC_GALERA_URLS").unwrap_or_else(|_| {
        panic!(
            "GOC_GALERA_URLS is not set: these tests need the local 3-node Galera cluster. \
             Run scripts/test.sh, or `. scripts/galera.sh && goc_galera`, which start it and \
             export its URLs (mysql://root@127.0.0.1:4306/test,..:4307/test,..:4308/test)."
        )
    });
    let urls: Vec<String> = urls.split(',').map(|u| u.trim().to_owned()).collect();
    assert_eq!(
        urls.len(),
        3,
        "GOC_GALERA_URLS must name the 3 nodes of the cluster, comma-separated; it is {urls:?}"
    );
    urls
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let base = &url[..url.rfind('/').expect("a mysql:// URL ends in /database")];
    format!("{base}/{database}")
}

fn establish(node: usize, url: &str) -> MysqlConnection {
    MysqlConnection::establish(url).unwrap_or_else(|e| {
        panic!(
            "Galera node {} is unreachable at {url} ({e}). Run scripts/galera.sh, which starts \
             the cluster (or scripts/test.sh, which runs it).",
            node + 1
        )
    })
}

/// The session settings of a test's callers.
#[derive(Debug, Clone, Copy)]
struct Session {
    /// `wsrep_sync_wait`: 1 makes every read wait until the node has applied
    /// the write sets the cluster had committed when the read began.
    sync_wait: u8,
    /// Streaming replication, one statement per fragment
    /// (`wsrep_trx_fragment_unit = 'statements'`, `wsrep_trx_fragment_size
    /// = 1`): each write is certified cluster-wide when it runs, not at
    /// `COMMIT`. Without it (Galera's default), MariaDB 10.11.19 leaves some
    /// brute-force-aborted sessions waiting for a reply that never comes.
    streaming: bool,
}

impl Session {
    const fn certified_per_statement(sync_wait: u8) -> Session {
        Session {
            sync_wait,
            streaming: true,
        }
    }

    const fn default_replication(sync_wait: u8) -> Session {
        Session {
            sync_wait,
            streaming: false,
        }
    }

    fn label(self) -> &'static str {
        if self.streaming {
            "per statement"
        } else {
            "at COMMIT"
        }
    }
}

/// How long the server waits for a silent client before it ends the
/// session: the bound on a call whose reply never comes.
const WAIT_TIMEOUT_S: u32 = 5;

/// A session on node `node` (0-based) of database `database`.
fn connect(node: usize, database: &str, session: Session) -> MysqlConnection {
    let url = with_database(&urls()[node], database);
    let mut conn = establish(node, &url);
    // A brute-force-aborted session whose reply never comes is ended by the
    // server after wait_timeout ("Server has gone away"): the bound on a
    // call. The test's own deadline is longer, so such a hang shows as an
    // error, not as a stuck run.
    conn.batch_execute(&format!(
        "SET SESSION wsrep_sync_wait = {}; SET SESSION wait_timeout = {WAIT_TIMEOUT_S}",
        session.sync_wait
    ))
    .unwrap();
    if session.streaming {
        conn.batch_execute(
            "SET SESSION wsrep_trx_fragment_unit = 'statements'; \
             SET SESSION wsrep_trx_fragment_size = 1",
        )
        .unwrap();
    }
    conn
}

/// The checks' sessions: reads wait for every committed write set.
const READER: Session = Session::default_replication(1);

/// A database of its own for one test, created through node 1 (DDL is
/// replicated in total order) and present on every node before `new` returns.
struct GaleraDb {
    database: String,
}

impl GaleraDb {
    fn new(name: &str) -> GaleraDb {
        let database = diesel_get_or_create_tests::db_name(&format!("galera_{name}"));
        let mut admin = establish(0, &urls()[0]);
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database}"
            ))
            .unwrap();
        let db = GaleraDb { database };
        connect(0, &db.database, READER)
            .batch_execute(SCHEMA)
            .unwrap();
        for node in 0..3 {
            // wsrep_sync_wait = 1: the read waits until the node applied the DDL.
            let n: i64 = users::table
                .count()
                .get_result(&mut connect(node, &db.database, READER))
                .unwrap();
            assert_eq!(n, 0);
        }
        db
    }

    fn connect(&self, node: usize, session: Session) -> MysqlConnection {
        connect(node, &self.database, session)
    }

    /// `(rows, visits)` of key `email` as each node sees it once it has
    /// applied every write set (`wsrep_sync_wait = 1`).
    fn on_every_node(&self, email: &str) -> Vec<(i64, i64)> {
        (0..3)
            .map(|node| {
                let visits: Vec<i32> = users::table
                    .filter(users::email.eq(email))
                    .select(users::visits)
                    .load(&mut self.connect(node, READER))
                    .unwrap();
                (
                    visits.len() as i64,
                    visits.iter().map(|&v| i64::from(v)).sum(),
                )
            })
            .collect()
    }
}

impl Drop for GaleraDb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            if let Ok(mut admin) = MysqlConnection::establish(&urls()[0]) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {}", self.database));
            }
        }
    }
}

/// The node-loss test stops a node: it runs alone, the others share the
/// cluster.
static CLUSTER: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared_cluster() -> std::sync::RwLockReadGuard<'static, ()> {
    CLUSTER.read().unwrap_or_else(|e| e.into_inner())
}

/// Ends the test process if the test is still running after `limit`: a call
/// must never hang, and CI must not wait for it.
struct Deadline(std::sync::mpsc::Sender<()>);

impl Deadline {
    fn new(what: &'static str, limit: Duration) -> Deadline {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                eprintln!("{what}: still running after {limit:?}; a call hangs. Aborting.");
                std::process::exit(101);
            }
        });
        Deadline(done)
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

// --- the calls --------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Standalone,
    /// Inside the caller's transaction, run by `diesel_get_or_create::transaction`.
    InTransaction,
}

type Op = fn(&mut MysqlConnection, &str) -> QueryResult<(User, bool)>;

fn get(conn: &mut MysqlConnection, key: &str) -> QueryResult<(User, bool)> {
    User::get_or_create(conn, users::email.key(key), names(key, key, "G"))
}

fn count(conn: &mut MysqlConnection, key: &str) -> QueryResult<(User, bool)> {
    User::update_or_create_with(
        conn,
        users::email.key(key),
        users::visits.eq(users::visits + 1),
        (names(key, key, "G"), users::visits.eq(1)),
    )
}

/// What a session sent and received, with times: printed for a call that
/// takes over 5 s.
#[derive(Clone, Default)]
struct Timeline(std::sync::Arc<Mutex<Vec<(Instant, String)>>>);

impl diesel::connection::Instrumentation for Timeline {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use diesel::connection::InstrumentationEvent::*;
        let line = match event {
            StartQuery { query, .. } => format!(
                "start {}",
                query.to_string().chars().take(60).collect::<String>()
            ),
            FinishQuery { error, .. } => format!("finish {error:?}"),
            _ => return,
        };
        self.0.lock().unwrap().push((Instant::now(), line));
    }
}

struct Both(StatementCounter, Timeline);

impl diesel::connection::Instrumentation for Both {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use diesel::connection::InstrumentationEvent::*;
        let copy = match &event {
            StartQuery { query, .. } => format!(
                "start {}",
                query.to_string().chars().take(60).collect::<String>()
            ),
            FinishQuery { error, .. } => format!("finish {error:?}"),
            _ => String::new(),
        };
        self.0.on_connection_event(event);
        if !copy.is_empty() {
            self.1 .0.lock().unwrap().push((Instant::now(), copy));
        }
    }
}

/// One caller: a session on one node, and what it saw.
struct Caller {
    node: usize,
    database: String,
    session: Session,
    conn: MysqlConnection,
    /// Calls that waited for a reply until the server ended the session
    /// (after which the caller connects again, as a pool would).
    hangs: usize,
    counter: StatementCounter,
    timeline: Timeline,
    /// Runs of the caller's transaction beyond the first, over all calls.
    retries: usize,
}

impl Caller {
    fn new(db: &GaleraDb, node: usize, session: Session) -> Caller {
        let counter = StatementCounter::default();
        let timeline = Timeline::default();
        let mut conn = db.connect(node, session);
        conn.set_instrumentation(Both(counter.clone(), timeline.clone()));
        Caller {
            node,
            database: db.database.clone(),
            session,
            conn,
            hangs: 0,
            counter,
            timeline,
            retries: 0,
        }
    }

    /// A new session, after the server ended this one.
    fn reconnect(&mut self) {
        self.conn = connect(self.node, &self.database, self.session);
        self.conn
            .set_instrumentation(Both(self.counter.clone(), self.timeline.clone()));
    }

    fn call(&mut self, mode: Mode, op: Op, key: &str) -> QueryResult<(User, bool)> {
        // As a pool checks a connection out: a session the server ended while
        // it sat idle (longer than wait_timeout, waiting for a hung caller)
        // is replaced.
        if !self.node_lost() && self.conn.batch_execute("DO 1").is_err() {
            self.reconnect();
        }
        self.counter.take();
        self.timeline.0.lock().unwrap().clear();
        let started = Instant::now();
        let result = self.call_inner(mode, op, key);
        if let Err(e) = &result {
            if e.to_string().contains("Server has gone away") && !self.node_lost() {
                // Bounded by wait_timeout: the server ended the session.
                assert!(
                    started.elapsed()
                        >= Duration::from_secs(WAIT_TIMEOUT_S.into()) - Duration::from_millis(500)
                );
                self.hangs += 1;
                let hung = {
                    // The statement that waited: the one whose answer came
                    // last after its start.
                    let timeline = self.timeline.0.lock().unwrap();
                    let mut longest = (Duration::ZERO, String::new());
                    for pair in timeline.windows(2) {
                        let ((t0, l0), (t1, _)) = (&pair[0], &pair[1]);
                        if l0.starts_with("start") && t1.duration_since(*t0) > longest.0 {
                            longest = (t1.duration_since(*t0), l0.clone());
                        }
                    }
                    longest.1
                };
                let _ = writeln!(
                    std::io::stderr(),
                    "GALERA | a call on node {} got no reply until wait_timeout ended its session: {}",
                    self.node + 1,
                    hung
                );
                self.reconnect();
            }
        }
        if started.elapsed() > Duration::from_secs(WAIT_TIMEOUT_S.into()) + Duration::from_secs(3) {
            let _ = writeln!(
                std::io::stderr(),
                "GALERA | slow call on node {}: {:?}, {:?}: {:#?}",
                self.node + 1,
                started.elapsed(),
                result.as_ref().map(|(u, _)| u.visits),
                self.timeline
                    .0
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(t, l)| format!("{:?} {l}", t.duration_since(started)))
                    .collect::<Vec<_>>()
            );
        }
        result
    }

    fn call_inner(&mut self, mode: Mode, op: Op, key: &str) -> QueryResult<(User, bool)> {
        match mode {
            Mode::Standalone => op(&mut self.conn, key),
            Mode::InTransaction => {
                let mut runs = 0;
                let result = diesel_get_or_create::transaction(&mut self.conn, |conn| {
                    runs += 1;
                    // The caller's transaction has read (and, at REPEATABLE
                    // READ, taken its snapshot) before the call.
                    conn.batch_execute("SELECT 1 FROM users LIMIT 1")?;
                    op(conn, key)
                });
                self.retries += usize::saturating_sub(runs, 1);
                result
            }
        }
    }

    /// Whether this caller's node was stopped on purpose (the node-loss
    /// test): its errors are not hangs.
    fn node_lost(&self) -> bool {
        NODE_DOWN.load(Ordering::SeqCst) && self.node == 2
    }

    /// Transactions the server had rolled back without reporting it, caught
    /// by the crate's guard (the `FOR UPDATE` read, or the retrying
    /// transaction's check before `COMMIT`).
    fn silent_rollbacks(&self) -> usize {
        self.counter
            .errors
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.starts_with("Subquery returns more than 1 row"))
            .count()
    }

    /// Statements the server aborted (a deadlock or a certification failure).
    fn aborted(&self) -> usize {
        self.counter
            .errors
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.starts_with("Deadlock"))
            .count()
    }
}

/// Set while the node-loss test has node 3 down.
static NODE_DOWN: AtomicBool = AtomicBool::new(false);

/// `n` callers, spread over the 3 nodes.
fn callers(db: &GaleraDb, n: usize, session: Session) -> Vec<Caller> {
    (0..n).map(|i| Caller::new(db, i % 3, session)).collect()
}

/// Every distinct error message the servers sent these callers (failed
/// statements, retried or not).
fn messages(callers: &[Caller]) -> BTreeSet<String> {
    callers
        .iter()
        .flat_map(|c| c.counter.errors.lock().unwrap().clone())
        // A lost insert race: every caller but one sees it, by design.
        .filter(|e| !e.starts_with("Duplicate entry"))
        .collect()
}

/// One line of figures, past the test harness's capture.
#[allow(clippy::too_many_arguments)]
fn report(
    scenario: &str,
    session: Session,
    mode: Mode,
    callers: usize,
    calls: usize,
    errors: usize,
    hangs: usize,
    retries: usize,
    aborted: usize,
    silent: usize,
    duplicates: i64,
    lost: i64,
    elapsed: Duration,
) {
    let mode = match mode {
        Mode::Standalone => "standalone",
        Mode::InTransaction => "in txn",
    };
    let _ = writeln!(
        std::io::stderr(),
        "GALERA | {scenario:<28} | certified {:<13} | sync_wait {} | {mode:<10} | callers {callers:>2} | calls {calls:>5} | errors {errors:>3} (of which hangs ended by wait_timeout {hangs:>2}) | caller retries {retries:>4} | aborted statements {aborted:>5} | silent rollbacks caught {silent:>2} | duplicates {duplicates:>2} | lost increments {lost:>3} | {:.1} s",
        session.label(),
        session.sync_wait,
        elapsed.as_secs_f64()
    );
}

// --- races on one missing key -----------------------------------------------------------

fn races(session: Session, mode: Mode) {
    let _cluster = shared_cluster();
    let _deadline = Deadline::new("galera races", Duration::from_secs(240));
    let db = GaleraDb::new(&format!(
        "races_{}_{}_{mode:?}",
        session.sync_wait, session.streaming
    ));
    let mut failures = Vec::new();
    for (name, op) in [
        ("get_or_create", get as Op),
        ("update_or_create", count as Op),
    ] {
        for (n, rounds) in [(3, 20), (9, 10), (30, 4)] {
            let started = Instant::now();
            let mut cs = callers(&db, n, session);
            let (mut errors, mut duplicates) = (0, 0);
            for round in 0..rounds {
                let key = format!("{name}-{n}-{round}@galera.test");
                let barrier = Barrier::new(n);
                let results: Vec<QueryResult<(User, bool)>> = std::thread::scope(|s| {
                    let handles: Vec<_> = cs
                        .iter_mut()
                        .map(|c| {
                            let (barrier, key) = (&barrier, &key);
                            s.spawn(move || {
                                barrier.wait();
                                c.call(mode, op, key)
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap()).collect()
                });
                let rows = db.on_every_node(&key);
                let mut creators = 0;
                let mut ids = BTreeSet::new();
                let mut errs = Vec::new();
                for result in results {
                    match result {
                        Ok((user, created)) => {
                            creators += usize::from(created);
                            ids.insert(user.id);
                            if user.email != key {
                                errs.push(format!("returned another key's row: {user:?}"));
                            }
                        }
                        // At Galera's default replication, a call whose reply
                        // never comes is ended by wait_timeout (counted as a
                        // hang); every other error fails the round.
                        Err(e)
                            if !session.streaming
                                && e.to_string().contains("Server has gone away") =>
                        {
                            errors += 1;
                        }
                        Err(e) => errs.push(e.to_string()),
                    }
                }
                errors += errs.len();
                duplicates += rows.iter().map(|&(r, _)| r - 1).max().unwrap_or(0).max(0);
                if rows.iter().any(|&(r, _)| r != 1)
                    || creators != 1
                    || ids.len() != 1
                    || !errs.is_empty()
                {
                    failures.push(format!(
                        "{name} x{n} round {round}: rows per node {rows:?}, creators {creators}, \
                         ids {ids:?}, errors {errs:?}"
                    ));
                }
            }
            report(
                &format!("{name}, missing key"),
                session,
                mode,
                n,
                n * rounds,
                errors,
                cs.iter().map(|c| c.hangs).sum(),
                cs.iter().map(|c| c.retries).sum(),
                cs.iter().map(Caller::aborted).sum(),
                cs.iter().map(Caller::silent_rollbacks).sum(),
                duplicates,
                0,
                started.elapsed(),
            );
            let seen = messages(&cs);
            if !seen.is_empty() {
                let _ = writeln!(std::io::stderr(), "GALERA | errors seen: {seen:?}");
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// --- the counter ------------------------------------------------------------------------

/// What the callers of a counter saw.
#[derive(Default)]
struct Tally {
    /// The `visits` each caller's successful calls returned, in order.
    returned: Vec<Vec<i32>>,
    creators: usize,
    errors: Vec<String>,
}

/// Every caller calls `count` on `key` `calls` times, all at once.
fn run_counter(cs: &mut [Caller], mode: Mode, key: &str, calls: usize) -> Tally {
    let barrier = Barrier::new(cs.len());
    let per_caller: Vec<Vec<QueryResult<(User, bool)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = cs
            .iter_mut()
            .map(|c| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    (0..calls).map(|_| c.call(mode, count, key)).collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut tally = Tally::default();
    for results in per_caller {
        let mut mine = Vec::new();
        for result in results {
            match result {
                Ok((user, created)) => {
                    tally.creators += usize::from(created);
                    mine.push(user.visits);
                }
                Err(e) => tally.errors.push(e.to_string()),
            }
        }
        tally.returned.push(mine);
    }
    tally
}

/// Every returned row is the call's own write: each caller's values rise
/// strictly, and together the calls returned each of `1..=total` once.
fn check_own_writes(tally: &Tally, total: i64) -> Result<(), String> {
    for (i, mine) in tally.returned.iter().enumerate() {
        if mine.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!("caller {i} saw its counter go back: {mine:?}"));
        }
    }
    let mut all: Vec<i64> = tally
        .returned
        .iter()
        .flatten()
        .map(|&v| i64::from(v))
        .collect();
    all.sort_unstable();
    if all != (1..=total).collect::<Vec<_>>() {
        let distinct: BTreeSet<_> = all.iter().collect();
        return Err(format!(
            "the calls returned {} values ({} distinct, from {:?} to {:?}), not each of 1..={total} once",
            all.len(),
            distinct.len(),
            all.first(),
            all.last()
        ));
    }
    Ok(())
}

/// 30 callers x 20 increments of one counter. Every call must succeed; at
/// Galera's default replication, a call whose reply never comes is ended by
/// `wait_timeout` and is the only error allowed (its caller connects again).
/// Either way: one row on every node, one creator, no increment lost, and
/// every returned row the call's own write.
fn counter(session: Session, mode: Mode) {
    let _cluster = shared_cluster();
    let _deadline = Deadline::new("galera counter", Duration::from_secs(240));
    let db = GaleraDb::new(&format!(
        "counter_{}_{}_{mode:?}",
        session.sync_wait, session.streaming
    ));
    let (n, calls) = (30, 20);
    let key = "counter@galera.test";
    let started = Instant::now();
    let mut cs = callers(&db, n, session);
    let tally = run_counter(&mut cs, mode, key, calls);
    let hangs: usize = cs.iter().map(|c| c.hangs).sum();
    let succeeded = (n * calls - tally.errors.len()) as i64;
    let nodes = db.on_every_node(key);
    let (rows, total) = nodes[0];
    report(
        "update_or_create counter",
        session,
        mode,
        n,
        n * calls,
        tally.errors.len(),
        hangs,
        cs.iter().map(|c| c.retries).sum(),
        cs.iter().map(Caller::aborted).sum(),
        cs.iter().map(Caller::silent_rollbacks).sum(),
        rows - 1,
        succeeded - total,
        started.elapsed(),
    );
    let _ = writeln!(
        std::io::stderr(),
        "GALERA | errors seen: {:?}",
        messages(&cs)
    );
    let allowed = if session.streaming { 0 } else { hangs };
    assert!(
        tally.errors.len() <= allowed
            && tally
                .errors
                .iter()
                .all(|e| e.contains("Server has gone away")),
        "{} of {} calls failed ({hangs} hangs ended by wait_timeout), e.g. {:?}",
        tally.errors.len(),
        n * calls,
        &tally.errors[..tally.errors.len().min(5)]
    );
    assert!(
        nodes.iter().all(|&node| node == (1, succeeded)),
        "(rows, visits) per node: {nodes:?}, expected (1, {succeeded}): the calls that \
         succeeded are the increments"
    );
    assert_eq!(tally.creators, 1);
    check_own_writes(&tally, succeeded).unwrap();
}

#[test]
fn races_standalone_sync_wait_0() {
    races(Session::default_replication(0), Mode::Standalone)
}

#[test]
fn races_standalone_sync_wait_1() {
    races(Session::default_replication(1), Mode::Standalone)
}

#[test]
fn races_in_transaction_sync_wait_0() {
    races(Session::default_replication(0), Mode::InTransaction)
}

#[test]
fn races_in_transaction_sync_wait_1() {
    races(Session::default_replication(1), Mode::InTransaction)
}

#[test]
fn counter_standalone_sync_wait_0() {
    counter(Session::certified_per_statement(0), Mode::Standalone)
}

#[test]
fn counter_standalone_sync_wait_1() {
    counter(Session::certified_per_statement(1), Mode::Standalone)
}

#[test]
fn counter_in_transaction_sync_wait_0() {
    counter(Session::certified_per_statement(0), Mode::InTransaction)
}

#[test]
fn counter_in_transaction_sync_wait_1() {
    counter(Session::certified_per_statement(1), Mode::InTransaction)
}

#[test]
fn counter_default_replication_standalone() {
    counter(Session::default_replication(0), Mode::Standalone)
}

#[test]
fn counter_default_replication_in_transaction() {
    counter(Session::default_replication(0), Mode::InTransaction)
}

// --- node loss --------------------------------------------------------------------------

/// `scripts/galera.sh`, which stops and starts a node.
fn galera_script(args: &[&str]) -> String {
    let script = std::env::var("GOC_GALERA_SCRIPT")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/galera.sh").into());
    let out = std::process::Command::new("bash")
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("could not run {script}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} {args:?} failed: {text}");
    text
}

/// How a call on a node that is shutting down or gone may fail: the server
/// closes the session, or refuses work while it leaves the cluster.
fn is_node_loss(message: &str) -> bool {
    [
        "Server has gone away",
        "Lost connection",
        "server shutdown in progress",
        "Server shutdown in progress",
        "Connection was killed",
        "WSREP has not yet prepared node for application use",
        "The transaction manager is broken",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// Callers on all 3 nodes increment one counter; node 3 is stopped mid-run.
/// The callers on nodes 1 and 2 keep succeeding; the callers on node 3 fail
/// with a node-loss error and never return a wrong row; node 3 rejoins (by
/// IST) and agrees with the others.
#[test]
fn node_loss_mid_run() {
    let _alone = CLUSTER.write().unwrap_or_else(|e| e.into_inner());
    let _deadline = Deadline::new("galera node loss", Duration::from_secs(240));
    let db = GaleraDb::new("node_loss");
    let key = "node-loss@galera.test";
    let mut cs = callers(&db, 9, Session::certified_per_statement(0));
    let successes = AtomicUsize::new(0);
    let stopped = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let results: Vec<(usize, Vec<i32>, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = cs
            .iter_mut()
            .map(|c| {
                let (successes, done) = (&successes, &done);
                s.spawn(move || {
                    let (mut mine, mut errors) = (Vec::new(), Vec::new());
                    while !done.load(Ordering::SeqCst) && errors.len() < 5 {
                        match c.call(Mode::Standalone, count, key) {
                            Ok((user, _)) => {
                                mine.push(user.visits);
                                successes.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                    (c.node, mine, errors)
                })
            })
            .collect();
        while successes.load(Ordering::SeqCst) < 150 {
            std::thread::sleep(Duration::from_millis(10));
        }
        NODE_DOWN.store(true, Ordering::SeqCst);
        galera_script(&["stop-node", "3"]);
        stopped.store(true, Ordering::SeqCst);
        let at_stop = successes.load(Ordering::SeqCst);
        while successes.load(Ordering::SeqCst) < at_stop + 300 {
            std::thread::sleep(Duration::from_millis(10));
        }
        done.store(true, Ordering::SeqCst);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let rejoin = galera_script(&["start-node", "3"]).trim().to_owned();
    NODE_DOWN.store(false, Ordering::SeqCst);
    let elapsed = started.elapsed();

    let ok: usize = results.iter().map(|(_, mine, _)| mine.len()).sum();
    let lost_node_errors: Vec<&String> = results
        .iter()
        .filter(|(node, _, _)| *node == 2)
        .flat_map(|(_, _, errors)| errors)
        .collect();
    let survivor_errors: Vec<&String> = results
        .iter()
        .filter(|(node, _, _)| *node != 2)
        .flat_map(|(_, _, errors)| errors)
        .collect();
    let nodes = db.on_every_node(key);
    let (rows, total) = nodes[0];
    let _ = writeln!(
        std::io::stderr(),
        "GALERA | node 3 stopped mid-run       | certified per statement | sync_wait 0 | standalone | callers  9 | calls {:>5} | errors on nodes 1-2 {} | errors on node 3 {} | total {total} on every node: {} | {rejoin} | {:.1} s",
        ok + lost_node_errors.len() + survivor_errors.len(),
        survivor_errors.len(),
        lost_node_errors.len(),
        nodes.iter().all(|&n| n == (1, total)),
        elapsed.as_secs_f64()
    );
    let _ = writeln!(
        std::io::stderr(),
        "GALERA | errors on node 3: {:?}",
        lost_node_errors.iter().collect::<BTreeSet<_>>()
    );
    assert!(
        survivor_errors.is_empty(),
        "calls on the surviving nodes failed: {survivor_errors:?}"
    );
    assert!(
        !lost_node_errors.is_empty(),
        "no call on node 3 failed: was it stopped?"
    );
    assert!(
        lost_node_errors.iter().all(|e| is_node_loss(e)),
        "calls on the lost node failed with unclear errors: {lost_node_errors:?}"
    );
    // By IST normally; by SST if scripts/galera.sh had to start the joiner again.
    assert!(rejoin.contains("rejoined by"), "{rejoin}");
    assert!(
        nodes.iter().all(|&n| n == (1, total)),
        "the nodes disagree: {nodes:?}"
    );
    // A call whose COMMIT reached the cluster as its node went down may have
    // counted without returning: at most one per node-3 caller.
    assert!(
        (ok as i64..=(ok + 3) as i64).contains(&total),
        "{ok} calls succeeded, the counter is {total}"
    );
    assert_eq!(rows, 1);
    // Every returned row is the call's own write.
    let mut all = BTreeSet::new();
    for (_, mine, _) in &results {
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "a caller's counter went back: {mine:?}"
        );
        for &v in mine {
            assert!(all.insert(v), "two calls returned {v}");
            assert!(i64::from(v) <= total);
        }
    }
    // The rejoined node serves calls again.
    let (user, created) = count(&mut db.connect(2, READER), key).unwrap();
    assert_eq!((i64::from(user.visits), created), (total + 1, false));
}
