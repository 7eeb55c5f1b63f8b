//! A YAML document as a tree of nodes that each carry their line and column, and a serde
//! `Deserializer` over that tree.
//!
//! Deserializing a recipe straight from the YAML text stops at the first error. Recipes are
//! validated as a whole instead: the text is parsed once into [`Node`]s (serde-saphyr gives every
//! node its location), then each part (the header, each step) is deserialized on its own from its
//! subtree. Errors raised while deserializing a subtree are tagged with the location of the
//! innermost node being read, so "unknown field" points at the key and "invalid type" at the
//! value, and one bad step does not hide the errors of the next.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, Serialize};

/// A 1-based line and column in the recipe text (0:0 when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Loc {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl Loc {
    /// A location from a line and a column.
    pub fn new(line: u64, column: u64) -> Loc {
        Loc { line, column }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl From<serde_saphyr::Location> for Loc {
    fn from(l: serde_saphyr::Location) -> Loc {
        Loc::new(l.line(), l.column())
    }
}

/// One YAML node and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Where the node starts in the text.
    pub loc: Loc,
    /// Its value.
    pub value: Value,
    /// The source text of a plain scalar that YAML typed as a number, boolean or null (`1.10`,
    /// `yes`): a field that wants a string gets this text, not the typed value.
    pub raw: Option<String>,
    span: Option<(usize, usize)>,
}

/// The value of a [`Node`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A floating point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// "a string", "a mapping"...: the kind of value, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// Parses a whole YAML document.
    pub fn parse(text: &str) -> Result<Node, DeError> {
        let spanned: serde_saphyr::Spanned<Value> =
            serde_saphyr::from_str(text).map_err(|e| DeError {
                loc: e.location().map(Loc::from),
                msg: e.without_snippet().to_string(),
            })?;
        let span = spanned.referenced.span();
        let mut node = Node {
            loc: spanned.referenced.into(),
            value: spanned.value,
            raw: None,
            span: byte_span(span),
        };
        node.fill_raw(text);
        Ok(node)
    }

    /// A node built in code (tests, synthesized defaults).
    pub fn new(loc: Loc, value: Value) -> Node {
        Node {
            loc,
            value,
            raw: None,
            span: None,
        }
    }

    fn fill_raw(&mut self, text: &str) {
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.fill_raw(text)),
            Value::Map(entries) => entries.iter_mut().for_each(|(_, v)| v.fill_raw(text)),
            Value::Str(_) => {}
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
                if let Some((off, len)) = self.span {
                    self.raw = text.get(off..off + len).map(|s| s.trim().to_owned());
                }
            }
        }
    }

    /// The entries of a mapping node.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items of a sequence node.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a string node.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key` in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The location of the value under `key`, or of this node when there is none.
    pub fn loc_of(&self, key: &str) -> Loc {
        self.get(key).map_or(self.loc, |n| n.loc)
    }

    /// The location of item `i` of a sequence, or of this node.
    pub fn loc_of_item(&self, i: usize) -> Loc {
        self.as_seq()
            .and_then(|s| s.get(i))
            .map_or(self.loc, |n| n.loc)
    }

    /// Deserializes this subtree into `T`; errors carry the location of the innermost node.
    pub fn deserialize<T: de::DeserializeOwned>(&self) -> Result<T, DeError> {
        T::deserialize(NodeDe(self)).map_err(|e| e.or_at(self.loc))
    }

    /// The subtree as JSON (mapping keys become strings), for custom modules and cache keys.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => i64::try_from(*i)
                .map(J::from)
                .or_else(|_| u64::try_from(*i).map(J::from))
                .unwrap_or_else(|_| J::String(i.to_string())),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(s) => J::Array(s.iter().map(Node::to_json).collect()),
            Value::Map(m) => {
                J::Object(m.iter().map(|(k, v)| (k.key_text(), v.to_json())).collect())
            }
        }
    }

    /// A mapping key as text.
    pub fn key_text(&self) -> String {
        match &self.value {
            Value::Str(s) => s.clone(),
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Seq(_) | Value::Map(_) => format!("<{}>", self.value.kind()),
        }
    }
}

fn byte_span(span: serde_saphyr::Span) -> Option<(usize, usize)> {
    let off = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    Some((off, len))
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        let s = serde_saphyr::Spanned::<Value>::deserialize(d)?;
        Ok(Node {
            loc: s.referenced.into(),
            span: byte_span(s.referenced.span()),
            value: s.value,
            raw: None,
        })
    }
}

/// A mapping key: always read as a string (`y:` is the key "y", not `true`).
struct Key(Node);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        let s = serde_saphyr::Spanned::<String>::deserialize(d)?;
        Ok(Key(Node {
            loc: s.referenced.into(),
            span: None,
            value: Value::Str(s.value),
            raw: None,
        }))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        i128::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            out.push(n);
        }
        Ok(Value::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Key(k)) = map.next_key::<Key>()? {
            let v = map.next_value::<Node>()?;
            out.push((k, v));
        }
        Ok(Value::Map(out))
    }
}

/// An error while reading a node tree, with the location of the node it is about.
#[derive(Clone, Debug, PartialEq)]
pub struct DeError {
    /// Where, when known.
    pub loc: Option<Loc>,
    /// What (lowercase, no trailing period).
    pub msg: String,
}

impl DeError {
    /// Sets the location unless an inner node already set one.
    pub fn or_at(mut self, loc: Loc) -> DeError {
        if self.loc.is_none() {
            self.loc = Some(loc);
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> DeError {
        DeError {
            loc: None,
            msg: msg.to_string(),
        }
    }
}

/// The serde deserializer over one node.
struct NodeDe<'a>(&'a Node);

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let node = self.0;
        let r = match &node.value {
            Value::Null => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Int(i) => match i64::try_from(*i) {
                Ok(i) => v.visit_i64(i),
                Err(_) => v.visit_i128(*i),
            },
            Value::Float(x) => v.visit_f64(*x),
            Value::Str(s) => v.visit_str(s),
            Value::Seq(items) => v.visit_seq(Seq { iter: items.iter() }),
            Value::Map(entries) => v.visit_map(Map {
                iter: entries.iter(),
                value: None,
            }),
        };
        r.map_err(|e| e.or_at(node.loc))
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0.value {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match (&self.0.value, &self.0.raw) {
            (Value::Bool(_) | Value::Int(_) | Value::Float(_), Some(raw)) => {
                v.visit_str(raw).map_err(|e: DeError| e.or_at(self.0.loc))
            }
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Map(_) => self.deserialize_any(v),
            other => Err(DeError {
                loc: Some(self.0.loc),
                msg: format!(
                    "invalid type: {}, expected a mapping with fields {}",
                    other.kind(),
                    fields.join(", ")
                ),
            }),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Str(s) => {
                let d: de::value::StrDeserializer<'_, DeError> = s.as_str().into_deserializer();
                v.visit_enum(d).map_err(|e| e.or_at(self.0.loc))
            }
            other => Err(DeError {
                loc: Some(self.0.loc),
                msg: format!("expected a name, found {}", other.kind()),
            }),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct seq tuple tuple_struct map
        identifier ignored_any
    }
}

struct Seq<'a> {
    iter: std::slice::Iter<'a, Node>,
}

impl<'de> SeqAccess<'de> for Seq<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.iter.next() {
            Some(n) => seed
                .deserialize(NodeDe(n))
                .map(Some)
                .map_err(|e| e.or_at(n.loc)),
            None => Ok(None),
        }
    }
}

struct Map<'a> {
    iter: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
}

impl<'de> MapAccess<'de> for Map<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(NodeDe(k))
                    .map(Some)
                    .map_err(|e| e.or_at(k.loc))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let v = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value without a key"))?;
        seed.deserialize(NodeDe(v)).map_err(|e| e.or_at(v.loc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct T {
        a: u32,
        #[serde(default)]
        b: Vec<String>,
        c: Option<String>,
    }

    #[test]
    fn locations_of_nodes() {
        let n = Node::parse("x: 1\ny:\n  - a\n  - {k: v}\n").unwrap();
        assert_eq!(n.get("x").unwrap().loc, Loc::new(1, 4));
        let y = n.get("y").unwrap();
        assert_eq!(y.loc_of_item(0), Loc::new(3, 5));
        assert_eq!(y.as_seq().unwrap()[1].get("k").unwrap().loc, Loc::new(4, 9));
    }

    #[test]
    fn deserialize_ok() {
        let n = Node::parse("a: 3\nb: [x, y]\n").unwrap();
        let t: T = n.deserialize().unwrap();
        assert_eq!(
            t,
            T {
                a: 3,
                b: vec!["x".into(), "y".into()],
                c: None
            }
        );
    }

    #[test]
    fn unknown_field_points_at_key() {
        let n = Node::parse("a: 3\n\nbogus: 1\n").unwrap();
        let e = n.deserialize::<T>().unwrap_err();
        assert_eq!(e.loc, Some(Loc::new(3, 1)), "{e:?}");
        assert!(e.msg.contains("unknown field `bogus`"), "{e}");
    }

    #[test]
    fn wrong_type_points_at_value() {
        let n = Node::parse("a: 3\nb:\n  - ok\n  - [no]\n").unwrap();
        let e = n.deserialize::<T>().unwrap_err();
        assert_eq!(e.loc, Some(Loc::new(4, 5)), "{e:?}");
        assert!(e.msg.contains("invalid type"), "{e}");
    }

    #[test]
    fn missing_field_points_at_map() {
        let n = Node::parse("top:\n  b: [x]\n").unwrap();
        let e = n.get("top").unwrap().deserialize::<T>().unwrap_err();
        assert_eq!(e.loc, Some(Loc::new(2, 3)), "{e:?}");
        assert!(e.msg.contains("missing field `a`"), "{e}");
    }

    #[test]
    fn syntax_error_has_location() {
        let e = Node::parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.loc.is_some(), "{e:?}");
    }

    #[test]
    fn plain_scalars_read_as_strings_when_wanted() {
        #[derive(Deserialize)]
        struct S {
            v: String,
            y: String,
        }
        let n = Node::parse("v: 1.10\ny: yes\n").unwrap();
        let s: S = n.deserialize().unwrap();
        assert_eq!((s.v.as_str(), s.y.as_str()), ("1.10", "yes"));
    }

    #[test]
    fn json_conversion() {
        let n = Node::parse("k: {a: 1, b: [true, ~, x]}\n").unwrap();
        assert_eq!(
            n.to_json(),
            serde_json::json!({"k": {"a": 1, "b": [true, null, "x"]}})
        );
    }
}
