//! What the server backends' algorithms share (PostgreSQL, MySQL): a
//! transaction or savepoint around a step, and the budget of unique
//! violations on other indexes.

use diesel::result::Error;
use diesel::QueryResult;

use super::Io;

/// Open a transaction (a savepoint inside the caller's) when `wrap` is true.
pub(crate) async fn begin_if<E: Io>(io: &mut E, wrap: bool) -> QueryResult<()> {
    if wrap {
        io.begin().await
    } else {
        Ok(())
    }
}

/// End what [`begin_if`] opened, as Diesel's `transaction` does: commit
/// after a success, roll back after an error and return that error (or the
/// rollback's own error, if it failed otherwise than by a broken transaction
/// manager).
pub(crate) async fn end_if<E: Io, R>(
    io: &mut E,
    wrap: bool,
    result: QueryResult<R>,
) -> QueryResult<R> {
    if !wrap {
        return result;
    }
    match result {
        Ok(value) => io.commit().await.map(|()| value),
        Err(error) => match io.rollback().await {
            Ok(()) | Err(Error::BrokenTransactionManager) => Err(error),
            Err(rollback_error) => Err(rollback_error),
        },
    }
}

/// Unique violations that a call could not attribute to a concurrent insert
/// of its own key.
///
/// A racing insert of the same key can fail on *another* unique index (the
/// defaults of both callers carry the same `username`, say): PostgreSQL
/// resolves `ON CONFLICT` only for the key's index and raises any other
/// duplicate, and MySQL's error names an index, not columns. Such a failure
/// is only seen after the other insert committed, so the next attempt finds
/// the key's row. A second unique violation in a row, with no row for the key
/// in between, is a real conflict on another column, and its error is
/// returned.
#[derive(Default)]
pub(crate) struct Duplicates(u32);

impl Duplicates {
    /// Record a unique violation; `Err` (with it) if it is the second.
    pub(crate) fn not_on_key(&mut self, error: Error) -> QueryResult<()> {
        self.0 += 1;
        if self.0 >= 2 {
            Err(error)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_duplicate_is_returned() {
        let mut duplicates = Duplicates::default();
        assert!(duplicates.not_on_key(Error::NotFound).is_ok());
        assert!(matches!(
            duplicates.not_on_key(Error::NotFound),
            Err(Error::NotFound)
        ));
    }
}
