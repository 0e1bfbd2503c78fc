//! Lookup keys: `column.key(value)` and tuples of them.

use diesel::backend::Backend;
use diesel::expression::{AsExpression, TypedExpressionType};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{IntoNotNullable, SqlType};
use diesel::{Column, ExpressionMethods, Insertable, QueryResult};

/// One column of a lookup key, built by [`KeyExpressionMethods::key`].
///
/// A `Key` is the column paired with a non-NULL value of its SQL type. It
/// filters (`column = value`) and inserts (`column` gets `value`), and tuples
/// of keys form composite lookups. You never name this type; it exists so that
/// the compiler can check, from the key's columns, that the lookup is covered
/// by a uniqueness constraint of the model.
#[derive(Debug, Clone, Copy)]
pub struct Key<C, E> {
    expr: E,
    column: core::marker::PhantomData<C>,
}

/// Adds `.key(value)` to every Diesel column.
///
/// ```
/// # use diesel::prelude::*;
/// # use diesel_get_or_create::prelude::*;
/// # diesel::table! { users (id) { id -> Integer, email -> Text, nick -> Nullable<Text> } }
/// let by_email = users::email.key("ann@example.com");
/// // A nullable column takes the non-null value type, so a NULL key cannot be written:
/// let by_nick = users::nick.key("ann");
/// ```
///
/// `users::nick.key(None::<String>)` does not compile: a unique column admits
/// any number of NULLs, so a NULL lookup would never find the row it inserted.
pub trait KeyExpressionMethods: Column + Sized {
    /// Pair this column with a value to look a row up by.
    ///
    /// The value is typed against the column's SQL type exactly as
    /// [`ExpressionMethods::eq`] is, except that for a `Nullable<T>` column it
    /// must be a value of `T`, never NULL.
    fn key<V>(self, value: V) -> Key<Self, diesel::dsl::Eq<Self, V>>
    where
        Self: ExpressionMethods,
        Self::SqlType: SqlType + IntoNotNullable,
        <Self::SqlType as IntoNotNullable>::NotNullable: SqlType + TypedExpressionType,
        V: KeyValue<<Self::SqlType as IntoNotNullable>::NotNullable> + AsExpression<Self::SqlType>,
    {
        Key {
            expr: self.eq(value),
            column: core::marker::PhantomData,
        }
    }
}

impl<C: Column> KeyExpressionMethods for C {}

/// A value that can stand in a lookup key for a column of SQL type `ST`
/// (always the column's non-null type): anything Diesel accepts in
/// `column.eq(value)` except NULL.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a key value for a column of SQL type `{ST}`",
    label = "expected a non-NULL value of SQL type `{ST}`",
    note = "a key value has the column's SQL type and is never NULL: a unique column admits \
            any number of NULLs, so a lookup by NULL would insert a new row on every call",
    note = "for a nullable column, pass the value itself (`\"ann\"`, not `Some(\"ann\")`)"
)]
pub trait KeyValue<ST> {}

impl<V, ST> KeyValue<ST> for V
where
    ST: SqlType + TypedExpressionType,
    V: AsExpression<ST>,
{
}

impl<C, E, T> Insertable<T> for Key<C, E>
where
    E: Insertable<T>,
{
    type Values = E::Values;

    fn values(self) -> Self::Values {
        self.expr.values()
    }
}

/// One part of a lookup: a single [`Key`].
///
/// Implemented only by [`Key`]; tuples of parts are [`Lookup`]s.
pub trait KeyPart {
    /// The column this part compares.
    type Column: Column + 'static;
    /// The comparison `column = value`, as Diesel renders it.
    type Expr;
    /// Borrow the comparison.
    fn expr(&self) -> &Self::Expr;
}

impl<C: Column + 'static, E> KeyPart for Key<C, E> {
    type Column = C;
    type Expr = E;

    fn expr(&self) -> &E {
        &self.expr
    }
}

/// A complete lookup: one [`Key`] or a tuple of keys, one per column.
///
/// [`Lookup::Columns`] is the tuple of column types the lookup names, in the
/// order written; the model's [`UniqueKey`] impls say which column tuples are
/// covered by a constraint.
///
/// It is sealed: `.key()` and tuples of keys are the only lookups.
///
/// [`UniqueKey`]: crate::UniqueKey
pub trait Lookup: Sized + private::Sealed {
    /// The columns this lookup names, as a tuple in written order.
    type Columns: ColumnTuple;
}

/// A tuple of Diesel columns, such as a lookup's [`Lookup::Columns`].
pub trait ColumnTuple: 'static {
    /// The columns' names, in tuple order.
    const NAMES: &'static [&'static str];
}

/// Renders a [`Lookup`] as a `WHERE` condition for backend `DB`.
pub trait LookupFilter<DB: Backend>: Lookup {
    /// Push `col1 = $1 AND col2 = $2 ...`.
    fn walk_filter<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

/// The static query id of a lookup's filter (see [`QueryId`]).
pub trait LookupQueryId {
    /// The id type of the rendered filter.
    type QueryId: 'static;
    /// Whether the filter's SQL is fully determined by its type.
    const HAS_STATIC_QUERY_ID: bool;
}

mod private {
    /// Seals [`Lookup`](super::Lookup).
    pub trait Sealed {}
}

impl<C, E> private::Sealed for Key<C, E> {}

impl<C: Column + 'static, E> Lookup for Key<C, E> {
    type Columns = (C,);
}

impl<C: Column + 'static, E: QueryFragment<DB>, DB: Backend> LookupFilter<DB> for Key<C, E> {
    fn walk_filter<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.expr.walk_ast(out)
    }
}

impl<C: Column, E: QueryId> LookupQueryId for Key<C, E> {
    type QueryId = E::QueryId;
    const HAS_STATIC_QUERY_ID: bool = E::HAS_STATIC_QUERY_ID;
}

macro_rules! tuple_lookup {
    ($($T:ident . $idx:tt),+) => {
        impl<$($T: Column + 'static),+> ColumnTuple for ($($T,)+) {
            const NAMES: &'static [&'static str] = &[$($T::NAME),+];
        }

        impl<$($T: KeyPart),+> private::Sealed for ($($T,)+) {}

        impl<$($T: KeyPart),+> Lookup for ($($T,)+) {
            type Columns = ($($T::Column,)+);
        }

        impl<DB: Backend, $($T),+> LookupFilter<DB> for ($($T,)+)
        where
            $($T: KeyPart, $T::Expr: QueryFragment<DB>,)+
        {
            #[allow(unused_assignments)]
            fn walk_filter<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
                let mut first = true;
                $(
                    if !first {
                        out.push_sql(" AND ");
                    }
                    self.$idx.expr().walk_ast(out.reborrow())?;
                    first = false;
                )+
                Ok(())
            }
        }

        impl<$($T),+> LookupQueryId for ($($T,)+)
        where
            $($T: KeyPart, $T::Expr: QueryId,)+
        {
            type QueryId = ($(<$T::Expr as QueryId>::QueryId,)+);
            const HAS_STATIC_QUERY_ID: bool = true $(&& <$T::Expr as QueryId>::HAS_STATIC_QUERY_ID)+;
        }
    };
}

tuple_lookup!(A.0);
tuple_lookup!(A.0, B.1);
tuple_lookup!(A.0, B.1, C.2);
tuple_lookup!(A.0, B.1, C.2, D.3);
tuple_lookup!(A.0, B.1, C.2, D.3, E.4);
tuple_lookup!(A.0, B.1, C.2, D.3, E.4, F.5);
tuple_lookup!(A.0, B.1, C.2, D.3, E.4, F.5, G.6);
tuple_lookup!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7);
