//! The `:name` parameter rule of a route's access SQL.
//!
//! A route names its access query in the configuration:
//!
//! ```toml
//! sql = "SELECT 1 FROM shop_receipt WHERE id = :id AND owner_id = :user"
//! ```
//!
//! `:user` is the principal's primary key, `:<name>` each path parameter of
//! the route. [`bind_sql`] checks every parameter against the route and
//! rewrites the text to a backend's placeholder syntax, returning the names
//! in bind order; the host binds the values (never pastes them into the
//! text). What is not a parameter is left alone: `'…:x…'` string literals,
//! `"…"` quoted identifiers, `--` and `/* */` comments, PostgreSQL `::casts`
//! and `$tag$ … $tag$` strings.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The principal's primary key, as a parameter name.
pub const USER_PARAM: &str = "user";

/// A backend's placeholder syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placeholders {
    /// PostgreSQL: `$1`, `$2`, … one number per distinct name.
    Dollar,
    /// SQLite: `?1`, `?2`, … one number per distinct name.
    QuestionNumbered,
    /// MySQL: `?` per occurrence (a repeated name is bound again).
    Question,
}

/// A route's SQL rewritten for one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundSql {
    /// The statement text with the backend's placeholders.
    pub text: String,
    /// Parameter names in bind order (`user` or a path parameter).
    pub params: Vec<String>,
}

/// Why a route's SQL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SqlError {
    /// The statement is empty.
    Empty,
    /// `:name` is neither `user` nor a path parameter of the route.
    UnknownParameter {
        /// The name.
        name: String,
        /// Byte offset of the `:` in the statement.
        offset: usize,
    },
    /// The statement never uses `:user`: every authenticated user would be allowed.
    MissingUser,
    /// A string literal, quoted identifier or comment is not closed.
    Unterminated {
        /// Byte offset where it starts.
        offset: usize,
    },
    /// More than one statement (`;` followed by more text).
    MultipleStatements {
        /// Byte offset of the `;`.
        offset: usize,
    },
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlError::Empty => f.write_str("the statement is empty"),
            SqlError::UnknownParameter { name, offset } => write!(
                f,
                ":{name} (at byte {offset}) is neither :user nor a parameter of the route's path"
            ),
            SqlError::MissingUser => {
                f.write_str("the statement must use :user (else every user is allowed)")
            }
            SqlError::Unterminated { offset } => write!(
                f,
                "a quoted string, identifier or comment starting at byte {offset} is not closed"
            ),
            SqlError::MultipleStatements { offset } => {
                write!(
                    f,
                    "one statement only (a `;` at byte {offset} is followed by more)"
                )
            }
        }
    }
}

impl core::error::Error for SqlError {}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Checks `sql` against the route's path parameters and rewrites its
/// `:name` parameters to `style`. `path_params` are the names in the route's
/// pattern; `user` is always allowed and must appear.
pub fn bind_sql(
    sql: &str,
    path_params: &[&str],
    style: Placeholders,
) -> Result<BoundSql, SqlError> {
    if sql.trim().is_empty() {
        return Err(SqlError::Empty);
    }
    let bytes = sql.as_bytes();
    let mut text = String::with_capacity(sql.len().saturating_add(8));
    let mut params: Vec<String> = Vec::new();
    let mut distinct: Vec<&str> = Vec::new();
    let mut saw_user = false;
    // `copied` is where the not yet copied text starts.
    let mut copied = 0usize;
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\'' | b'"' | b'`' => {
                // A quoted string / identifier; a doubled quote stays inside.
                let start = i;
                let mut j = i.saturating_add(1);
                loop {
                    match bytes.get(j) {
                        None => return Err(SqlError::Unterminated { offset: start }),
                        Some(&c) if c == b => {
                            if bytes.get(j.saturating_add(1)) == Some(&b) {
                                j = j.saturating_add(2);
                            } else {
                                break;
                            }
                        }
                        Some(_) => j = j.saturating_add(1),
                    }
                }
                i = j.saturating_add(1);
            }
            b'-' if bytes.get(i.saturating_add(1)) == Some(&b'-') => {
                let end = sql
                    .get(i..)
                    .and_then(|rest| rest.find('\n'))
                    .map_or(bytes.len(), |n| i.saturating_add(n));
                i = end;
            }
            b'/' if bytes.get(i.saturating_add(1)) == Some(&b'*') => {
                let start = i;
                let end = sql
                    .get(i.saturating_add(2)..)
                    .and_then(|rest| rest.find("*/"))
                    .ok_or(SqlError::Unterminated { offset: start })?;
                i = i.saturating_add(2).saturating_add(end).saturating_add(2);
            }
            b'$' => {
                // A PostgreSQL dollar-quoted string `$tag$ … $tag$` (tag may be empty).
                let mut j = i.saturating_add(1);
                while bytes
                    .get(j)
                    .is_some_and(|c| is_ident(*c) && !c.is_ascii_digit())
                {
                    j = j.saturating_add(1);
                }
                if bytes.get(j) == Some(&b'$') {
                    let tag = sql.get(i..=j).unwrap_or("$$");
                    let body = j.saturating_add(1);
                    let end = sql
                        .get(body..)
                        .and_then(|rest| rest.find(tag))
                        .ok_or(SqlError::Unterminated { offset: i })?;
                    i = body.saturating_add(end).saturating_add(tag.len());
                } else {
                    i = i.saturating_add(1);
                }
            }
            b':' if bytes.get(i.saturating_add(1)) == Some(&b':') => {
                // A PostgreSQL cast: `::int`.
                i = i.saturating_add(2);
            }
            b':' if bytes
                .get(i.saturating_add(1))
                .is_some_and(|c| is_ident_start(*c)) =>
            {
                let start = i;
                let mut j = i.saturating_add(1);
                while bytes.get(j).is_some_and(|c| is_ident(*c)) {
                    j = j.saturating_add(1);
                }
                let name = sql.get(start.saturating_add(1)..j).unwrap_or("");
                if name != USER_PARAM && !path_params.contains(&name) {
                    return Err(SqlError::UnknownParameter {
                        name: name.into(),
                        offset: start,
                    });
                }
                saw_user |= name == USER_PARAM;
                text.push_str(sql.get(copied..start).unwrap_or(""));
                match style {
                    Placeholders::Question => {
                        text.push('?');
                        params.push(name.into());
                    }
                    Placeholders::Dollar | Placeholders::QuestionNumbered => {
                        let n = match distinct.iter().position(|d| *d == name) {
                            Some(p) => p,
                            None => {
                                distinct.push(name);
                                params.push(name.into());
                                distinct.len().saturating_sub(1)
                            }
                        };
                        text.push(if style == Placeholders::Dollar {
                            '$'
                        } else {
                            '?'
                        });
                        push_number(&mut text, n.saturating_add(1));
                    }
                }
                copied = j;
                i = j;
            }
            b';' => {
                let rest = sql.get(i.saturating_add(1)..).unwrap_or("");
                if !rest.trim().is_empty() {
                    return Err(SqlError::MultipleStatements { offset: i });
                }
                // A trailing `;` is dropped (prepared statements take one statement).
                text.push_str(sql.get(copied..i).unwrap_or(""));
                copied = bytes.len();
                i = bytes.len();
            }
            _ => i = i.saturating_add(1),
        }
    }
    text.push_str(sql.get(copied..).unwrap_or(""));
    if !saw_user {
        return Err(SqlError::MissingUser);
    }
    Ok(BoundSql { text, params })
}

fn push_number(out: &mut String, n: usize) {
    use core::fmt::Write as _;
    let _ = write!(out, "{n}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn names(b: &BoundSql) -> Vec<&str> {
        b.params.iter().map(String::as_str).collect()
    }

    #[test]
    fn rewrites_for_each_backend() {
        let sql = "SELECT 1 FROM shop_receipt WHERE id = :id AND owner_id = :user";
        let pg = bind_sql(sql, &["id"], Placeholders::Dollar).unwrap();
        assert_eq!(
            pg.text,
            "SELECT 1 FROM shop_receipt WHERE id = $1 AND owner_id = $2"
        );
        assert_eq!(names(&pg), vec!["id", "user"]);
        let lite = bind_sql(sql, &["id"], Placeholders::QuestionNumbered).unwrap();
        assert_eq!(
            lite.text,
            "SELECT 1 FROM shop_receipt WHERE id = ?1 AND owner_id = ?2"
        );
        let my = bind_sql(sql, &["id"], Placeholders::Question).unwrap();
        assert_eq!(
            my.text,
            "SELECT 1 FROM shop_receipt WHERE id = ? AND owner_id = ?"
        );
    }

    #[test]
    fn repeated_user_is_one_parameter() {
        let sql = "SELECT 1 FROM c WHERE (owner_id = :user OR :user IN (SELECT user_id FROM m WHERE conv = :id))";
        let pg = bind_sql(sql, &["id"], Placeholders::Dollar).unwrap();
        assert_eq!(
            pg.text,
            "SELECT 1 FROM c WHERE (owner_id = $1 OR $1 IN (SELECT user_id FROM m WHERE conv = $2))"
        );
        assert_eq!(names(&pg), vec!["user", "id"]);
        let my = bind_sql(sql, &["id"], Placeholders::Question).unwrap();
        assert_eq!(names(&my), vec!["user", "user", "id"]);
    }

    #[test]
    fn literals_comments_and_casts_are_left_alone() {
        let sql = "SELECT 1 FROM t WHERE note = 'a:x '':y' AND \"we:ird\" = :id::int -- :nope\n AND /* :no */ owner = :user AND d = $q$:z$q$;";
        let pg = bind_sql(sql, &["id"], Placeholders::Dollar).unwrap();
        assert_eq!(
            pg.text,
            "SELECT 1 FROM t WHERE note = 'a:x '':y' AND \"we:ird\" = $1::int -- :nope\n AND /* :no */ owner = $2 AND d = $q$:z$q$"
        );
        assert_eq!(names(&pg), vec!["id", "user"]);
        // `x::text` is a cast, not a parameter `:text`.
        let cast = bind_sql("SELECT 1 WHERE x::text = :user", &[], Placeholders::Dollar).unwrap();
        assert_eq!(cast.text, "SELECT 1 WHERE x::text = $1");
    }

    #[test]
    fn refuses_what_would_not_bind() {
        assert_eq!(
            bind_sql(
                "SELECT 1 WHERE a = :idd AND b = :user",
                &["id"],
                Placeholders::Dollar
            ),
            Err(SqlError::UnknownParameter {
                name: "idd".into(),
                offset: 19
            })
        );
        assert_eq!(
            bind_sql("SELECT 1 WHERE a = :id", &["id"], Placeholders::Dollar),
            Err(SqlError::MissingUser)
        );
        assert_eq!(
            bind_sql("  ", &[], Placeholders::Dollar),
            Err(SqlError::Empty)
        );
        assert_eq!(
            bind_sql("SELECT ':user", &[], Placeholders::Dollar),
            Err(SqlError::Unterminated { offset: 7 })
        );
        assert_eq!(
            bind_sql(
                "SELECT 1 WHERE u = :user; DROP TABLE x",
                &[],
                Placeholders::Dollar
            ),
            Err(SqlError::MultipleStatements { offset: 24 })
        );
        assert_eq!(
            bind_sql("SELECT 1 /* :user", &[], Placeholders::Dollar),
            Err(SqlError::Unterminated { offset: 9 })
        );
        // Multi-byte text around parameters never splits a character.
        let u = bind_sql(
            "SELECT 'é:ü' WHERE ü = :user",
            &[],
            Placeholders::QuestionNumbered,
        )
        .unwrap();
        assert_eq!(u.text, "SELECT 'é:ü' WHERE ü = ?1");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,80}") {
            let _ = bind_sql(&s, &["id"], Placeholders::Dollar);
            let _ = bind_sql(&s, &["id"], Placeholders::Question);
        }
    }
}
