//! How Django's ORM coerces a user id claim for `User.objects.get(pk=…)`.
//!
//! STUB: public surface fixed; bodies are being filled in.

use crate::jwt::{ClaimValue, InlineStr};
use core::fmt;

/// The type of the user model's primary key (`USER_ID_FIELD`'s field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PkKind {
    /// `AutoField` / `BigAutoField` / `IntegerField`: `int(value)`.
    #[default]
    Int,
    /// `UUIDField`: `uuid.UUID(hex=…)` or `UUID(int=…)`.
    Uuid,
    /// A text field such as `username`: `str(value)`.
    Str,
}

/// The canonical key the host looks a user up by (`str(pk)` of the match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKey {
    /// An integer pk.
    Int(i64),
    /// A UUID pk (16 bytes, big-endian).
    Uuid([u8; 16]),
    /// A text key.
    Str(InlineStr),
    /// The lookup cannot match any row (e.g. `null` → `IS NULL`).
    NoMatch,
}

/// The claim could not be coerced; Django raises (HTTP 500) here, wsauth rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserIdError {
    /// `ValueError: Field 'id' expected a number but got …`.
    NotANumber,
    /// `ValidationError: … is not a valid UUID`.
    NotAUuid,
}

impl fmt::Display for UserIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserIdError::NotANumber => f.write_str("user id claim is not a number"),
            UserIdError::NotAUuid => f.write_str("user id claim is not a valid UUID"),
        }
    }
}

impl core::error::Error for UserIdError {}

impl ClaimValue {
    /// Coerces the claim as Django's field lookup would.
    pub fn to_user_key(&self, pk: PkKind) -> Result<UserKey, UserIdError> {
        let _ = pk;
        Err(UserIdError::NotANumber)
    }
}
