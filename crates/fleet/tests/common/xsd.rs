//! A validator for the subset of XML Schema that `schema/greenlist.xsd` uses, so the XML
//! greenlist is checked against its published schema without a native XSD library: named
//! complex types with a `sequence` of `element`s (`minOccurs`, `maxOccurs`), `attribute`s
//! (`use`), `simpleContent` extensions; named simple types restricting a built-in type by
//! `enumeration`, `length`, `minLength`, `maxLength`, `minInclusive`, `maxInclusive`, and
//! `list`s. Anything else in the schema is refused, so the schema cannot quietly outgrow
//! the checker. Documents use no namespace.

use std::collections::HashMap;

use base64::Engine;
use quick_xml::XmlVersion;
use quick_xml::escape::unescape;
use quick_xml::events::Event;
use quick_xml::reader::Reader;

const XS: &str = "xs:";

/// An element of a parsed document.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Node>,
    pub text: String,
}

impl Node {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Parses a document into a tree (comments and the declaration dropped, text trimmed).
pub fn parse_tree(text: &str) -> Result<Node, String> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        match reader.read_event().map_err(|e| format!("not well-formed: {e}"))? {
            Event::Start(start) => stack.push(node_of(&start)?),
            Event::Empty(start) => {
                let node = node_of(&start)?;
                stack.last_mut().ok_or("no parent")?.children.push(node);
            }
            Event::End(_) => {
                let node = stack.pop().ok_or("unbalanced")?;
                stack.last_mut().ok_or("unbalanced")?.children.push(node);
            }
            Event::Text(text) => {
                let content = text.xml_content(XmlVersion::Implicit1_0);
                stack.last_mut().ok_or("text outside")?.text.push_str(&content);
            }
            Event::GeneralRef(reference) => {
                let name = reference.xml_content(XmlVersion::Implicit1_0);
                let resolved = unescape(&format!("&{name};")).map_err(|e| e.to_string())?.into_owned();
                stack.last_mut().ok_or("reference outside")?.text.push_str(&resolved);
            }
            Event::CData(_) => return Err("CDATA is not used by these documents".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().ok_or("empty")?;
    if !stack.is_empty() || document.children.len() != 1 {
        return Err("a document has exactly one root element".into());
    }
    Ok(document.children.remove(0))
}

fn node_of(start: &quick_xml::events::BytesStart<'_>) -> Result<Node, String> {
    let name = start.name().as_ref().to_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        let key = attribute.key.as_ref().to_owned();
        let value = attribute.normalized_value(XmlVersion::Implicit1_0).map_err(|e| e.to_string())?.into_owned();
        attributes.push((key, value));
    }
    Ok(Node { name, attributes, ..Node::default() })
}

#[derive(Debug)]
struct Particle {
    name: String,
    type_name: String,
    min: u64,
    max: Option<u64>,
}

#[derive(Debug)]
struct AttributeDecl {
    name: String,
    type_name: String,
    required: bool,
}

#[derive(Debug, Default)]
struct Complex {
    sequence: Vec<Particle>,
    attributes: Vec<AttributeDecl>,
    /// For `simpleContent`: the type of the text.
    content: Option<String>,
}

#[derive(Debug)]
enum Facet {
    Enumeration(String),
    Length(u64),
    MinLength(u64),
    MaxLength(u64),
    MinInclusive(i128),
    MaxInclusive(i128),
}

#[derive(Debug)]
enum Simple {
    Restriction { base: String, facets: Vec<Facet> },
    List { item: String },
}

/// A parsed schema.
#[derive(Debug, Default)]
pub struct Schema {
    elements: HashMap<String, String>,
    complex: HashMap<String, Complex>,
    simple: HashMap<String, Simple>,
}

fn required<'a>(node: &'a Node, attribute: &str) -> &'a str {
    node.attribute(attribute).unwrap_or_else(|| panic!("<{}> without {attribute}", node.name))
}

fn unsupported(node: &Node) -> ! {
    panic!("the XSD uses <{}>, which this checker does not implement", node.name)
}

fn children(node: &Node) -> impl Iterator<Item = &Node> {
    node.children.iter().filter(|child| child.name != "xs:annotation")
}

/// Reads the schema, refusing constructs outside the subset.
pub fn parse_schema(xsd: &str) -> Schema {
    let root = parse_tree(xsd).unwrap();
    assert_eq!(root.name, "xs:schema");
    assert!(root.attribute("targetNamespace").is_none(), "the checker handles no-namespace schemas only");
    let mut schema = Schema::default();
    for item in children(&root) {
        let name = required(item, "name").to_owned();
        match item.name.as_str() {
            "xs:element" => {
                schema.elements.insert(name, required(item, "type").to_owned());
            }
            "xs:complexType" => {
                schema.complex.insert(name, complex_of(item));
            }
            "xs:simpleType" => {
                schema.simple.insert(name, simple_of(item));
            }
            _ => unsupported(item),
        }
    }
    schema
}

fn attribute_of(node: &Node) -> AttributeDecl {
    assert_eq!(node.name, "xs:attribute");
    let required = match node.attribute("use").unwrap_or("optional") {
        "required" => true,
        "optional" => false,
        other => panic!("attribute use {other}"),
    };
    AttributeDecl { name: required_name(node), type_name: self::required(node, "type").to_owned(), required }
}

fn required_name(node: &Node) -> String {
    required(node, "name").to_owned()
}

fn complex_of(node: &Node) -> Complex {
    let mut complex = Complex::default();
    for part in children(node) {
        match part.name.as_str() {
            "xs:sequence" => {
                for element in children(part) {
                    if element.name != "xs:element" {
                        unsupported(element);
                    }
                    let min = element.attribute("minOccurs").unwrap_or("1").parse().unwrap();
                    let max = match element.attribute("maxOccurs").unwrap_or("1") {
                        "unbounded" => None,
                        number => Some(number.parse().unwrap()),
                    };
                    complex.sequence.push(Particle {
                        name: required_name(element),
                        type_name: required(element, "type").to_owned(),
                        min,
                        max,
                    });
                }
            }
            "xs:attribute" => complex.attributes.push(attribute_of(part)),
            "xs:simpleContent" => {
                let mut parts = children(part);
                let extension = parts.next().unwrap();
                if extension.name != "xs:extension" || parts.next().is_some() {
                    unsupported(extension);
                }
                complex.content = Some(required(extension, "base").to_owned());
                complex.attributes.extend(children(extension).map(attribute_of));
            }
            _ => unsupported(part),
        }
    }
    complex
}

fn simple_of(node: &Node) -> Simple {
    let mut parts = children(node);
    let part = parts.next().unwrap();
    assert!(parts.next().is_none());
    match part.name.as_str() {
        "xs:list" => Simple::List { item: required(part, "itemType").to_owned() },
        "xs:restriction" => {
            let facets = children(part)
                .map(|facet| {
                    let value = required(facet, "value");
                    match facet.name.as_str() {
                        "xs:enumeration" => Facet::Enumeration(value.to_owned()),
                        "xs:length" => Facet::Length(value.parse().unwrap()),
                        "xs:minLength" => Facet::MinLength(value.parse().unwrap()),
                        "xs:maxLength" => Facet::MaxLength(value.parse().unwrap()),
                        "xs:minInclusive" => Facet::MinInclusive(value.parse().unwrap()),
                        "xs:maxInclusive" => Facet::MaxInclusive(value.parse().unwrap()),
                        _ => unsupported(facet),
                    }
                })
                .collect();
            Simple::Restriction { base: required(part, "base").to_owned(), facets }
        }
        _ => unsupported(part),
    }
}

impl Schema {
    /// Checks a document; the error names the first violation and where.
    pub fn validate(&self, xml: &str) -> Result<(), String> {
        let root = parse_tree(xml)?;
        let type_name =
            self.elements.get(&root.name).ok_or_else(|| format!("<{}> is not a root element", root.name))?;
        self.element(&root, type_name, &root.name)
    }

    fn element(&self, node: &Node, type_name: &str, path: &str) -> Result<(), String> {
        let Some(complex) = self.complex.get(type_name) else {
            if !node.attributes.is_empty() || !node.children.is_empty() {
                return Err(format!("{path}: a simple element has no attributes or children"));
            }
            return self.value(type_name, &node.text).map_err(|e| format!("{path}: {e}"));
        };
        for (name, value) in &node.attributes {
            let declared = complex
                .attributes
                .iter()
                .find(|a| &a.name == name)
                .ok_or_else(|| format!("{path}: undeclared attribute {name}"))?;
            self.value(&declared.type_name, value).map_err(|e| format!("{path}/@{name}: {e}"))?;
        }
        for declared in complex.attributes.iter().filter(|a| a.required) {
            if node.attribute(&declared.name).is_none() {
                return Err(format!("{path}: required attribute {} is missing", declared.name));
            }
        }
        if let Some(content) = &complex.content {
            if !node.children.is_empty() {
                return Err(format!("{path}: simple content has no child elements"));
            }
            return self.value(content, &node.text).map_err(|e| format!("{path}: {e}"));
        }
        if !node.text.trim().is_empty() {
            return Err(format!("{path}: element-only content has text"));
        }
        let mut rest = node.children.as_slice();
        for particle in &complex.sequence {
            let count = rest.iter().take_while(|child| child.name == particle.name).count() as u64;
            if count < particle.min || particle.max.is_some_and(|max| count > max) {
                return Err(format!(
                    "{path}: {count} <{}>, expected {} to {}",
                    particle.name,
                    particle.min,
                    particle.max.map_or("unbounded".to_owned(), |m| m.to_string())
                ));
            }
            let (these, after) = rest.split_at(count as usize);
            for (index, child) in these.iter().enumerate() {
                self.element(child, &particle.type_name, &format!("{path}/{}[{index}]", child.name))?;
            }
            rest = after;
        }
        if let Some(extra) = rest.first() {
            return Err(format!("{path}: unexpected <{}> (out of sequence or undeclared)", extra.name));
        }
        Ok(())
    }

    fn value(&self, type_name: &str, value: &str) -> Result<(), String> {
        match self.simple.get(type_name) {
            Some(Simple::List { item }) => {
                for part in value.split_whitespace() {
                    self.value(item, part)?;
                }
                Ok(())
            }
            Some(Simple::Restriction { base, facets }) => {
                self.value(base, value)?;
                let value = value.trim();
                let length = self.length(base, value);
                let enumeration: Vec<&String> =
                    facets.iter().filter_map(|f| if let Facet::Enumeration(e) = f { Some(e) } else { None }).collect();
                if !enumeration.is_empty() && !enumeration.iter().any(|e| *e == value) {
                    return Err(format!("{value:?} is none of {enumeration:?}"));
                }
                for facet in facets {
                    let ok = match facet {
                        Facet::Enumeration(_) => true,
                        Facet::Length(n) => length == *n,
                        Facet::MinLength(n) => length >= *n,
                        Facet::MaxLength(n) => length <= *n,
                        Facet::MinInclusive(n) => value.parse::<i128>().is_ok_and(|v| v >= *n),
                        Facet::MaxInclusive(n) => value.parse::<i128>().is_ok_and(|v| v <= *n),
                    };
                    if !ok {
                        return Err(format!("{value:?} violates {facet:?} of {type_name}"));
                    }
                }
                Ok(())
            }
            None => builtin(type_name, value),
        }
    }

    /// The length facets count octets of binary types, characters of strings.
    fn length(&self, base: &str, value: &str) -> u64 {
        match self.builtin_base(base) {
            "xs:hexBinary" => (value.len() / 2) as u64,
            "xs:base64Binary" => base64_octets(value).map_or(0, |b| b.len() as u64),
            _ => value.chars().count() as u64,
        }
    }

    fn builtin_base<'a>(&'a self, type_name: &'a str) -> &'a str {
        match self.simple.get(type_name) {
            Some(Simple::Restriction { base, .. }) => self.builtin_base(base),
            _ => type_name,
        }
    }
}

fn base64_octets(value: &str) -> Option<Vec<u8>> {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact).ok()
}

fn builtin(type_name: &str, value: &str) -> Result<(), String> {
    let Some(local) = type_name.strip_prefix(XS) else {
        return Err(format!("type {type_name} is not defined in the schema"));
    };
    let trimmed = value.trim();
    let unsigned = |max: u128| -> Result<(), String> {
        if !trimmed.is_empty()
            && trimmed.bytes().all(|b| b.is_ascii_digit())
            && trimmed.parse::<u128>().is_ok_and(|v| v <= max)
        {
            Ok(())
        } else {
            Err(format!("{trimmed:?} is not an {type_name}"))
        }
    };
    match local {
        "string" => Ok(()),
        "unsignedLong" => unsigned(u128::from(u64::MAX)),
        "unsignedInt" => unsigned(u128::from(u32::MAX)),
        "unsignedShort" => unsigned(u128::from(u16::MAX)),
        "unsignedByte" => unsigned(u128::from(u8::MAX)),
        "dateTime" => {
            let zoned = chrono::DateTime::parse_from_rfc3339(trimmed).is_ok();
            let local = chrono::NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%dT%H:%M:%S%.f").is_ok();
            if zoned || local { Ok(()) } else { Err(format!("{trimmed:?} is not an xs:dateTime")) }
        }
        "hexBinary" => {
            if trimmed.len().is_multiple_of(2) && trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(())
            } else {
                Err(format!("{trimmed:?} is not xs:hexBinary"))
            }
        }
        "base64Binary" => base64_octets(value).map(|_| ()).ok_or_else(|| "not xs:base64Binary".to_owned()),
        other => Err(format!("built-in type xs:{other} is not implemented by this checker")),
    }
}
