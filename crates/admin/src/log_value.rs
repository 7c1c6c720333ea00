//! User-supplied values as they go into log lines. The text log is read by people and
//! parsed by tools line by line: a value written raw could end a line and forge the next
//! one (`\nINFO signed in username=admin`), restyle a terminal with ANSI escapes, or hide
//! what follows behind a NUL. Every handler logs such values through [`Untrusted`].

use std::fmt;

use sha2::{Digest, Sha256};

/// A logged value is cut after this many characters: names are at most 64.
const MAX_CHARS: usize = 128;

/// Displays a user-supplied value with control characters (newlines, ESC, NUL, ...),
/// quotes and backslashes escaped as Rust escapes them (`\n`, `\u{1b}`, `\0`), and cut
/// at 128 characters.
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(MAX_CHARS) {
            fmt::Display::fmt(&c.escape_debug(), f)?;
        }
        if chars.next().is_some() {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// The username of a refused sign-in as the log shows it: the name when such an account
/// exists, else a short hash. People type passwords into the username field; a name no
/// account has may be one, and must not be logged. The hash still lets repeated
/// attempts with one name be told apart from many names.
pub fn refused_username(username: &str, account_exists: bool) -> String {
    if account_exists {
        Untrusted(username).to_string()
    } else {
        let digest = Sha256::digest(username.as_bytes());
        format!("unknown:{}", hex::encode(&digest[..4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_end_a_line_or_reach_the_terminal() {
        let forged = "x\nINFO signed in username=admin role=admin\r\u{1b}[2J\0\"\\";
        let shown = Untrusted(forged).to_string();
        assert_eq!(
            shown,
            r#"x\nINFO signed in username=admin role=admin\r\u{1b}[2J\0\"\\"#
        );
        assert!(shown.chars().all(|c| !c.is_control()), "{shown}");
        let long = "a".repeat(1000);
        assert_eq!(
            Untrusted(&long).to_string(),
            format!("{}...", "a".repeat(MAX_CHARS))
        );
    }

    #[test]
    fn unknown_names_are_logged_as_a_short_hash() {
        assert_eq!(refused_username("alice", true), "alice");
        let hidden = refused_username("Tq7#vLm2!pZx", false);
        assert!(
            hidden.starts_with("unknown:") && hidden.len() == 16,
            "{hidden}"
        );
        assert!(!hidden.contains("Tq7"));
        assert_eq!(hidden, refused_username("Tq7#vLm2!pZx", false));
        assert_ne!(hidden, refused_username("Tq7#vLm2!pZy", false));
    }
}
