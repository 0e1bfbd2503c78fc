//! Generated inputs: the derive never panics and always emits Rust items.
//!
//! Each case is a struct (sometimes an enum, a union, a tuple or unit struct)
//! built from pools of field, column and table names (keywords, raw
//! identifiers, strings that no identifier can spell), every attribute the
//! derive reads in valid and malformed forms, Diesel options it skips,
//! duplicates, empty lists, long constraints and generics; a share of the cases
//! is then mutated token by token (a token dropped, repeated or replaced).
//! `derive_inner` runs on each, and its output must parse as items
//! (`syn::parse_file`).
//!
//! Deterministic: a fixed seed and count (`GOC_FUZZ_SEED`, `GOC_FUZZ_CASES`
//! override them, e.g. for a longer run).

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;

use proc_macro2::TokenStream;

use crate::expand::derive_inner;

const DEFAULT_SEED: u64 = 0x5EED_2026_D15E_1000;
const DEFAULT_CASES: usize = 4000;

/// xorshift64*: small, deterministic, good enough to pick from pools.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a>(&mut self, pool: &[&'a str]) -> &'a str {
        pool[self.below(pool.len())]
    }
}

/// Field names (also used as column names): plain, keywords as raw
/// identifiers, raw non-keywords, non-ASCII.
const FIELDS: &[&str] = &[
    "id",
    "email",
    "first_name",
    "last_name",
    "org",
    "slug",
    "visits",
    "r#type",
    "r#match",
    "r#fn",
    "r#async",
    "r#gen",
    "r#union",
    "r#loop",
    "r#yield",
    "r#dyn",
    "r#try",
    "r#id",
    "_x",
    "déjà",
    "a1",
    "T",
    "self_",
    "crate_",
    "r#static",
    "r#true",
    "raw",
    "r#raw",
];

/// Right-hand sides of `column_name = ..`, valid and not.
const COLUMN_NAMES: &[&str] = &[
    // Valid (CLEAN_COLUMN_NAMES).
    "mail",
    "id",
    "r#type",
    "r#fn",
    "\"type\"",
    "\"id\"",
    "\"match\"",
    "\"déjà\"",
    "r#r",
    "email",
    "\"kind\"",
    "org",
    // Diesel rejects these.
    "type",
    "self",
    "crate",
    "super",
    "Self",
    "_",
    "\"self\"",
    "\"Self\"",
    "\"_\"",
    "\"first name\"",
    "\"\"",
    "\"1a\"",
    "\"r#type\"",
    "\"a-b\"",
    "123",
    "-",
    "",
    "\"a\" \"b\"",
    "mail extra",
];

const TABLES: &[&str] = &[
    // Valid (CLEAN_TABLES).
    "users",
    "crate::schema::users",
    "r#type",
    "self::x",
    "super::t",
    "::abs::t",
    "r#match::r#type",
    // Malformed, or not a table module.
    "1",
    "\"users\"",
    "users<T>",
    "users::<T>",
    "",
    "a::",
    "crate",
    "self",
    "Self",
    "schema::users::table",
    "r#gen",
];

const SKIPPED_FIELD_OPTIONS: &[&str] = &[
    // Valid (CLEAN_FIELD_OPTIONS).
    "deserialize_as = Wrapper<'a, A, 3>",
    "serialize_as = Tagged<i32, { 1 + 2 }>",
    "select_expression = a + b * (c, d)",
    "select_expression = people::age.gt(18).and(x.eq(\"y\"))",
    "select_expression_type = (A, B<C, D>)",
    "sql_type = diesel::sql_types::Text",
    "treat_none_as_null = true",
    "treat_none_as_default_value = false",
    "skip_insertion",
    "skip_update",
    "future_key = A<B, C>",
    "future(a, b)",
    "deserialize_as = Option<Vec<(A, B)>>",
    // Valid, but `embed` takes the field out of the columns.
    "embed",
    // Malformed.
    "embed = true",
    "treat_none_as_null = 1",
    "deserialize_as = Wrapper<A, ",
    "deserialize_as",
    "= x",
    "",
    "123",
    "\"str\"",
    "a b c",
    "<",
    "select_expression = ",
];

const SKIPPED_STRUCT_OPTIONS: &[&str] = &[
    // Valid (CLEAN_STRUCT_OPTIONS).
    "check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite)",
    "check_for_backend(disable = true)",
    "belongs_to(Org<'a, 3>, foreign_key = org_id)",
    "belongs_to(Org)",
    "base_query = t.filter(x.eq(1)).order_by((a, b))",
    "base_query_type = Filter<A, B<C, D>>",
    "treat_none_as_null = true",
    "sql_type = Foo",
    "aggregate",
    "not_sized",
    "foreign_derive",
    "postgres_type(name = \"t\", schema = \"public\")",
    "mysql_type(name = \"Long\")",
    "sqlite_type(name = \"Text\")",
    "future_key = A<B, C>",
    // Malformed.
    "table_name",
    "table_name =",
    "primary_key",
    "primary_key = id",
    "primary_key()",
    "primary_key(,)",
    "",
    ",",
    "a b",
];

const GET_OR_CREATE: &[&str] = &[
    "#[get_or_create(crate = ::x::y)]",
    "#[get_or_create(crate = \"self::goc\")]",
    "#[get_or_create(crate = \"not a path\")]",
    "#[get_or_create(crate = \"\")]",
    "#[get_or_create(crate)]",
    "#[get_or_create(crate = 1)]",
    "#[get_or_create(krate = x)]",
    "#[get_or_create()]",
    "#[get_or_create]",
    "#[get_or_create = \"x\"]",
    "#[get_or_create(crate = a, crate = b)]",
    "#[get_or_create(crate = r#type::r#match)]",
    "#[get_or_create(crate = a<T>)]",
    "#[get_or_create(crate = \"a::<T>\")]",
];

const TYPES: &[&str] = &[
    "i32",
    "String",
    "Option<String>",
    "&'a str",
    "[T; N]",
    "Vec<(A, B)>",
    "T",
    "r#type",
];

const GENERICS: &[(&str, &str)] = &[
    ("", ""),
    ("<T>", ""),
    ("<'a, T: Clone, const N: usize>", "where T: Default"),
    ("<__GetOrCreateColumns>", ""),
    ("<T = i32>", "where"),
    ("<'a>", "where 'a: 'static"),
];

const STRUCT_NAMES: &[&str] = &["User", "r#Type", "r#type", "Déjà", "A", "UserTag", "r#gen"];

struct Case {
    source: String,
    mutated: bool,
}

/// The first entries of each pool are what a correct model may say; a
/// "clean" case picks only from those, so that the generator reaches models
/// without errors as often as broken ones.
const CLEAN_COLUMN_NAMES: usize = 12;
const CLEAN_TABLES: usize = 7;
const CLEAN_FIELD_OPTIONS: usize = 13;
const CLEAN_STRUCT_OPTIONS: usize = 15;
const CLEAN_GET_OR_CREATE: usize = 2;

fn pool<'a>(pool: &'a [&'a str], clean: bool, valid: usize) -> &'a [&'a str] {
    if clean {
        &pool[..valid]
    } else {
        pool
    }
}

fn names(rng: &mut Rng, fields: &[String], max: usize, clean: bool) -> String {
    let n = if clean && !fields.is_empty() {
        1 + rng.below(max.min(fields.len()))
    } else {
        rng.below(max + 1)
    };
    let mut out: Vec<String> = Vec::new();
    for _ in 0..n {
        if clean {
            if fields.is_empty() {
                break;
            }
            let name = &fields[rng.below(fields.len())];
            if !out.contains(name) {
                out.push(name.clone());
            }
            continue;
        }
        let name = if !fields.is_empty() && rng.chance(75) {
            fields[rng.below(fields.len())].clone()
        } else {
            rng.pick(COLUMN_NAMES).to_owned()
        };
        out.push(name);
    }
    let mut list = out.join(", ");
    if !clean && rng.chance(10) {
        list.push(',');
    }
    list
}

fn generate(rng: &mut Rng) -> Case {
    let clean = rng.chance(50);
    let column_names = pool(COLUMN_NAMES, clean, CLEAN_COLUMN_NAMES);
    let tables = pool(TABLES, clean, CLEAN_TABLES);
    let field_options = pool(SKIPPED_FIELD_OPTIONS, clean, CLEAN_FIELD_OPTIONS);
    let struct_options = pool(SKIPPED_STRUCT_OPTIONS, clean, CLEAN_STRUCT_OPTIONS);
    let get_or_create = pool(GET_OR_CREATE, clean, CLEAN_GET_OR_CREATE);

    let mut s = String::new();
    let field_count = rng.below(9);
    let mut fields: Vec<String> = (0..field_count)
        .map(|_| rng.pick(FIELDS).to_owned())
        .collect();
    if clean || rng.chance(60) {
        fields.sort();
        fields.dedup();
    }

    // Struct attributes.
    for _ in 0..rng.below(6) {
        match rng.below(if clean { 7 } else { 9 }) {
            0 | 1 => {
                let _ = write!(s, "#[diesel(table_name = {})]", rng.pick(tables));
            }
            2 => {
                let _ = write!(
                    s,
                    "#[diesel(primary_key({}))]",
                    names(rng, &fields, 4, clean)
                );
            }
            3 | 4 => {
                let list = names(rng, &fields, 9, clean);
                let _ = match rng.below(8) {
                    _ if clean => write!(s, "#[unique_together({list})]"),
                    0 => write!(s, "#[unique_together = \"{}\"]", list.replace('"', "")),
                    1 => write!(s, "#[unique_together]"),
                    2 => write!(s, "#[unique_together({} {})]", list, rng.pick(FIELDS)),
                    _ => write!(s, "#[unique_together({list})]"),
                };
            }
            5 => {
                let a = rng.pick(struct_options);
                let b = rng.pick(struct_options);
                let table = rng.pick(tables);
                let _ = match rng.below(3) {
                    0 => write!(s, "#[diesel({a}, table_name = {table}, {b})]"),
                    1 => write!(s, "#[diesel({a}, {b})]"),
                    _ => write!(s, "#[diesel({a})]"),
                };
            }
            6 => s.push_str(rng.pick(get_or_create)),
            7 => s.push_str(rng.pick(&[
                "#[unique]",
                "#[diesel]",
                "#[diesel = \"x\"]",
                "#[doc = \"x\"]",
                "#[derive(Queryable)]",
                // Diesel 1's forms, still read by its `with-deprecated` feature.
                "#[table_name = \"users\"]",
                "#[primary_key(id, r#type)]",
                "#[changeset_options(treat_none_as_null = \"true\")]",
            ])),
            _ => {
                let _ = write!(
                    s,
                    "#[diesel(primary_key({}), table_name = {})]",
                    names(rng, &fields, 3, clean),
                    rng.pick(tables)
                );
            }
        }
    }

    let name = rng.pick(STRUCT_NAMES);
    let (params, where_clause) = GENERICS[rng.below(GENERICS.len())];
    let kind = if clean { 0 } else { rng.below(100) };
    if kind < 85 {
        let _ = write!(s, "pub struct {name}{params} {where_clause} {{");
        for field in &fields {
            for _ in 0..rng.below(4) {
                match rng.below(if clean { 5 } else { 7 }) {
                    0 | 1 if clean => s.push_str("#[unique]"),
                    0 | 1 => s.push_str(rng.pick(&[
                        "#[unique]",
                        "#[unique]",
                        "#[unique(x)]",
                        "#[unique = 1]",
                        "#[unique()]",
                    ])),
                    2 | 3 => {
                        let _ = write!(s, "#[diesel(column_name = {})]", rng.pick(column_names));
                    }
                    4 => {
                        let a = rng.pick(field_options);
                        let b = rng.pick(field_options);
                        let column = rng.pick(column_names);
                        let _ = match rng.below(3) {
                            0 => write!(s, "#[diesel({a}, column_name = {column}, {b})]"),
                            1 => write!(s, "#[diesel({a}, {b})]"),
                            _ => write!(s, "#[diesel({a})]"),
                        };
                    }
                    5 => s.push_str(rng.pick(&[
                        "#[diesel(embed)]",
                        "#[unique_together(a, b)]",
                        "#[get_or_create(crate = x)]",
                        "#[diesel]",
                    ])),
                    _ => s.push_str("#[serde(rename = \"x\")]"),
                }
            }
            let _ = write!(s, "pub {field}: {},", rng.pick(TYPES));
        }
        s.push('}');
    } else {
        let _ = match kind {
            85..=88 => write!(s, "struct {name}{params}(i32, String) {where_clause};"),
            89..=91 => write!(s, "struct {name};"),
            92..=95 => write!(s, "enum {name}{params} {{ A, B(i32) }}"),
            _ => write!(s, "union {name}{params} {{ a: i32 }}"),
        };
    }

    let mut case = Case {
        source: s,
        mutated: false,
    };
    if !clean && rng.chance(40) {
        mutate(rng, &mut case);
    }
    case
}

/// Drop, repeat or replace one token (by whitespace-separated piece).
fn mutate(rng: &mut Rng, case: &mut Case) {
    let spaced = case
        .source
        .replace('(', " ( ")
        .replace(')', " ) ")
        .replace(',', " , ")
        .replace('=', " = ");
    let mut pieces: Vec<&str> = spaced.split_whitespace().collect();
    if pieces.is_empty() {
        return;
    }
    let at = rng.below(pieces.len());
    match rng.below(3) {
        0 => {
            pieces.remove(at);
        }
        1 => pieces.insert(at, pieces[at]),
        _ => {
            pieces[at] = rng.pick(&[
                ",", "=", "#", "r#type", "type", "::", "'a", "\"s\"", "1", "()", "<", ">",
            ])
        }
    }
    case.source = pieces.join(" ");
    case.mutated = true;
}

#[test]
fn derive_never_panics_and_always_emits_items() {
    let seed = std::env::var("GOC_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let cases = std::env::var("GOC_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let mut rng = Rng(seed | 1);

    let (mut run, mut not_lexed, mut mutated, mut with_errors, mut with_impls) = (0, 0, 0, 0, 0);
    let mut panics = Vec::new();
    let mut unparsable = Vec::new();
    for _ in 0..cases {
        let case = generate(&mut rng);
        // A mutation can unbalance delimiters: not a token stream, not a
        // derive input rustc would hand us.
        let Ok(input) = TokenStream::from_str(&case.source) else {
            not_lexed += 1;
            continue;
        };
        run += 1;
        mutated += usize::from(case.mutated);
        let output = match catch_unwind(AssertUnwindSafe(|| derive_inner(input))) {
            Ok(output) => output,
            Err(_) => {
                panics.push(case.source);
                continue;
            }
        };
        let text = output.to_string();
        with_errors += usize::from(text.contains("compile_error"));
        with_impls += usize::from(text.contains("UniqueKey"));
        if let Err(err) = syn::parse_file(&text) {
            unparsable.push(format!("{}\n  -> {err}\n  => {text}", case.source));
        }
    }
    println!(
        "fuzz (seed {seed:#x}): {cases} generated, {run} run ({mutated} mutated), \
         {not_lexed} not lexable; {with_errors} with errors, {with_impls} with UniqueKey impls; \
         {} panics, {} unparsable outputs",
        panics.len(),
        unparsable.len()
    );
    assert!(
        panics.is_empty(),
        "the derive panicked on {} inputs, e.g.:\n{}",
        panics.len(),
        panics
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        unparsable.is_empty(),
        "the derive emitted unparsable tokens for {} inputs, e.g.:\n{}",
        unparsable.len(),
        unparsable
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    // The generator must reach both outcomes, or it tests little.
    assert!(with_errors > run / 10 && with_impls > run / 10);
}
