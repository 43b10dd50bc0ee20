//! `wsauth token check` (SimpleJWT's `AccessToken(token)` decision) and
//! `wsauth token mint` (dev tokens shaped like SimpleJWT's).

use super::input::{self, Credential, SecretArgs};
use super::output::{self, Failure};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::ffi::OsString;
use tracing::info;
use wsauth_core::{
    jwt::DEFAULT_MAX_TOKEN_BYTES, Algorithm, ClaimValue, ErrorKind, InlineStr, JwtSettings,
    MintRequest, TokenError, TokenVerifier,
};

/// Message for a token that is not UTF-8 text (SimpleJWT's generic rejection).
const MSG_INVALID: &str = "Token is invalid";
/// Message for a token beyond `--max-token-bytes` when the CLI stops reading it early.
const MSG_TOO_LARGE: &str = "Token is too large";

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Decide a token exactly as SimpleJWT's `AccessToken(token)` does.
    ///
    /// Exit 0: valid; 1: invalid; 2: usage or config error.
    Check(CheckArgs),
    /// Mint a dev access token shaped like SimpleJWT's (token_type, exp, iat, jti, user id).
    Mint(MintArgs),
}

/// The SimpleJWT settings, named after them.
#[derive(Debug, Clone, Args)]
pub(crate) struct JwtArgs {
    #[command(flatten)]
    secrets: SecretArgs,
    /// SIMPLE_JWT["ALGORITHM"].
    #[arg(long, value_name = "ALG", default_value = "HS256", value_parser = parse_algorithm)]
    algorithm: Algorithm,
    /// SIMPLE_JWT["LEEWAY"], seconds.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    leeway: u32,
    /// SIMPLE_JWT["AUDIENCE"].
    #[arg(long, value_name = "A")]
    audience: Option<String>,
    /// SIMPLE_JWT["ISSUER"].
    #[arg(long, value_name = "I")]
    issuer: Option<String>,
    /// SIMPLE_JWT["USER_ID_CLAIM"].
    #[arg(long, value_name = "C", default_value = "user_id")]
    user_id_claim: String,
    /// SIMPLE_JWT["TOKEN_TYPE_CLAIM"].
    #[arg(long, value_name = "C", default_value = "token_type")]
    token_type_claim: String,
    /// SIMPLE_JWT["JTI_CLAIM"].
    #[arg(long, value_name = "C", default_value = "jti")]
    jti_claim: String,
    /// Largest accepted token, bytes.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TOKEN_BYTES)]
    max_token_bytes: usize,
    /// Unix seconds to use instead of the clock.
    #[arg(long, value_name = "UNIX", allow_hyphen_values = true)]
    now: Option<i64>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

impl JwtArgs {
    fn settings(&self) -> JwtSettings {
        JwtSettings {
            algorithm: self.algorithm,
            leeway: self.leeway,
            audience: self.audience.clone(),
            issuer: self.issuer.clone(),
            user_id_claim: self.user_id_claim.clone(),
            token_type_claim: self.token_type_claim.clone(),
            jti_claim: self.jti_claim.clone(),
            max_token_bytes: self.max_token_bytes,
            ..JwtSettings::default()
        }
    }

    fn verifier(&self) -> Result<TokenVerifier, Failure> {
        let (signing, fallbacks) = self.secrets.resolve()?;
        TokenVerifier::new(self.settings(), signing)
            .and_then(|v| v.with_fallback_keys(fallbacks))
            .map_err(|e| Failure::usage(format!("secret key refused: {e}")))
    }
}

fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    Algorithm::from_name(&s.to_ascii_uppercase())
        .ok_or_else(|| "expected HS256, HS384 or HS512".to_owned())
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The access token, or `-` to read it from stdin (keeps it out of shell history).
    #[arg(value_name = "TOKEN")]
    token: OsString,
    #[command(flatten)]
    jwt: JwtArgs,
    /// Then load the token's user from the Django database (`postgres://…`,
    /// `sqlite://…`) as SimpleJWT's `JWTAuthentication.get_user` does:
    /// no row → user_not_found, `is_active` false → user_inactive.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    #[command(flatten)]
    db: super::session::DbArgs,
}

#[derive(Debug, Args)]
pub(crate) struct MintArgs {
    /// The user id claim's value (SimpleJWT puts `str(user.pk)`, e.g. "1").
    #[arg(long, value_name = "ID")]
    user_id: String,
    /// Put the user id as a JSON integer instead of a string.
    #[arg(long)]
    int_id: bool,
    /// Lifetime in seconds (ACCESS_TOKEN_LIFETIME).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    lifetime: i64,
    /// Extra claim (repeatable): VALUE is JSON when it parses as a JSON scalar
    /// (true, 3, null, "text"), else taken as a string. E.g. --claim is_staff=true.
    #[arg(long = "claim", value_name = "K=V")]
    claims: Vec<String>,
    #[command(flatten)]
    jwt: JwtArgs,
}

pub(crate) fn run(cmd: TokenCommand) -> i32 {
    match cmd {
        TokenCommand::Check(args) => {
            let json = args.jwt.json;
            output::finish(json, check(&args))
        }
        TokenCommand::Mint(args) => {
            let json = args.jwt.json;
            output::finish(json, mint(&args))
        }
    }
}

fn check(args: &CheckArgs) -> Result<i32, Failure> {
    if args.token == "-" && args.jwt.secrets.reads_stdin() {
        return Err(Failure::usage(
            "the token and --secret cannot both be read from stdin",
        ));
    }
    let verifier = args.jwt.verifier()?;
    let now = input::now(args.jwt.now)?;
    let token = match input::read_credential(&args.token, args.jwt.max_token_bytes, "token")? {
        Credential::Text(t) => t,
        Credential::TooLarge => {
            return Ok(report_invalid(
                &TokenError::new(ErrorKind::TooLarge, MSG_TOO_LARGE),
                args.jwt.json,
            ))
        }
        Credential::NotUtf8 => {
            return Ok(report_invalid(
                &TokenError::new(ErrorKind::Malformed, MSG_INVALID),
                args.jwt.json,
            ))
        }
    };
    if let Some(url) = &args.database {
        return check_with_database(args, &verifier, &token, now, url);
    }
    if args.jwt.json {
        // The one writer of this JSON is the core's, shared with the C ABI.
        let (valid, json) = verifier.check_json(&token, now);
        info!(valid, "token checked");
        output::print_line(&json);
        return Ok(output::exit_code(valid));
    }
    match verifier.verify(&token, now) {
        Ok(verified) => {
            info!(exp = verified.exp(), "token valid");
            let uid = verified
                .claim_json(&args.jwt.user_id_claim, true)
                .unwrap_or_else(|| "(none)".to_owned());
            let left = verified.exp().saturating_sub(now);
            output::print_line(&format!(
                "valid: user_id={uid} exp={} (expires in {left} s)",
                verified.exp()
            ));
            Ok(output::exit_code(true))
        }
        Err(err) => Ok(report_invalid(&err, false)),
    }
}

/// The token, then its user from the database, as `JWTAuthentication` decides.
fn check_with_database(
    args: &CheckArgs,
    verifier: &TokenVerifier,
    token: &str,
    now: i64,
    url: &str,
) -> Result<i32, Failure> {
    use wsauth_smol::Host;
    let verified = match verifier.verify(token, now) {
        Ok(v) => v,
        Err(err) => return Ok(report_invalid(&err, args.jwt.json)),
    };
    if verified.user_id().is_none() {
        return Ok(report_invalid(
            &TokenError::new(
                ErrorKind::MissingClaim,
                "Token contained no recognizable user identification",
            ),
            args.jwt.json,
        ));
    }
    let not_found = TokenError::new(ErrorKind::UserNotFound, "User not found");
    // A claim the pk type cannot read finds no row.
    let Ok(key) = verified.user_key(args.db.pk_config().into()) else {
        return Ok(report_invalid(&not_found, args.jwt.json));
    };
    let pk = key.to_string();
    let host = args.db.host(url)?;
    let user = super::session::lookup("user", host.user(&key, &pk))?;
    smol::block_on(host.close());
    let Some(user) = user else {
        return Ok(report_invalid(&not_found, args.jwt.json));
    };
    if !user.is_active {
        return Ok(report_invalid(
            &TokenError::new(ErrorKind::UserInactive, "User is inactive"),
            args.jwt.json,
        ));
    }
    info!(exp = verified.exp(), "token valid, user active");
    if args.jwt.json {
        output::Object::new()
            .field("valid", &Value::Bool(true))
            .field("user_id", &Value::from(pk.clone()))
            .object(
                "user",
                output::Object::new()
                    .field("pk", &Value::from(pk))
                    .field("is_staff", &Value::Bool(user.is_staff))
                    .field("is_superuser", &Value::Bool(user.is_superuser))
                    .field("is_active", &Value::Bool(user.is_active)),
            )
            .field("exp", &Value::from(verified.exp()))
            .print();
    } else {
        output::print_line(&format!(
            "valid: user_id={pk} staff={} superuser={} active={} exp={} (expires in {} s)",
            user.is_staff,
            user.is_superuser,
            user.is_active,
            verified.exp(),
            verified.exp().saturating_sub(now)
        ));
    }
    Ok(output::exit_code(true))
}

fn report_invalid(err: &TokenError, json: bool) -> i32 {
    info!(kind = err.kind().as_str(), "token rejected");
    if json {
        output::invalid_json(err.kind().as_str(), err.message()).print();
    } else {
        output::print_line(&format!(
            "invalid: {} ({})",
            err.message(),
            err.kind().as_str()
        ));
    }
    output::exit_code(false)
}

fn mint(args: &MintArgs) -> Result<i32, Failure> {
    let verifier = args.jwt.verifier()?;
    let now = input::now(args.jwt.now)?;
    if args.lifetime <= 0 {
        return Err(Failure::usage(
            "--lifetime must be a positive number of seconds",
        ));
    }
    let user_id = if args.int_id {
        let n: i64 = args
            .user_id
            .parse()
            .map_err(|_| Failure::usage("--int-id needs --user-id to be an integer"))?;
        ClaimValue::Int(n)
    } else {
        ClaimValue::Str(InlineStr::new(&args.user_id).ok_or_else(|| {
            Failure::usage(format!(
                "--user-id is longer than {} bytes",
                InlineStr::CAPACITY
            ))
        })?)
    };
    let extra_owned: Vec<(String, ClaimValue)> = args
        .claims
        .iter()
        .map(|c| parse_claim(c))
        .collect::<Result<_, _>>()?;
    let extra: Vec<(&str, ClaimValue)> =
        extra_owned.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let jti = random_jti()?;
    let req = MintRequest {
        user_id,
        lifetime: args.lifetime,
        jti: &jti,
        extra: &extra,
    };
    let token = verifier
        .try_mint(&req, now)
        .map_err(|e| Failure::usage(format!("cannot mint: {e}")))?;
    let exp = now.saturating_add(args.lifetime);
    info!(exp, "token minted");
    if args.jwt.json {
        let uid = if args.int_id {
            args.user_id.parse::<i64>().map_or(Value::Null, Value::from)
        } else {
            Value::String(args.user_id.clone())
        };
        output::Object::new()
            .field("token", &Value::from(token))
            .field("user_id", &uid)
            .field("exp", &Value::from(exp))
            .field("jti", &Value::from(jti))
            .print();
    } else {
        output::print_line(&token);
    }
    Ok(output::exit_code(true))
}

/// `k=v`: v is a JSON scalar when it parses as one, else a string.
fn parse_claim(spec: &str) -> Result<(String, ClaimValue), Failure> {
    let (k, v) = spec
        .split_once('=')
        .ok_or_else(|| Failure::usage(format!("--claim {spec:?}: expected KEY=VALUE")))?;
    if k.is_empty() {
        return Err(Failure::usage("--claim: the key is empty"));
    }
    let value = match serde_json::from_str::<Value>(v) {
        Ok(Value::Null) => ClaimValue::Null,
        Ok(Value::Bool(b)) => ClaimValue::Bool(b),
        Ok(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => ClaimValue::Int(i),
            (None, Some(f)) if n.is_f64() => ClaimValue::Float(f),
            _ => return Err(Failure::usage(format!("--claim {k}: integer out of range"))),
        },
        Ok(Value::String(s)) => inline(k, &s)?,
        Ok(_) => {
            return Err(Failure::usage(format!(
                "--claim {k}: objects and arrays are not supported; use a scalar"
            )))
        }
        Err(_) => inline(k, v)?,
    };
    Ok((k.to_owned(), value))
}

fn inline(k: &str, s: &str) -> Result<ClaimValue, Failure> {
    InlineStr::new(s).map(ClaimValue::Str).ok_or_else(|| {
        Failure::usage(format!(
            "--claim {k}: value longer than {} bytes",
            InlineStr::CAPACITY
        ))
    })
}

/// 32 lowercase hex characters from the OS RNG (`uuid4().hex`-shaped).
fn random_jti() -> Result<String, Failure> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| Failure::config(format!("the OS random number generator failed: {e}")))?;
    // Version 4, variant 1, as uuid4() sets them.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_parse_as_json_scalars_or_strings() {
        let rows: &[(&str, Option<ClaimValue>)] = &[
            ("is_staff=true", Some(ClaimValue::Bool(true))),
            ("n=42", Some(ClaimValue::Int(42))),
            ("x=null", Some(ClaimValue::Null)),
            ("f=1.5", Some(ClaimValue::Float(1.5))),
            (
                "s=hello",
                Some(ClaimValue::Str(InlineStr::new("hello").unwrap())),
            ),
            (
                "q=\"42\"",
                Some(ClaimValue::Str(InlineStr::new("42").unwrap())),
            ),
            ("e=", Some(ClaimValue::Str(InlineStr::new("").unwrap()))),
            ("noequals", None),
            ("=v", None),
            ("a=[1]", None),
        ];
        for (spec, want) in rows {
            let got = parse_claim(spec).ok().map(|(_, v)| v);
            assert_eq!(&got, want, "{spec}");
        }
    }

    #[test]
    fn jti_is_32_lowercase_hex_and_random() {
        let a = random_jti().unwrap();
        let b = random_jti().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_ne!(a, b);
    }
}
