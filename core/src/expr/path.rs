//! Document paths (`a.b[2].c`): a top-level attribute name followed by map fields and list
//! indexes, with lookup in an item and DynamoDB's overlap/conflict rules between paths.

use std::fmt;

use crate::model::{AttributeValue, Item};

/// Deepest document path DynamoDB accepts, counting the top-level name as one level.
pub(crate) const MAX_PATH_DEPTH: usize = 32;

/// One step of a document path below the top-level attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathElement {
    /// `.name`: a member of a map.
    Field(String),
    /// `[n]`: an element of a list.
    Index(usize),
}

/// A document path: top-level attribute name plus `.field` / `[index]` elements.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path {
    name: String,
    elements: Vec<PathElement>,
}

impl Path {
    /// The path of a top-level attribute.
    pub fn new(name: impl Into<String>) -> Path {
        Path {
            name: name.into(),
            elements: Vec::new(),
        }
    }

    /// This path extended by a map member.
    pub fn field(mut self, name: impl Into<String>) -> Path {
        self.elements.push(PathElement::Field(name.into()));
        self
    }

    /// This path extended by a list element.
    pub fn index(mut self, index: usize) -> Path {
        self.elements.push(PathElement::Index(index));
        self
    }

    /// The top-level attribute name.
    pub fn attribute(&self) -> &str {
        &self.name
    }

    /// The elements below the top-level attribute.
    pub fn elements(&self) -> &[PathElement] {
        &self.elements
    }

    pub(crate) fn push(&mut self, element: PathElement) {
        self.elements.push(element);
    }

    /// Levels of nesting, the top-level name included.
    pub(crate) fn depth(&self) -> usize {
        1 + self.elements.len()
    }

    /// The value at this path in `item`, if every step exists and has the right type.
    pub(crate) fn resolve<'v>(&self, item: &'v Item) -> Option<&'v AttributeValue> {
        let mut current = item.get(&self.name)?;
        for element in &self.elements {
            current = match (element, current) {
                (PathElement::Field(f), AttributeValue::M(m)) => m.get(f)?,
                (PathElement::Index(i), AttributeValue::L(l)) => l.get(*i)?,
                _ => return None,
            };
        }
        Some(current)
    }

    /// DynamoDB's rendering in error messages: `[a, b, [0]]`.
    pub(crate) fn bracketed(&self) -> String {
        let mut parts = vec![self.name.clone()];
        parts.extend(self.elements.iter().map(|e| match e {
            PathElement::Field(f) => f.clone(),
            PathElement::Index(i) => format!("[{i}]"),
        }));
        format!("[{}]", parts.join(", "))
    }
}

impl fmt::Display for Path {
    /// Expression syntax (`a.b[2]`); names are written verbatim, so names that are not plain
    /// identifiers will not re-parse.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for element in &self.elements {
            match element {
                PathElement::Field(name) => write!(f, ".{name}")?,
                PathElement::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// Rejects two paths of one expression that overlap (one is a prefix of the other) or
/// conflict (they diverge where one indexes a list and the other names a map member), with
/// DynamoDB's messages.
pub(crate) fn check_disjoint(paths: &[&Path]) -> Result<(), String> {
    for (i, first) in paths.iter().enumerate() {
        for second in paths.iter().skip(i + 1) {
            check_pair(first, second)?;
        }
    }
    Ok(())
}

fn check_pair(one: &Path, two: &Path) -> Result<(), String> {
    if one.name != two.name {
        return Ok(());
    }
    for (a, b) in one.elements.iter().zip(&two.elements) {
        match (a, b) {
            (PathElement::Field(x), PathElement::Field(y)) if x == y => {}
            (PathElement::Index(x), PathElement::Index(y)) if x == y => {}
            (PathElement::Field(_), PathElement::Field(_))
            | (PathElement::Index(_), PathElement::Index(_)) => return Ok(()),
            _ => {
                return Err(format!(
                    "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
                    one.bracketed(),
                    two.bracketed()
                ));
            }
        }
    }
    Err(format!(
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
        one.bracketed(),
        two.bracketed()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(json: &str) -> Item {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn display_and_brackets() {
        let p = Path::new("a").field("b").index(2).field("c");
        assert_eq!(p.to_string(), "a.b[2].c");
        assert_eq!(p.bracketed(), "[a, b, [2], c]");
        assert_eq!(p.depth(), 4);
    }

    #[test]
    fn resolves_nested_values() {
        let it = item(r#"{"a":{"M":{"b":{"L":[{"N":"1"},{"S":"x"}]}}}}"#);
        assert_eq!(
            Path::new("a").field("b").index(1).resolve(&it),
            Some(&AttributeValue::S("x".into()))
        );
        assert_eq!(Path::new("a").field("b").index(2).resolve(&it), None);
        assert_eq!(Path::new("a").index(0).resolve(&it), None);
        assert_eq!(Path::new("a").field("b").field("c").resolve(&it), None);
        assert_eq!(Path::new("z").resolve(&it), None);
    }

    #[test]
    fn overlap_and_conflict() {
        let a = Path::new("a");
        let ab = Path::new("a").field("b");
        let ac = Path::new("a").field("c");
        let a1 = Path::new("a").index(1);
        let a2 = Path::new("a").index(2);
        let b = Path::new("b");
        assert!(check_disjoint(&[&a, &ab]).unwrap_err().contains("overlap"));
        assert!(check_disjoint(&[&ab, &ab]).unwrap_err().contains("overlap"));
        assert!(
            check_disjoint(&[&ab, &a1])
                .unwrap_err()
                .contains("conflict")
        );
        assert_eq!(
            check_disjoint(&[&a1, &ab]).unwrap_err(),
            "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, [1]], path two: [a, b]"
        );
        assert!(check_disjoint(&[&ab, &ac, &b]).is_ok());
        assert!(check_disjoint(&[&a1, &a2]).is_ok());
    }
}
