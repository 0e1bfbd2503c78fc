//! Formatted expansions, one per shape of input (`cargo insta review` after
//! an intended change; `INSTA_UPDATE=always` to rewrite them).

use quote::quote;

use super::pretty;

#[test]
fn composite_constraint_in_every_order_and_duplicates_collapsed() {
    insta::assert_snapshot!(pretty(quote! {
        #[diesel(table_name = crate::schema::users)]
        #[unique_together(first_name, last_name)]
        #[unique_together(last_name, first_name)]
        struct User { #[unique] id: i32, first_name: String, last_name: String }
    }));
}

#[test]
fn kinds_and_column_names() {
    insta::assert_snapshot!(pretty(quote! {
        #[diesel(table_name = users)]
        #[unique_together(first_name, last_name)]
        struct User {
            id: i32,
            #[unique]
            #[diesel(column_name = mail)]
            email: String,
            first_name: String,
            last_name: String,
        }
    }));
}

#[test]
fn default_table_name_and_renamed_primary_key_columns() {
    insta::assert_snapshot!(pretty(quote! {
        #[diesel(primary_key(user_id, label))]
        struct UserTag { user_id: i32, #[diesel(column_name = label)] tag: String }
    }));
}

#[test]
fn default_primary_key_is_the_column_id() {
    insta::assert_snapshot!(pretty(quote! {
        struct Visit { #[diesel(column_name = id)] visit_id: i32, email: String }
    }));
}

#[test]
fn raw_identifiers_for_keyword_fields_columns_and_tables() {
    insta::assert_snapshot!(pretty(quote! {
        #[diesel(table_name = schema::r#type, primary_key(r#fn))]
        #[unique_together(r#type, r#match)]
        #[unique_together(kind, r#async)]
        struct r#Item {
            r#fn: i32,
            #[unique]
            r#type: String,
            #[diesel(column_name = "match")]
            r#match: String,
            #[diesel(column_name = r#loop)]
            kind: String,
            r#async: bool,
        }
    }));
}

#[test]
fn diesel_options_it_does_not_read_pass_through() {
    insta::assert_snapshot!(pretty(quote! {
        #[derive(Queryable, Selectable, Insertable, AsChangeset, Identifiable, Associations)]
        #[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg), table_name = people)]
        #[diesel(belongs_to(Org<'static, 3>, foreign_key = org_id), treat_none_as_null = true)]
        #[diesel(base_query = people::table.filter(people::age.gt(18)).order_by((people::id, people::age)))]
        #[diesel(base_query_type = Filter<people::table, Gt<people::age, i32>>, aggregate)]
        #[diesel(some_future_option = Wrapper<A, B>, another(a, b), flag)]
        struct Person {
            id: i32,
            #[diesel(deserialize_as = Wrapper<'static, String, 3>, column_name = mail)]
            #[unique]
            email: String,
            #[diesel(select_expression = (people::age + 1, people::id), select_expression_type = (Add<people::age, i32>, people::id))]
            #[diesel(serialize_as = Tagged<i32, { 1 + 2 }>, sql_type = diesel::sql_types::Integer)]
            #[diesel(treat_none_as_default_value = false, skip_insertion, skip_update)]
            age: i32,
            org_id: i32,
        }
    }));
}

#[test]
fn crate_path_for_a_renamed_or_reexported_runtime() {
    insta::assert_snapshot!(pretty(quote! {
        #[get_or_create(crate = ::my_app::db::goc)]
        struct Tag { id: i32 }
    }));
    insta::assert_snapshot!(pretty(quote! {
        #[get_or_create(crate = "self::goc")]
        struct Tag { id: i32 }
    }));
}

#[test]
fn generic_model() {
    insta::assert_snapshot!(pretty(quote! {
        #[diesel(table_name = tags)]
        struct Tag<'a, T: Clone, const N: usize> where T: Default {
            id: i32,
            #[unique]
            name: &'a str,
            extra: [T; N],
        }
    }));
}

#[test]
fn after_an_error_every_lookup_is_a_key_and_only_the_error_is_reported() {
    insta::assert_snapshot!(pretty(quote! {
        #[diesel(table_name = orgs)]
        #[unique_together(org, slgu)]
        struct Team<T> { id: i32, org: i32, slug: T }
    }));
}

#[test]
fn every_error_at_once() {
    insta::assert_snapshot!(pretty(quote! {
        #[unique_together(frist_name)]
        #[unique_together()]
        #[get_or_create(crate = "not a path", krate = x)]
        struct User {
            id: i32,
            #[unique(x)]
            email: String,
            #[unique]
            #[diesel(column_name = "first name")]
            first_name: String,
        }
    }));
}

#[test]
fn no_constraint() {
    insta::assert_snapshot!(pretty(quote! {
        struct Visit { visit_id: i32, email: String }
    }));
}

#[test]
fn not_a_struct_with_named_fields() {
    insta::assert_snapshot!(pretty(quote! {
        enum User { A, B }
    }));
}

#[test]
fn six_columns_give_720_orders_and_seven_are_refused() {
    let out = pretty(quote! {
        #[unique_together(a, b, c, d, e, f)]
        struct T { id: i32, a: i32, b: i32, c: i32, d: i32, e: i32, f: i32 }
    });
    // 720 orders, the primary key, and the never-matching tuple.
    assert_eq!(out.matches("UniqueKey<").count(), 720 + 1 + 1);
    insta::assert_snapshot!(pretty(quote! {
        #[unique_together(a, b, c, d, e, f, g)]
        struct T { id: i32, a: i32, b: i32, c: i32, d: i32, e: i32, f: i32, g: i32 }
    }));
}

/// Found by the fuzz test: a path with generic arguments cannot stand where
/// the expansion uses it as a module (`users<T>::table` is not an expression).
#[test]
fn generic_arguments_in_table_or_crate_path_are_refused() {
    insta::assert_snapshot!(pretty(quote! {
        #[diesel(table_name = users<T>)]
        struct User { id: i32 }
    }));
    insta::assert_snapshot!(pretty(quote! {
        #[get_or_create(crate = goc<T>)]
        struct User { id: i32 }
    }));
}

/// Found by the fuzz test: the fallback's own type parameter must not clash
/// with the model's.
#[test]
fn fallback_parameter_differs_from_the_model_s_parameters() {
    insta::assert_snapshot!(pretty(quote! {
        #[unique_together(nope)]
        struct User<__GetOrCreateColumns> { id: __GetOrCreateColumns }
    }));
}
