//! The broker URL on the command line: `mqtt://user:pass@host:port`, validated, with the
//! credentials taken out so that a password is never echoed.

/// A URL split into the address (without credentials) and the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL without `user:pass@`.
    pub url: String,
    /// User name from the URL.
    pub username: Option<String>,
    /// Password from the URL.
    pub password: Option<String>,
}

/// Split `scheme://[user[:pass]@]host[:port][/path]`. Percent-escapes in the user name and
/// password are decoded (`%40` for `@`).
pub fn parse_target(text: &str) -> Result<Target, String> {
    let Some((scheme, rest)) = text.split_once("://") else {
        if text.contains('/') {
            return Err(format!("malformed URL `{text}`: expected SCHEME://HOST:PORT, e.g. mqtt://localhost:1883"));
        }
        return Ok(Target { url: text.to_owned(), username: None, password: None });
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return Ok(Target { url: text.to_owned(), username: None, password: None });
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(percent_decode(password)?)),
        None => (userinfo, None),
    };
    let username = if user.is_empty() { None } else { Some(percent_decode(user)?) };
    Ok(Target { url: format!("{scheme}://{host}{path}"), username, password })
}

fn percent_decode(text: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = tail.get(..2).and_then(|h| std::str::from_utf8(h).ok());
            let value =
                hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or("bad %-escape in the URL's credentials")?;
            bytes.push(value);
            rest = tail.get(2..).unwrap_or_default();
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| "the URL's credentials are not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_the_url() {
        let target = parse_target("mqtt://alice:s%40cret@localhost:1883").expect("valid");
        assert_eq!(target.url, "mqtt://localhost:1883");
        assert_eq!(target.username.as_deref(), Some("alice"));
        assert_eq!(target.password.as_deref(), Some("s@cret"));
        let plain = parse_target("ws://h:8080/mqtt").expect("valid");
        assert_eq!(plain.url, "ws://h:8080/mqtt");
        assert_eq!(plain.username, None);
    }

    #[test]
    fn a_url_without_its_scheme_separator_is_refused() {
        assert!(parse_target("mqtt//host").is_err());
        assert!(parse_target("localhost:1883").is_ok());
    }
}
