//! An alert's label set, which is also its identity: two answers name the
//! same alert exactly when their label sets are equal.
//!
//! A poll can hold ten thousand of them and compares each with the previous
//! poll's, so a set is kept in one string (names and values back to back,
//! sorted by name) plus the offsets that cut it: two allocations per alert
//! instead of two per label and a tree, and identities compare as plain
//! strings.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Index;

/// The labels of one alert, sorted by name, each name once.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelSet {
    /// `name₁ value₁ name₂ value₂ …`, with nothing between them.
    text: Box<str>,
    /// Where each name and each value ends in `text`, alternately.
    ends: Box<[u32]>,
}

impl LabelSet {
    /// The set of these pairs; when a name comes twice the last value wins,
    /// as in a JSON object.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> LabelSet {
        let mut pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
        LabelSet::from_slice(&mut pairs)
    }

    /// The set of these pairs, sorting them in place: the decoder's way,
    /// which reuses one buffer for every alert. Prometheus sends labels
    /// sorted, so the sort is usually only a check.
    pub fn from_slice<N: AsRef<str>, V: AsRef<str>>(pairs: &mut [(N, V)]) -> LabelSet {
        if !pairs.is_sorted_by(|a, b| a.0.as_ref() <= b.0.as_ref()) {
            // Stable: of pairs with the same name, the last stays last.
            pairs.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        }
        let size = pairs
            .iter()
            .map(|(n, v)| n.as_ref().len() + v.as_ref().len())
            .sum();
        let mut text = String::with_capacity(size);
        let mut ends = Vec::with_capacity(pairs.len() * 2);
        for (i, (name, value)) in pairs.iter().enumerate() {
            let (name, value) = (name.as_ref(), value.as_ref());
            // A name given again later: that later value wins.
            if pairs.get(i + 1).is_some_and(|next| next.0.as_ref() == name) {
                continue;
            }
            for part in [name, value] {
                text.push_str(part);
                ends.push(u32::try_from(text.len()).expect("a label set under 4 GiB"));
            }
        }
        LabelSet {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    /// The pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.ends.chunks_exact(2).map(move |pair| {
            let (name_end, value_end) = (pair[0] as usize, pair[1] as usize);
            let name = &self.text[start..name_end];
            let value = &self.text[name_end..value_end];
            start = value_end;
            (name, value)
        })
    }

    /// The value of one label.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

impl fmt::Debug for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for LabelSet {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> Self {
        LabelSet::from_pairs(pairs)
    }
}

impl FromIterator<(String, String)> for LabelSet {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let owned: Vec<(String, String)> = pairs.into_iter().collect();
        LabelSet::from_pairs(owned.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }
}

impl From<&BTreeMap<String, String>> for LabelSet {
    fn from(map: &BTreeMap<String, String>) -> Self {
        LabelSet::from_pairs(map.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }
}

/// `labels["alertname"]`, for tests and fixtures; panics on a missing name.
impl Index<&str> for LabelSet {
    type Output = str;

    fn index(&self, name: &str) -> &str {
        self.get(name)
            .unwrap_or_else(|| panic!("no label {name:?} in {self:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_each_name_once_the_last_value_winning() {
        let set = LabelSet::from_pairs([("b", "2"), ("a", "1"), ("b", "3"), ("", "empty")]);
        let pairs: Vec<(&str, &str)> = set.iter().collect();
        assert_eq!(pairs, [("", "empty"), ("a", "1"), ("b", "3")]);
        assert_eq!(
            (set.len(), set.get("b"), set.get("c")),
            (3, Some("3"), None)
        );
        assert_eq!(&set["a"], "1");
        assert_eq!(format!("{set:?}"), r#"{"": "empty", "a": "1", "b": "3"}"#);
        assert!(LabelSet::default().is_empty());
    }

    /// Equal sets are equal whatever the order they came in; sets whose
    /// strings run together the same way are not.
    #[test]
    fn identity_is_the_set() {
        let one = LabelSet::from_pairs([("a", "1"), ("b", "2")]);
        assert_eq!(one, LabelSet::from_pairs([("b", "2"), ("a", "1")]));
        assert_ne!(one, LabelSet::from_pairs([("a", "1b"), ("", "2")]));
        assert_ne!(one, LabelSet::from_pairs([("a", "12"), ("b", "")]));
        assert_ne!(one, LabelSet::from_pairs([("a", "1")]));
        let map: BTreeMap<String, String> =
            [("b".into(), "2".into()), ("a".into(), "1".into())].into();
        assert_eq!(LabelSet::from(&map), one);
        let owned: LabelSet = map.into_iter().collect();
        assert_eq!(owned, one);
    }

    #[test]
    fn utf8_names_and_values() {
        let set = LabelSet::from_pairs([("service.name", "zürich"), ("ä", "ö")]);
        assert_eq!(set.get("service.name"), Some("zürich"));
        assert_eq!(set.get("ä"), Some("ö"));
    }
}
