//! The SQLite algorithms, driven by a script; the column-list parser.

use super::insert_column_names;

#[test]
fn parses_quoted_column_lists() {
    assert_eq!(
        insert_column_names("(`a`, `b``c`, `d e`) VALUES (?, ?, ?)"),
        ["a", "b`c", "d e"]
    );
    assert!(insert_column_names("DEFAULT VALUES").is_empty());
}

mod algorithms {
    //! Every branch of the SQLite algorithms, driven by a script: the steps
    //! they ask for, in order, and their result.

    use diesel::result::DatabaseErrorKind::{SerializationFailure, UniqueViolation};
    use diesel::sqlite::Sqlite;

    use crate::algorithm::{Algorithms, MAX_ATTEMPTS};
    use crate::driver::script::*;

    #[test]
    fn get_or_create_hit_miss_and_lost_race() {
        assert_eq!(
            get_or_create::<Sqlite>(false, vec![(Select, Row("ann"))]),
            Ok(("ann", false))
        );
        let miss = vec![
            (Select, NoRow),
            (CheckColumns, Done),
            (InsertReturning, Row("ann")),
        ];
        assert_eq!(get_or_create::<Sqlite>(false, miss), Ok(("ann", true)));
        let lost = vec![
            (Select, NoRow),
            (CheckColumns, Done),
            (InsertReturning, NoRow),
            (Select, Row("winner")),
        ];
        assert_eq!(get_or_create::<Sqlite>(false, lost), Ok(("winner", false)));
    }

    #[test]
    fn get_or_create_refuses_a_repeated_column_before_inserting() {
        let script = vec![
            (Select, NoRow),
            (
                CheckColumns,
                Fail(diesel::result::Error::QueryBuilderError("twice".into())),
            ),
        ];
        let (result, _) =
            Script::new(false, script).play(async |io| Sqlite::get_or_create(io).await);
        assert!(matches!(
            result,
            Err(diesel::result::Error::QueryBuilderError(_))
        ));
    }

    #[test]
    fn get_or_create_gives_up_on_a_vanishing_row_as_serialization_failure() {
        let mut script = vec![(Select, NoRow)];
        for _ in 0..MAX_ATTEMPTS {
            script.extend([
                (CheckColumns, Done),
                (InsertReturning, NoRow),
                (Select, NoRow),
            ]);
        }
        assert_eq!(
            get_or_create::<Sqlite>(false, script),
            Err((SerializationFailure, true))
        );
    }

    #[test]
    fn get_or_create_duplicate_on_another_index_is_returned() {
        let script = vec![
            (Select, NoRow),
            (CheckColumns, Done),
            (InsertReturning, Fail(unique_violation())),
        ];
        assert_eq!(
            get_or_create::<Sqlite>(false, script),
            Err((UniqueViolation, false))
        );
    }

    #[test]
    fn update_or_create_updates_or_inserts_or_updates_the_winner() {
        // The create values are checked (and built) only when the call inserts.
        let update = vec![(UpdateReturning, Row("ann"))];
        assert_eq!(
            update_or_create::<Sqlite>(false, update),
            Ok(("ann", false))
        );
        let create = vec![
            (UpdateReturning, NoRow),
            (CheckColumns, Done),
            (InsertReturning, Row("ann")),
        ];
        assert_eq!(update_or_create::<Sqlite>(false, create), Ok(("ann", true)));
        let lost = vec![
            (UpdateReturning, NoRow),
            (CheckColumns, Done),
            (InsertReturning, NoRow),
            (UpdateReturning, Row("winner")),
        ];
        assert_eq!(
            update_or_create::<Sqlite>(false, lost),
            Ok(("winner", false))
        );
    }

    #[test]
    fn update_or_create_gives_up_on_a_vanishing_row_as_serialization_failure() {
        let mut script = vec![];
        for _ in 0..MAX_ATTEMPTS {
            script.extend([
                (UpdateReturning, NoRow),
                (CheckColumns, Done),
                (InsertReturning, NoRow),
            ]);
        }
        assert_eq!(
            update_or_create::<Sqlite>(false, script),
            Err((SerializationFailure, true))
        );
    }

    #[test]
    fn update_or_create_with_an_empty_changeset_is_get_or_create() {
        assert_eq!(
            update_nothing::<Sqlite>(),
            (Ok(("ann", false)), vec![Select])
        );
    }
}
