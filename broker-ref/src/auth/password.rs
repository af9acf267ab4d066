//! Password hashes in mosquitto's format (`mosquitto_passwd`): `$7$ITERATIONS$SALT$HASH`,
//! PBKDF2-HMAC-SHA512 with a random 12-byte salt and a 64-byte hash, both in standard
//! Base64. A password file written by `mosquitto_passwd` works here and the other way
//! round. The derivation and the constant-time comparison are `ring`'s.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

/// The iterations `mqttkit-broker passwd` uses unless told otherwise. mosquitto_passwd
/// 2.0 uses 101; more makes a stolen file harder to crack, and costs that much CPU on the
/// broker's thread for every login that is not cached (see [`super::Authenticator`]).
pub const DEFAULT_ITERATIONS: u32 = 10_000;

const SALT_LEN: usize = 12;
const HASH_LEN: usize = 64;
const ALGORITHM: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA512;

/// A salted password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash is a secret too.
        f.debug_struct("PasswordHash").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

/// Why a password hash could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashError(pub &'static str);

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for HashError {}

impl PasswordHash {
    /// Hash `password` with a fresh random salt.
    pub fn new(password: &[u8], iterations: u32) -> Result<Self, HashError> {
        let iterations = NonZeroU32::new(iterations).ok_or(HashError("iterations must be at least 1"))?;
        let mut salt = vec![0; SALT_LEN];
        SystemRandom::new().fill(&mut salt).map_err(|_| HashError("no random numbers for the salt"))?;
        let mut hash = vec![0; HASH_LEN];
        pbkdf2::derive(ALGORITHM, iterations, &salt, password, &mut hash);
        Ok(Self { iterations, salt, hash })
    }

    /// Read `$7$ITERATIONS$SALT$HASH`.
    pub fn parse(text: &str) -> Result<Self, HashError> {
        let mut parts = text.split('$');
        let (Some(""), Some("7"), Some(iterations), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(HashError("not a password hash ($7$ITERATIONS$SALT$HASH, as written by passwd)"));
        };
        let iterations = iterations
            .parse::<u32>()
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or(HashError("the iteration count is not a positive number"))?;
        let salt = STANDARD.decode(salt).map_err(|_| HashError("the salt is not Base64"))?;
        let hash = STANDARD.decode(hash).map_err(|_| HashError("the hash is not Base64"))?;
        if salt.is_empty() || hash.len() != HASH_LEN {
            return Err(HashError("the salt is empty or the hash is not 64 bytes"));
        }
        Ok(Self { iterations, salt, hash })
    }

    /// Whether `password` is the one hashed (constant-time comparison).
    pub fn verify(&self, password: &[u8]) -> bool {
        pbkdf2::verify(ALGORITHM, self.iterations, &self.salt, password, &self.hash).is_ok()
    }
}

impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "$7${}${}${}", self.iterations, STANDARD.encode(&self.salt), STANDARD.encode(&self.hash))
    }
}

/// Parse a password file: `user:HASH` lines, `#` comments and blank lines ignored. Errors
/// name the line; a line holding a plain-text password is refused.
pub fn parse_password_file(text: &str) -> Result<BTreeMap<String, PasswordHash>, String> {
    let mut users = BTreeMap::new();
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (user, hash) = line.split_once(':').ok_or_else(|| format!("line {number}: expected USER:HASH"))?;
        let hash = PasswordHash::parse(hash).map_err(|e| {
            format!("line {number} (user {user:?}): {e}; plain-text passwords are not accepted: run `mqttkit-broker passwd FILE {user}`")
        })?;
        users.insert(user.to_owned(), hash);
    }
    Ok(users)
}

/// Set (or add) `user`'s hash in the text of a password file, keeping other lines.
pub fn set_password_line(text: &str, user: &str, hash: &PasswordHash) -> String {
    let mut out = String::with_capacity(text.len().saturating_add(128));
    let mut replaced = false;
    for line in text.lines() {
        if line.split_once(':').is_some_and(|(u, _)| u == user) && !line.trim_start().starts_with('#') {
            if !replaced {
                out.push_str(&format!("{user}:{hash}\n"));
                replaced = true;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !replaced {
        out.push_str(&format!("{user}:{hash}\n"));
    }
    out
}

/// Remove `user`'s line; whether there was one.
pub fn remove_password_line(text: &str, user: &str) -> (String, bool) {
    let mut removed = false;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.split_once(':').is_some_and(|(u, _)| u == user) && !line.trim_start().starts_with('#') {
            removed = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    (out, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_and_verify() {
        let hash = PasswordHash::new(b"secret", 101).unwrap();
        let text = hash.to_string();
        assert!(text.starts_with("$7$101$"), "{text}");
        assert!(!text.contains("secret"));
        let parsed = PasswordHash::parse(&text).unwrap();
        assert_eq!(parsed, hash);
        assert!(parsed.verify(b"secret"));
        assert!(!parsed.verify(b"Secret"));
        assert!(!parsed.verify(b""));
        // Two hashes of one password differ (random salt).
        assert_ne!(PasswordHash::new(b"secret", 101).unwrap().to_string(), text);
    }

    #[test]
    fn reads_a_mosquitto_passwd_line() {
        // Written by mosquitto_passwd 2.0.11 for the password "pw".
        let users = parse_password_file(
            "alice:$7$101$xvmwqhqRZZXM7Us0$QVRUtfRIh92RIG/aGmy/d26PQOpzTrrs6enq9xy5dlTI6SwJMaLkgOCDEMwYg1sAWFdsYQskOni/bg/iSKWdig==\n",
        )
        .unwrap();
        assert!(users["alice"].verify(b"pw"));
        assert!(!users["alice"].verify(b"px"));
    }

    #[test]
    fn refuses_plain_text_and_names_the_line() {
        let err = parse_password_file("# users\nbob:secret\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("bob") && err.contains("plain-text"), "{err}");
        assert!(!err.contains("secret\""), "{err}");
        assert!(PasswordHash::parse("$7$0$AAAA$AAAA").is_err());
        assert!(PasswordHash::parse("$7$10$!!$AAAA").is_err());
    }

    #[test]
    fn edits_lines() {
        let h = PasswordHash::new(b"x", 1).unwrap();
        let text = set_password_line("# c\na:1\nb:2\n", "a", &h);
        assert_eq!(text, format!("# c\na:{h}\nb:2\n"));
        let text = set_password_line(&text, "c", &h);
        assert!(text.ends_with(&format!("c:{h}\n")));
        let (text, removed) = remove_password_line(&text, "b");
        assert!(removed && !text.contains("b:2"));
    }
}
