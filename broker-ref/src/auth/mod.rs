//! Authentication and authorisation like mosquitto's: a password file of salted hashes
//! ([`password`], mosquitto_passwd's format) and an ACL file ([`acl`], mosquitto's
//! `acl_file` format), beside the configuration's global deny lists.

pub mod acl;
pub mod password;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock, PoisonError};

use ring::hmac;
use ring::rand::SystemRandom;

pub use self::acl::{Access, AclFile};
pub use self::password::PasswordHash;

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// No user name, and anonymous clients are not allowed.
    AnonymousNotAllowed,
    /// Unknown user, missing or wrong password.
    BadCredentials,
}

/// Checks user names and passwords against the configured hashes.
///
/// Deriving a hash costs its iteration count in HMAC-SHA512 rounds, on the broker's
/// thread. A successful login is remembered (as an HMAC of the password under a key
/// drawn at start, never the password) so that a client reconnecting with the same
/// password costs one HMAC; a failed one is never remembered.
#[derive(Debug, Default)]
pub struct Authenticator {
    users: BTreeMap<String, PasswordHash>,
    /// Whether user names and passwords are checked at all.
    enabled: bool,
    allow_anonymous: bool,
    verified: Mutex<HashMap<String, hmac::Tag>>,
    key: OnceLock<Option<hmac::Key>>,
}

impl Authenticator {
    /// Check every login against `users` (when `enabled`).
    pub fn new(users: BTreeMap<String, PasswordHash>, enabled: bool, allow_anonymous: bool) -> Self {
        Self { users, enabled, allow_anonymous, ..Self::default() }
    }

    /// Whether logins are checked.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Check a CONNECT's user name and password.
    pub fn check(&self, user: Option<&str>, password: Option<&[u8]>) -> Result<(), LoginRefusal> {
        if !self.enabled {
            return Ok(());
        }
        let Some(user) = user else {
            return if self.allow_anonymous { Ok(()) } else { Err(LoginRefusal::AnonymousNotAllowed) };
        };
        let (Some(password), Some(hash)) = (password, self.users.get(user)) else {
            return Err(LoginRefusal::BadCredentials);
        };
        let key = self.key.get_or_init(|| hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()).ok());
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Some(key), Some(known)) = (key, verified.get(user))
            && hmac::verify(key, password, known.as_ref()).is_ok()
        {
            return Ok(());
        }
        if !hash.verify(password) {
            return Err(LoginRefusal::BadCredentials);
        }
        if let Some(key) = key {
            verified.insert(user.to_owned(), hmac::sign(key, password));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_and_remembers_only_successes() {
        let users = [("alice".to_owned(), PasswordHash::new(b"pw", 50).unwrap())].into_iter().collect();
        let auth = Authenticator::new(users, true, false);
        assert_eq!(auth.check(None, None), Err(LoginRefusal::AnonymousNotAllowed));
        assert_eq!(auth.check(Some("alice"), None), Err(LoginRefusal::BadCredentials));
        assert_eq!(auth.check(Some("alice"), Some(b"no")), Err(LoginRefusal::BadCredentials));
        assert_eq!(auth.check(Some("bob"), Some(b"pw")), Err(LoginRefusal::BadCredentials));
        assert_eq!(auth.check(Some("alice"), Some(b"pw")), Ok(()));
        assert_eq!(auth.check(Some("alice"), Some(b"pw")), Ok(()), "from the cache");
        assert_eq!(auth.check(Some("alice"), Some(b"no")), Err(LoginRefusal::BadCredentials), "after a success");
        let open = Authenticator::new(BTreeMap::new(), true, true);
        assert_eq!(open.check(None, None), Ok(()));
        assert_eq!(Authenticator::default().check(Some("x"), Some(b"y")), Ok(()), "not enabled");
    }
}
