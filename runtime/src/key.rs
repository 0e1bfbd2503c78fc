//! Lookup keys: `column.key(value)` and tuples of them.

use diesel::backend::Backend;
use diesel::expression::{AsExpression, TypedExpressionType};
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, IntoNotNullable, SqlType};
use diesel::{Column, ExpressionMethods, Insertable, QueryResult};

/// One column of a lookup key, built by [`KeyExpressionMethods::key`].
///
/// A `Key` is the column paired with a non-NULL value of its SQL type. It
/// filters (`column = value`) and inserts (`column` gets `value`), and tuples
/// of keys form composite lookups. You never name this type; it exists so that
/// the compiler can check, from the key's columns, that the lookup is covered
/// by a uniqueness constraint of the model.
///
/// Keys of one type compare by their values (`PartialEq`, `Ord`): the batch
/// operations use that order to find repeated keys and to insert new rows in
/// one order for every caller.
#[derive(Debug, Clone, Copy)]
pub struct Key<C, V> {
    column: C,
    value: V,
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
    /// must be a value of `T`, never NULL. It is sent as a bind parameter.
    fn key<V>(self, value: V) -> Key<Self, V>
    where
        Self: ExpressionMethods,
        Self::SqlType: SqlType + IntoNotNullable,
        <Self::SqlType as IntoNotNullable>::NotNullable: SqlType + TypedExpressionType,
        V: KeyValue<<Self::SqlType as IntoNotNullable>::NotNullable> + AsExpression<Self::SqlType>,
    {
        Key {
            column: self,
            value,
        }
    }
}

impl<C: Column> KeyExpressionMethods for C {}

impl<C, V: PartialEq> PartialEq for Key<C, V> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<C, V: Eq> Eq for Key<C, V> {}

impl<C, V: PartialOrd> PartialOrd for Key<C, V> {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

impl<C, V: Ord> Ord for Key<C, V> {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

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

impl<C, V, T> Insertable<T> for Key<C, V>
where
    C: ExpressionMethods,
    C::SqlType: SqlType + TypedExpressionType,
    V: AsExpression<C::SqlType>,
    diesel::dsl::Eq<C, V>: Insertable<T>,
{
    type Values = <diesel::dsl::Eq<C, V> as Insertable<T>>::Values;

    fn values(self) -> Self::Values {
        self.column.eq(self.value).values()
    }
}

/// One part of a lookup: a single [`Key`].
///
/// Implemented only by [`Key`]; tuples of parts are [`Lookup`]s.
pub trait KeyPart {
    /// The column this part compares.
    type Column: Column + 'static;
    /// The SQL type the value is bound as: the column's, as Diesel's
    /// `column.eq(value)` binds it.
    type SqlType: 'static;
}

impl<C, V> KeyPart for Key<C, V>
where
    C: Column + 'static,
{
    type Column = C;
    type SqlType = C::SqlType;
}

/// Renders one [`KeyPart`] for backend `DB`.
pub trait KeyPartFilter<DB: Backend>: KeyPart {
    /// Push `(column = $n)`.
    fn walk_eq<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()>;
    /// Push `$n`: the value alone.
    fn walk_value<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

impl<C, V, DB> KeyPartFilter<DB> for Key<C, V>
where
    DB: Backend + HasSqlType<<Self as KeyPart>::SqlType>,
    Self: KeyPart,
    C: QueryFragment<DB>,
    V: ToSql<<Self as KeyPart>::SqlType, DB>,
{
    fn walk_eq<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        // As Diesel renders `column.eq(value)`: `("table"."column" = $1)`.
        out.push_sql("(");
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" = ");
        out.push_bind_param::<<Self as KeyPart>::SqlType, V>(&self.value)?;
        out.push_sql(")");
        Ok(())
    }

    fn walk_value<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_bind_param::<<Self as KeyPart>::SqlType, V>(&self.value)
    }
}

/// The key's assignments (`column.eq(value)`, or a tuple of them): what a
/// batch inserts next to each row's values.
pub trait LookupAssignments: Lookup {
    /// `column.eq(value)`, or a tuple of them in written order.
    type Assignments;
    /// Turn the key into its assignments.
    fn assignments(self) -> Self::Assignments;
}

impl<C, V> LookupAssignments for Key<C, V>
where
    Self: Lookup,
    C: ExpressionMethods,
    C::SqlType: SqlType + TypedExpressionType,
    V: AsExpression<C::SqlType>,
{
    type Assignments = diesel::dsl::Eq<C, V>;

    fn assignments(self) -> Self::Assignments {
        self.column.eq(self.value)
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
    /// Push `$1, $2 ...`: the values, in the order of [`Lookup::Columns`].
    fn walk_values<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

/// The static query id of a lookup's filter (see [`QueryId`](diesel::query_builder::QueryId)).
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

impl<C, V> private::Sealed for Key<C, V> {}

impl<C: Column + 'static, V> Lookup for Key<C, V> {
    type Columns = (C,);
}

impl<C, V, DB: Backend> LookupFilter<DB> for Key<C, V>
where
    C: Column + 'static,
    Self: KeyPartFilter<DB>,
{
    fn walk_filter<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.walk_eq(out)
    }

    fn walk_values<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.walk_value(out)
    }
}

/// The query id of a key's filter: its column and its value's SQL type.
#[derive(Debug)]
pub struct KeyFilterId<C, ST>(core::marker::PhantomData<(C, ST)>);

impl<C, V> LookupQueryId for Key<C, V>
where
    Self: KeyPart,
{
    type QueryId = KeyFilterId<<Self as KeyPart>::Column, <Self as KeyPart>::SqlType>;
    const HAS_STATIC_QUERY_ID: bool = true;
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
            $($T: KeyPartFilter<DB>,)+
        {
            #[allow(unused_assignments)]
            fn walk_filter<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
                let mut first = true;
                $(
                    if !first {
                        out.push_sql(" AND ");
                    }
                    self.$idx.walk_eq(out.reborrow())?;
                    first = false;
                )+
                Ok(())
            }

            #[allow(unused_assignments)]
            fn walk_values<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
                let mut first = true;
                $(
                    if !first {
                        out.push_sql(", ");
                    }
                    self.$idx.walk_value(out.reborrow())?;
                    first = false;
                )+
                Ok(())
            }
        }

        impl<$($T),+> LookupQueryId for ($($T,)+)
        where
            $($T: LookupQueryId,)+
        {
            type QueryId = ($($T::QueryId,)+);
            const HAS_STATIC_QUERY_ID: bool = true $(&& $T::HAS_STATIC_QUERY_ID)+;
        }

        impl<$($T),+> LookupAssignments for ($($T,)+)
        where
            Self: Lookup,
            $($T: LookupAssignments,)+
        {
            type Assignments = ($($T::Assignments,)+);

            fn assignments(self) -> Self::Assignments {
                ($(self.$idx.assignments(),)+)
            }
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
