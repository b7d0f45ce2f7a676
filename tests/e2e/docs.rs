//! The documentation's relative links: every link from the README, the
//! pages under `docs/` and the listeners' READMEs to a file of the
//! repository points to a file that exists, and every `#anchor` to a
//! heading of that file (GitHub's anchor rule: lower case, punctuation
//! other than `-` and `_` dropped, spaces as `-`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    crate::fixture::manifest_dir()
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The Markdown files whose links are checked.
fn pages(root: &Path) -> Vec<PathBuf> {
    let mut v = vec![root.join("README.md")];
    for dir in ["docs", "listeners"] {
        for e in std::fs::read_dir(root.join(dir)).expect("the folder exists") {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "md") {
                v.push(p);
            } else if p.join("README.md").is_file() {
                v.push(p.join("README.md"));
            }
        }
    }
    v
}

/// The text outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fence = false;
    text.lines()
        .filter(|l| {
            if l.starts_with("```") {
                fence = !fence;
                return false;
            }
            !fence
        })
        .collect()
}

fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> HashSet<String> {
    prose(text)
        .into_iter()
        .filter_map(|l| {
            let h = l.trim_start_matches('#');
            (l.starts_with('#') && h.starts_with(' ')).then(|| slug(h))
        })
        .collect()
}

/// `(target)` of every `[label](target)` outside code: inline code spans
/// are skipped so that a quoted `[x](y)` is not taken for a link.
fn links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut code = false;
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'`' => code = !code,
            b']' if !code && b.get(i + 1) == Some(&b'(') => {
                if let Some(end) = line[i + 2..].find(')') {
                    out.push(line[i + 2..i + 2 + end].to_string());
                    i += 2 + end;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

#[test]
fn every_relative_link_of_the_docs_points_to_a_file_and_heading_that_exist() {
    let root = repo();
    let mut broken = Vec::new();
    let pages = pages(&root);
    assert!(pages.len() > 10, "found only {pages:?}");
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for line in prose(&text) {
            for target in links(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (file, anchor) = match target.split_once('#') {
                    Some((f, a)) => (f, Some(a)),
                    None => (target.as_str(), None),
                };
                let path = if file.is_empty() {
                    page.clone()
                } else {
                    page.parent().unwrap().join(file)
                };
                if !path.exists() {
                    broken.push(format!("{}: {target}: no such file", page.display()));
                    continue;
                }
                if let Some(a) = anchor {
                    let t = std::fs::read_to_string(&path).unwrap_or_default();
                    if !anchors(&t).contains(a) {
                        broken.push(format!("{}: {target}: no such heading", page.display()));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_check_sees_a_broken_link_and_a_missing_heading() {
    assert_eq!(
        links("see [a](docs/x.md#y) and `[b](c)`"),
        vec!["docs/x.md#y"]
    );
    assert_eq!(slug(" Proof: the torture suite"), "proof-the-torture-suite");
    assert!(
        anchors("# T\n```\n# not\n```\n## Hot backup over SSH\n").contains("hot-backup-over-ssh")
    );
    assert!(!anchors("```\n## Inside code\n```\n").contains("inside-code"));
}
