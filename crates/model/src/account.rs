//! Rules of accounts: which usernames may exist, which passwords are strong enough, how
//! many live sign-ins one user keeps and how many topic requests they may have pending.

use std::fmt;

/// Usernames are 1 to this many characters.
pub const MAX_USERNAME_CHARS: usize = 64;

/// Names an account may not take, whatever their case: they are principals the audit log
/// already shows (the producer key signs as `producer`, the service as `system`), so an
/// account of that name would pass for them.
pub const RESERVED_USERNAMES: &[&str] = &["producer", "system"];

/// Passwords have at least this many characters...
pub const MIN_PASSWORD_CHARS: usize = 8;
/// ...and at most this many (hashing a megabyte would be a cheap way to load the service).
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// ...and zxcvbn must rate them at least this (0 to 4; 3 = "safely unguessable: moderate
/// protection from offline slow-hash attacks", about 10^10 guesses).
pub const MIN_PASSWORD_SCORE: u8 = 3;

/// Live tokens (sign-ins) one user keeps at most; a new sign-in beyond it ends the oldest.
pub const MAX_TOKENS_PER_USER: i64 = 20;

/// Topic requests one requester may have waiting for a decision; admins, who decide on
/// them, are not limited.
pub const MAX_PENDING_TOPICS_PER_USER: i64 = 20;

/// Why a username or password is refused; the message is meant for the person typing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Whether `username` may name a new account: 1 to 64 letters, digits, `.`, `_`, `-` or
/// `@`, and none of [`RESERVED_USERNAMES`] in any case.
pub fn check_username(username: &str) -> Result<(), Refused> {
    let ok = (1..=MAX_USERNAME_CHARS).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !ok {
        return Err(Refused(format!(
            "username {username:?} is not allowed: use 1 to {MAX_USERNAME_CHARS} letters, digits, '.', '_', '-' or '@'"
        )));
    }
    // Names differing only in case are one name (the store compares them so too).
    if RESERVED_USERNAMES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(username))
    {
        return Err(Refused(format!(
            "username '{username}' is reserved: it names a principal of the service"
        )));
    }
    Ok(())
}

/// Whether `password` is good enough for the account `username`: 8 to 1024 characters,
/// not containing the username (in any case), and rated at least [`MIN_PASSWORD_SCORE`]
/// by zxcvbn, which knows common passwords, words, sequences, repeats and dates.
pub fn check_password(username: &str, password: &str) -> Result<(), Refused> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(Refused(format!(
            "password must have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    let (password_key, username_key) = (password.to_lowercase(), username.to_lowercase());
    // A name of one or two characters is inside many good passwords by chance.
    let contains = username_key.chars().count() >= 3 && password_key.contains(&username_key);
    if password_key == username_key || contains {
        return Err(Refused("password must not contain the username".to_owned()));
    }
    // zxcvbn's time grows fast with length; past its first 100 characters a password is
    // a passphrase whose start already tells its strength.
    let estimated: String = password.chars().take(100).collect();
    let entropy = zxcvbn::zxcvbn(&estimated, &[username]);
    let score = u8::from(entropy.score());
    if score < MIN_PASSWORD_SCORE {
        let mut why = format!(
            "password is too easy to guess (strength {score} of 4, at least {MIN_PASSWORD_SCORE} needed)"
        );
        if let Some(feedback) = entropy.feedback() {
            if let Some(warning) = feedback.warning() {
                why.push_str(&format!(": {}", warning.to_string().trim_end_matches('.')));
            }
            if let Some(suggestion) = feedback.suggestions().first() {
                why.push_str(&format!(
                    ". {}",
                    suggestion.to_string().trim_end_matches('.')
                ));
            }
        }
        return Err(Refused(why));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused() {
        for weak in [
            "a",
            "password",
            "12345678",
            "        ",
            "qwertyuiop",
            "Password1",
            "aaaaaaaaaaaa",
        ] {
            let r = check_password("alice", weak);
            assert!(r.is_err(), "{weak:?} was accepted");
        }
        // Equal to or containing the username, in any case, however long.
        for own in [
            "carol-the-admin",
            "CAROL-THE-ADMIN",
            "xX9#carol-the-admin#Xx",
        ] {
            let r = check_password("carol-the-admin", own);
            assert_eq!(
                r,
                Err(Refused("password must not contain the username".into())),
                "{own:?}"
            );
        }
    }

    #[test]
    fn strong_passwords_are_accepted() {
        for strong in [
            "correct horse battery staple",
            "Tq7#vLm2!pZx",
            "kettle-orbit-lantern-57",
        ] {
            assert_eq!(check_password("alice", strong), Ok(()), "{strong:?}");
        }
        let too_long = "x".repeat(MAX_PASSWORD_CHARS + 1);
        assert!(check_password("alice", &too_long).is_err());
    }

    #[test]
    fn reserved_and_malformed_usernames_are_refused_in_any_case() {
        for reserved in ["producer", "PRODUCER", "System", "sYsTeM"] {
            let r = check_username(reserved);
            assert!(
                matches!(&r, Err(Refused(m)) if m.contains("reserved")),
                "{reserved:?}: {r:?}"
            );
        }
        for bad in ["", "bad name", "a\nb", "é", &"x".repeat(65)] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
        for good in [
            "alice",
            "Bob.Smith",
            "ops@example.com",
            "producer2",
            "admin",
        ] {
            assert_eq!(check_username(good), Ok(()), "{good:?}");
        }
    }
}
