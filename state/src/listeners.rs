//! The cursors of one journal's listeners, by name.
//!
//! A sorted vector rather than a `BTreeMap`: a map's first node has room
//! for eleven entries (about 1.3 KiB with cursors) even when it holds the
//! one listener most journals have, and the daemon keeps one of these per
//! journal, for thousands of journals. A journal has a handful of
//! listeners at most, so a binary search finds one as fast. Iteration is
//! in name order, as a map's.

use std::ops::Index;

use crate::model::Cursor;

/// Listener name → acknowledged cursor, in name order, each name once.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Listeners(Vec<(String, Cursor)>);

impl Listeners {
    pub fn new() -> Listeners {
        Listeners::default()
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&Cursor> {
        self.find(name).ok().map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Cursor> {
        self.find(name).ok().map(|i| &mut self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Sets the cursor of `name`; the one it replaces, if any.
    pub fn insert(&mut self, name: String, cursor: Cursor) -> Option<Cursor> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, cursor)),
            Err(i) => {
                // Room for this one only: most journals never get another.
                self.0.reserve_exact(1);
                self.0.insert(i, (name, cursor));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Cursor> {
        self.find(name).ok().map(|i| self.0.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter(self.0.iter())
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator + '_ {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Cursor> + ExactSizeIterator + '_ {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn values_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = &mut Cursor> + ExactSizeIterator + '_ {
        self.0.iter_mut().map(|(_, v)| v)
    }
}

impl Index<&str> for Listeners {
    type Output = Cursor;

    /// The cursor of `name`; panics when there is none, as a map's index.
    fn index(&self, name: &str) -> &Cursor {
        self.get(name).expect("no listener of that name")
    }
}

/// The listeners in name order.
pub struct Iter<'a>(std::slice::Iter<'a, (String, Cursor)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a Cursor);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Listeners {
    type Item = (&'a String, &'a Cursor);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl FromIterator<(String, Cursor)> for Listeners {
    /// As a map collects: a name given twice keeps its last cursor.
    fn from_iter<I: IntoIterator<Item = (String, Cursor)>>(iter: I) -> Listeners {
        let mut out = Listeners::new();
        for (k, v) in iter {
            out.insert(k, v);
        }
        out.0.shrink_to_fit();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u64) -> Cursor {
        Cursor {
            line,
            ..Cursor::default()
        }
    }

    #[test]
    fn behaves_as_a_map_in_name_order() {
        let mut m = Listeners::new();
        assert!(m.is_empty() && m.get("a").is_none());
        assert_eq!(m.insert("mail".into(), at(1)), None);
        assert_eq!(m.insert("copy".into(), at(2)), None);
        assert_eq!(m.insert("zz".into(), at(3)), None);
        assert_eq!(m.insert("copy".into(), at(4)), Some(at(2)));
        assert_eq!(m.len(), 3);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["copy", "mail", "zz"]);
        assert_eq!(m["copy"], at(4));
        assert!(m.contains_key("mail") && !m.contains_key("nope"));
        m.get_mut("zz").unwrap().line = 9;
        assert_eq!(m.values().map(|c| c.line).collect::<Vec<_>>(), [4, 1, 9]);
        assert_eq!(m.remove("mail"), Some(at(1)));
        assert_eq!(m.remove("mail"), None);
        let pairs: Vec<(&String, &Cursor)> = (&m).into_iter().collect();
        assert_eq!(
            pairs,
            [(&"copy".to_string(), &at(4)), (&"zz".to_string(), &at(9))]
        );
        let again: Listeners = [
            ("b".to_string(), at(1)),
            ("a".into(), at(2)),
            ("b".into(), at(3)),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            again
                .iter()
                .map(|(k, c)| (k.as_str(), c.line))
                .collect::<Vec<_>>(),
            [("a", 2), ("b", 3)]
        );
    }

    #[test]
    fn one_listener_holds_room_for_one() {
        let mut m = Listeners::new();
        m.insert("copy".into(), at(1));
        assert_eq!(m.0.capacity(), 1);
    }
}
