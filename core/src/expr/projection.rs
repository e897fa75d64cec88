//! Projection expressions: a comma-separated list of document paths, and the projection of
//! an item onto them (nested paths keep only the named parts, list elements keep their
//! relative order).

use std::collections::BTreeMap;

use crate::model::{AttributeValue, Item};

use super::lexer::TokenKind;
use super::parser::Parser;
use super::path::{Path, PathElement, check_disjoint};

/// Parses a whole projection expression.
pub(crate) fn parse(parser: &mut Parser<'_, '_, '_>) -> Result<Vec<Path>, String> {
    let mut paths = vec![parser.parse_path()?];
    while parser.peek().kind == TokenKind::Comma {
        parser.advance();
        paths.push(parser.parse_path()?);
    }
    parser.expect_end()?;
    let refs: Vec<&Path> = paths.iter().collect();
    check_disjoint(&refs)?;
    Ok(paths)
}

/// The requested paths as a tree. A `whole` node takes the entire value below it.
#[derive(Default)]
struct Node {
    whole: bool,
    fields: BTreeMap<String, Node>,
    indexes: BTreeMap<usize, Node>,
}

impl Node {
    fn insert(&mut self, path: &Path) {
        let mut node = self.fields.entry(path.attribute().to_string()).or_default();
        for element in path.elements() {
            if node.whole {
                return;
            }
            node = match element {
                PathElement::Field(f) => node.fields.entry(f.clone()).or_default(),
                PathElement::Index(i) => node.indexes.entry(*i).or_default(),
            };
        }
        node.whole = true;
    }

    fn project(&self, value: &AttributeValue) -> Option<AttributeValue> {
        if self.whole {
            return Some(value.clone());
        }
        match value {
            AttributeValue::M(map) if !self.fields.is_empty() => {
                let projected: BTreeMap<String, AttributeValue> = self
                    .fields
                    .iter()
                    .filter_map(|(k, node)| Some((k.clone(), node.project(map.get(k)?)?)))
                    .collect();
                (!projected.is_empty()).then_some(AttributeValue::M(projected))
            }
            AttributeValue::L(list) if !self.indexes.is_empty() => {
                let projected: Vec<AttributeValue> = self
                    .indexes
                    .iter()
                    .filter_map(|(i, node)| node.project(list.get(*i)?))
                    .collect();
                (!projected.is_empty()).then_some(AttributeValue::L(projected))
            }
            _ => None,
        }
    }
}

/// `item` restricted to `paths`.
pub(crate) fn apply(paths: &[Path], item: &Item) -> Item {
    let mut root = Node::default();
    for path in paths {
        root.insert(path);
    }
    root.fields
        .iter()
        .filter_map(|(name, node)| Some((name.clone(), node.project(item.get(name)?)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::expr::Placeholders;

    fn parse_text(text: &str) -> Result<Vec<Path>, String> {
        let names = HashMap::from([("#n".to_string(), "a.b".to_string())]);
        let mut ph = Placeholders::new(Some(&names), None);
        let mut parser = Parser::new(crate::expr::parser::ExprKind::Projection, text, &mut ph)?;
        parse(&mut parser)
    }

    fn item(json: &str) -> Item {
        serde_json::from_str(json).unwrap()
    }

    fn project(text: &str) -> Item {
        let it = item(
            r#"{"a":{"M":{"b":{"L":[{"N":"2"},{"N":"4"},{"M":{"x":{"S":"hi"},"y":{"S":"yo"}}}]},"c":{"N":"5"}}},
                "b":{"S":"hello"},"a.b":{"S":"dot"}}"#,
        );
        apply(&parse_text(text).unwrap(), &it)
    }

    #[test]
    fn projects_nested_paths() {
        assert_eq!(project("b"), item(r#"{"b":{"S":"hello"}}"#));
        assert_eq!(project("#n"), item(r#"{"a.b":{"S":"dot"}}"#));
        assert_eq!(
            project("a.b[0]"),
            item(r#"{"a":{"M":{"b":{"L":[{"N":"2"}]}}}}"#)
        );
        assert_eq!(
            project("a.b[2].y"),
            item(r#"{"a":{"M":{"b":{"L":[{"M":{"y":{"S":"yo"}}}]}}}}"#)
        );
        assert_eq!(
            project("a.b[1], a.b[0], a.c"),
            item(r#"{"a":{"M":{"b":{"L":[{"N":"2"},{"N":"4"}]},"c":{"N":"5"}}}}"#)
        );
        for missing in [
            "x",
            "a.b[3]",
            "a.x",
            "a.x.y",
            "a.b.x",
            "a[0]",
            "a.b[0].x",
            "a.b[0][0]",
        ] {
            assert_eq!(project(missing), Item::new(), "{missing}");
        }
        assert_eq!(
            project("a.x, a.b[0], x, a.b[3].x"),
            item(r#"{"a":{"M":{"b":{"L":[{"N":"2"}]}}}}"#)
        );
    }

    #[test]
    fn rejects_bad_projections() {
        for text in ["a, a", "a.b, a.b[2]", "a, a.b[2].c", "a.b.d.e, a.b"] {
            assert!(parse_text(text).unwrap_err().contains("overlap"), "{text}");
        }
        for text in ["a.b, a[1]", "a.b.c, a.b[1]"] {
            assert!(parse_text(text).unwrap_err().contains("conflict"), "{text}");
        }
        for text in ["a, b", "a.b, a.c", "a[1], a[2]", "a.b, a.c[2]"] {
            assert!(parse_text(text).is_ok(), "{text}");
        }
        for text in ["a,", ",a", "a,,b", "a b"] {
            assert!(
                parse_text(text).unwrap_err().starts_with("Syntax error"),
                "{text}"
            );
        }
    }

    #[test]
    fn overlapping_paths_from_code_take_the_widest() {
        let it = item(r#"{"a":{"M":{"b":{"N":"1"},"c":{"N":"2"}}}}"#);
        let paths = vec![Path::new("a").field("b"), Path::new("a")];
        assert_eq!(apply(&paths, &it), it);
        let paths = vec![Path::new("a"), Path::new("a").field("b")];
        assert_eq!(apply(&paths, &it), it);
    }
}
