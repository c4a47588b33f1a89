use chrono_tz::Tz;

/// An IANA time zone name that chrono-tz knows (`Europe/Berlin`, `UTC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZoneName(Tz);

impl TimeZoneName {
    pub fn parse(input: &str) -> Result<Self, String> {
        input.parse::<Tz>().map(Self).map_err(|_| {
            format!("'{input}' is not an IANA time zone name (like 'Europe/Berlin' or 'UTC')")
        })
    }

    pub fn as_str(&self) -> &str {
        self.0.name()
    }

    pub fn tz(&self) -> Tz {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_names_parse() {
        assert_eq!(
            TimeZoneName::parse("Europe/Berlin").unwrap().as_str(),
            "Europe/Berlin"
        );
        assert!(TimeZoneName::parse("UTC").is_ok());
        assert!(TimeZoneName::parse("Mars/Olympus").is_err());
        assert!(TimeZoneName::parse("").is_err());
    }
}
