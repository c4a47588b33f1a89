use std::fmt;

/// A syntactically valid e-mail address, lower-cased so that comparisons ignore case.
///
/// The check is deliberately simple (one `@`, a non-empty local part, a dotted domain, no
/// spaces or control characters, at most 254 characters): the only real proof of an address is
/// a message that arrives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        if s.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if s.len() > 254 {
            return Err("must be at most 254 characters".to_owned());
        }
        let invalid = || format!("'{s}' is not a valid e-mail address");
        let (local, domain) = s.split_once('@').ok_or_else(invalid)?;
        let bad_char = |c: char| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '<' | '>' | ',' | ';' | '"' | '(' | ')' | '[' | ']' | '\\'
                )
        };
        if local.is_empty()
            || local.len() > 64
            || domain.contains('@')
            || s.chars().any(bad_char)
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(invalid());
        }
        Ok(Self(s.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `j***@example.com`: enough to recognise an address in a log, not enough to harvest it.
    pub fn masked(&self) -> String {
        match self.0.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".to_owned(),
        }
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_addresses_are_accepted_and_lower_cased() {
        assert_eq!(
            EmailAddress::parse(" Ops@Acme.Test ").unwrap().as_str(),
            "ops@acme.test"
        );
        assert!(EmailAddress::parse("a.b+tag@sub.example.co").is_ok());
    }

    #[test]
    fn invalid_addresses_are_rejected() {
        for bad in [
            "",
            "plain",
            "@acme.test",
            "a@",
            "a@acme",
            "a@@acme.test",
            "a b@acme.test",
            "a@.acme.test",
            "a@acme..test",
            "a@acme.test.",
            "<a@acme.test>",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(EmailAddress::parse(&format!("{}@acme.test", "a".repeat(65))).is_err());
    }

    #[test]
    fn masked_hides_the_local_part() {
        assert_eq!(
            EmailAddress::parse("jane@acme.test").unwrap().masked(),
            "j***@acme.test"
        );
    }
}
