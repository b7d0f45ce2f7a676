//! The small `subject` / `body` template language: `{name}` is replaced by a
//! value, `{{` and `}}` are literal braces. Unknown names are refused when
//! the config is read, not when a mail is due.

/// Names a template may use.
pub const NAMES: &[&str] = &[
    "journal",
    "listener",
    "count",
    "first_line",
    "change",
    "user",
    "first",
    "last",
    "entries",
    "message_id",
];

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(Vec<Part>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
}

impl Template {
    /// Parses `s`; the error says what is wrong and where.
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = s.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let rest = &s[i + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!(
                            "`{{` at byte {i} is never closed (write `{{{{` for a literal brace)"
                        ));
                    };
                    let name = &rest[..end];
                    if !NAMES.contains(&name) {
                        return Err(format!(
                            "unknown placeholder `{{{name}}}`; known: {}",
                            NAMES.join(", ")
                        ));
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var(name.to_string()));
                    for _ in 0..=end {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!(
                        "lone `}}` at byte {i} (write `}}}}` for a literal brace)"
                    ))
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template(parts))
    }

    /// Renders with `value(name)` for each placeholder.
    pub fn render(&self, value: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(&value(v)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders_and_escapes() {
        let t = Template::parse("{{x}} {count} entries from {journal}}}").unwrap();
        let s = t.render(|n| match n {
            "count" => "3".into(),
            "journal" => "p4".into(),
            _ => unreachable!(),
        });
        assert_eq!(s, "{x} 3 entries from p4}");
    }

    #[test]
    fn refuses_unknown_and_unclosed() {
        assert!(Template::parse("{nope}")
            .unwrap_err()
            .contains("unknown placeholder `{nope}`"));
        assert!(Template::parse("a {count")
            .unwrap_err()
            .contains("never closed"));
        assert!(Template::parse("a } b").unwrap_err().contains("lone"));
    }
}
