//! `IN (…)` lists written once for both backends.
//!
//! PostgreSQL could bind a whole array (`= ANY($1)`), SQLite cannot; a list
//! of placeholders works on both. Its length is rounded up (the last value
//! repeated) to a multiple of 8 up to 32, then to a power of two, so that a
//! connection's prepared-statement cache sees a handful of statement shapes
//! rather than one per list length, while a page of 20 binds 24 values, not
//! 32 (each bound value costs a few microseconds on SQLite).
//!
//! This is the one place that builds SQL text at run time (the
//! `sql_safety` test allows no other): the template is `&'static str`, and
//! only numbered placeholders are put into it, never a value.

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

/// The marker in a template that [`expand`] replaces with a list.
pub const LIST: &str = "{list}";

/// How many placeholders a list of `count` values gets.
fn padded_len(count: usize) -> usize {
    if count <= 32 {
        count.div_ceil(8) * 8
    } else {
        count.next_power_of_two()
    }
}

/// The values to bind for `values`: padded to the length of the list that
/// [`expand`] writes for them, by repeating the last one (which changes no
/// `IN` test).
pub fn padded<T: Clone>(values: &[T]) -> Vec<T> {
    let mut out = values.to_vec();
    if let Some(last) = values.last() {
        out.resize(padded_len(values.len()), last.clone());
    }
    out
}

/// `template` with its `{list}` markers replaced, in order, by placeholder
/// lists for `counts[0]`, `counts[1]`, … values (padded, see [`padded`]).
/// Numbering starts at `$first`, after the template's own parameters; an
/// empty list is written `NULL`, so that `x IN (NULL)` matches nothing.
///
/// # Panics
/// When the markers and `counts` differ in number: a programming error.
pub fn expand(template: &'static str, first: usize, counts: &[usize]) -> SqlStr {
    let parts: Vec<&str> = template.split(LIST).collect();
    assert_eq!(
        parts.len(),
        counts.len() + 1,
        "one count per {LIST} in {template}"
    );
    let mut sql = String::with_capacity(template.len() + 8 * counts.iter().sum::<usize>());
    let mut next = first;
    for (part, &count) in parts.iter().zip(counts) {
        sql.push_str(part);
        if count == 0 {
            sql.push_str("NULL");
            continue;
        }
        let padded = padded_len(count);
        let list: Vec<String> = (next..next + padded).map(|n| format!("${n}")).collect();
        sql.push_str(&list.join(", "));
        next += padded;
    }
    sql.push_str(parts[counts.len()]);
    AssertSqlSafe(sql).into_sql_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_padded_with_the_last_value_to_few_lengths() {
        assert_eq!(padded::<u8>(&[]), Vec::<u8>::new());
        assert_eq!(padded(&[1, 2, 3]), vec![1, 2, 3, 3, 3, 3, 3, 3]);
        let lengths: Vec<usize> = [1, 8, 9, 20, 32, 33, 100]
            .iter()
            .map(|&n| padded(&vec![0u8; n]).len())
            .collect();
        assert_eq!(lengths, [8, 8, 16, 24, 32, 64, 128]);
    }

    #[test]
    fn markers_become_numbered_placeholders_matching_the_padding() {
        let sql = expand("a = $1 AND b IN ({list}) AND c IN ({list})", 2, &[3, 1]);
        let b: Vec<String> = (2..10).map(|n| format!("${n}")).collect();
        let c: Vec<String> = (10..18).map(|n| format!("${n}")).collect();
        assert_eq!(
            sql.as_str(),
            format!(
                "a = $1 AND b IN ({}) AND c IN ({})",
                b.join(", "),
                c.join(", ")
            )
        );
        assert_eq!(expand("x IN ({list})", 1, &[0]).as_str(), "x IN (NULL)");
        let five = expand("x IN ({list})", 1, &[5]);
        assert_eq!(five.as_str().matches('$').count(), padded(&[0; 5]).len());
    }

    #[test]
    #[should_panic(expected = "one count per")]
    fn a_count_per_marker_is_required() {
        let _ = expand("x IN ({list})", 1, &[1, 2]);
    }
}
