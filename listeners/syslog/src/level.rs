//! Syslog severities and the level names applications write: syslog's own,
//! Python `logging`'s and Java's (log4j, logback, java.util.logging), so that
//! a captured `level` maps without configuration.

/// A syslog severity, 0 (emerg) to 7 (debug).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Severity(u8);

/// Known names, compared without regard to ASCII case.
const NAMES: &[(&str, u8)] = &[
    // syslog
    ("emerg", 0),
    ("emergency", 0),
    ("panic", 0),
    ("alert", 1),
    ("crit", 2),
    ("critical", 2),
    ("err", 3),
    ("error", 3),
    ("warning", 4),
    ("warn", 4),
    ("notice", 5),
    ("info", 6),
    ("informational", 6),
    ("debug", 7),
    // Python logging (CRITICAL, ERROR, WARNING, INFO, DEBUG above) and Java
    ("fatal", 2),
    ("severe", 3),
    ("config", 6),
    ("fine", 7),
    ("finer", 7),
    ("finest", 7),
    ("trace", 7),
    ("notset", 7),
];

impl Severity {
    pub const INFO: Severity = Severity(6);

    pub fn code(self) -> u8 {
        self.0
    }

    /// The severity a level name stands for, if it is a known name.
    pub fn from_name(name: &[u8]) -> Option<Severity> {
        NAMES
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|&(_, s)| Severity(s))
    }

    /// A configured name first (`levels`), then the known names.
    pub fn lookup(name: &[u8], extra: &[(String, Severity)]) -> Option<Severity> {
        extra
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|&(_, s)| s)
            .or_else(|| Severity::from_name(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_syslog_and_java_names() {
        let code = |n: &str| Severity::from_name(n.as_bytes()).map(Severity::code);
        for (n, c) in [
            ("CRITICAL", 2),
            ("ERROR", 3),
            ("WARNING", 4),
            ("INFO", 6),
            ("DEBUG", 7),
            ("emerg", 0),
            ("alert", 1),
            ("notice", 5),
            ("FATAL", 2),
            ("SEVERE", 3),
            ("WARN", 4),
            ("CONFIG", 6),
            ("FINEST", 7),
            ("TRACE", 7),
        ] {
            assert_eq!(code(n), Some(c), "{n}");
        }
        assert_eq!(code("LOUD"), None);
        let extra = [
            ("AUDIT".to_string(), Severity(5)),
            ("info".to_string(), Severity(4)),
        ];
        assert_eq!(Severity::lookup(b"audit", &extra), Some(Severity(5)));
        assert_eq!(Severity::lookup(b"INFO", &extra), Some(Severity(4)));
        assert_eq!(Severity::lookup(b"error", &extra), Some(Severity(3)));
    }
}
