//! Input guards (size, encoding, DOCTYPE) and the strict reader (roxmltree) used for the
//! structure checks and for reading verified content.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use roxmltree::{Document, Node, ParsingOptions};

use super::Refusal;

pub(crate) const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub(crate) const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub(crate) const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
pub(crate) const NS_METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";

/// Largest SAML message accepted, decoded (real responses are 5–30 KB).
pub const MAX_XML_BYTES: usize = 256 * 1024;

/// Largest element count read: far above any real response, well below a parser bomb.
const MAX_NODES: u32 = 50_000;

/// Deepest element nesting read. A signed response nests about ten deep, metadata about
/// eight; libxml2 (which xmlsec parses with) allows 256.
pub const MAX_DEPTH: usize = 48;

/// Most attributes one element may carry. A SAML element has at most a handful (a
/// `Response` about eight, with its namespace declarations); the parser checks each new
/// attribute against all earlier ones of its element, so a flood of them costs it
/// quadratic time before any other check.
pub const MAX_ATTRIBUTES_PER_ELEMENT: usize = 32;

/// Most attributes in one document (a signed response has about a hundred).
pub const MAX_ATTRIBUTES: usize = 2_000;

/// Most namespace declarations in one document (a signed response has about ten: each is
/// a scope every later name is resolved through).
pub const MAX_NAMESPACE_DECLARATIONS: usize = 128;

/// Longest start tag, `<` to `>` (real ones are well under 1 KB).
pub const MAX_START_TAG_BYTES: usize = 8 * 1024;

/// Standard base64, padding optional (the POST binding's encoding); whitespace is removed
/// before decoding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64 (POST binding) → XML text, with a size cap, no DOCTYPE, UTF-8 only (the guards'
/// one pass, no parse: that comes once, in [`receive`]).
pub fn decode_post(saml_response: &str) -> Result<String, Refusal> {
    // Base64 of MAX_XML_BYTES, with line breaks every 64 characters and some slack.
    if saml_response.len() > MAX_XML_BYTES / 3 * 4 * 66 / 64 + 1024 {
        return Err(Refusal::Malformed);
    }
    let compact: Vec<u8> = saml_response
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(Refusal::Malformed);
    }
    let bytes = BASE64.decode(&compact).map_err(|_| Refusal::Malformed)?;
    if bytes.len() > MAX_XML_BYTES {
        return Err(Refusal::Malformed);
    }
    let text = String::from_utf8(bytes).map_err(|_| Refusal::UnsupportedEncoding)?;
    guard(&text)?;
    Ok(text)
}

/// A SAML document as received: guarded and parsed once, for every check of the request
/// that reads it (the routing, then the validation).
pub struct Received<'a> {
    pub(crate) xml: &'a str,
    pub(crate) doc: Document<'a>,
}

/// Guards and parses a received document, once.
pub fn receive(xml: &str) -> Result<Received<'_>, Refusal> {
    let xml = guard(xml)?;
    Ok(Received {
        xml,
        doc: parse(xml)?,
    })
}

thread_local! {
    static PARSED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many documents this thread has parsed (each parse costs in proportion to the
/// input: the tests hold a request to one parse of what it received).
pub fn documents_parsed() -> usize {
    PARSED.with(std::cell::Cell::get)
}

/// The checks every SAML text gets before any parser sees it: size, UTF-8 only (no NUL, no
/// declared encoding other than UTF-8/ASCII: the deployed libxml2 has no conversion data),
/// no DOCTYPE or entity declaration. Returns the text without a UTF-8 byte order mark.
pub(crate) fn guard(xml: &str) -> Result<&str, Refusal> {
    if xml.len() > MAX_XML_BYTES {
        return Err(Refusal::Malformed);
    }
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    if xml.contains('\0') {
        // UTF-16 without a byte order mark reads as "<\0?\0x\0…".
        return Err(Refusal::UnsupportedEncoding);
    }
    if has_declaration(xml) {
        return Err(Refusal::Doctype);
    }
    if let Some(decl) = xml_declaration(xml)
        && let Some(encoding) = pseudo_attribute(decl, "encoding")
    {
        let e = encoding.to_ascii_lowercase();
        if !matches!(e.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
            return Err(Refusal::UnsupportedEncoding);
        }
    }
    if !tags_within_bounds(xml) {
        return Err(Refusal::Malformed);
    }
    Ok(xml)
}

/// One linear pass over the text's start tags, before any parser: no element with more
/// than [`MAX_ATTRIBUTES_PER_ELEMENT`] attributes, no more than [`MAX_ATTRIBUTES`] in all
/// nor [`MAX_NAMESPACE_DECLARATIONS`] `xmlns` declarations, no start tag longer than
/// [`MAX_START_TAG_BYTES`], no element nested deeper than [`MAX_DEPTH`] (start tags not
/// closed by `/>` open a level, end tags close one). Comments, CDATA sections, processing
/// instructions and declarations are skipped; an attribute is counted by its `=` outside
/// quotes. Malformed text that this
/// pass lets through is the parser's to refuse: it only bounds what the parser will do.
fn tags_within_bounds(xml: &str) -> bool {
    let b = xml.as_bytes();
    let (mut attributes, mut namespaces, mut depth) = (0usize, 0usize, 0usize);
    let mut i = 0;
    while let Some(off) = b[i..].iter().position(|&c| c == b'<') {
        let start = i + off;
        let rest = &b[start..];
        let skip_to = |end: &[u8]| {
            rest.windows(end.len())
                .position(|w| w == end)
                .map(|p| start + p + end.len())
        };
        let next = if rest.starts_with(b"<!--") {
            skip_to(b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_to(b"]]>")
        } else if rest.starts_with(b"<?") {
            skip_to(b"?>")
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            skip_to(b">")
        } else if rest.starts_with(b"<!") {
            skip_to(b">")
        } else {
            let Some(tag) = start_tag(rest) else {
                return false;
            };
            if tag.end.is_some() {
                if depth + 1 > MAX_DEPTH {
                    return false;
                }
                depth += usize::from(tag.opens);
            }
            attributes += tag.attributes;
            namespaces += tag.namespaces;
            if attributes > MAX_ATTRIBUTES || namespaces > MAX_NAMESPACE_DECLARATIONS {
                return false;
            }
            tag.end.map(|e| start + e)
        };
        match next {
            Some(n) => i = n,
            // Unterminated: nothing more to bound; the parser refuses it.
            None => return true,
        }
    }
    true
}

/// One start tag as [`start_tag`] read it.
struct StartTag {
    /// Just past its `>` (from the tag's `<`); `None`: unterminated.
    end: Option<usize>,
    attributes: usize,
    /// Of its attributes, the `xmlns` declarations.
    namespaces: usize,
    /// Not closed by `/>`: it opens a level.
    opens: bool,
}

/// Reads the start tag at the head of `rest` (its `<` first). Attributes are `name="…"` or
/// `name='…'`; each byte is looked at once, and the latest name outside quotes is
/// `name_from..name_end`. `None`: longer than [`MAX_START_TAG_BYTES`] or with more than
/// [`MAX_ATTRIBUTES_PER_ELEMENT`] attributes.
#[inline(always)]
fn start_tag(rest: &[u8]) -> Option<StartTag> {
    let mut tag = StartTag {
        end: None,
        attributes: 0,
        namespaces: 0,
        opens: false,
    };
    let mut quote = None;
    let (mut name_from, mut name_end, mut after_space) = (1usize, 1usize, false);
    for (k, &c) in rest.iter().enumerate().skip(1) {
        if k > MAX_START_TAG_BYTES {
            return None;
        }
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(c),
            (None, b'=') => {
                tag.attributes += 1;
                if tag.attributes > MAX_ATTRIBUTES_PER_ELEMENT {
                    return None;
                }
                let name = &rest[name_from..name_end.max(name_from)];
                if name == b"xmlns" || name.starts_with(b"xmlns:") {
                    tag.namespaces += 1;
                }
            }
            (None, b'>') => {
                tag.end = Some(k + 1);
                tag.opens = rest[k - 1] != b'/';
                break;
            }
            (None, c) if c.is_ascii_whitespace() => after_space = true,
            (None, _) => {
                if after_space {
                    name_from = k;
                    after_space = false;
                }
                name_end = k + 1;
            }
        }
    }
    Some(tag)
}

/// `<!DOCTYPE` or `<!ENTITY` anywhere (any case): refused before parsing, even inside
/// CDATA or comments, where no IdP puts one.
fn has_declaration(xml: &str) -> bool {
    let b = xml.as_bytes();
    let mut i = 0;
    while let Some(off) = b[i..].windows(2).position(|w| w == b"<!") {
        let rest = &b[i + off + 2..];
        let starts =
            |word: &[u8]| rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word);
        if starts(b"DOCTYPE") || starts(b"ENTITY") {
            return true;
        }
        i += off + 2;
    }
    false
}

/// The XML declaration's content (`version="1.0" encoding="…"`), when the text starts with one.
fn xml_declaration(xml: &str) -> Option<&str> {
    let rest = xml.strip_prefix("<?xml")?;
    if !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    rest.find("?>").map(|end| &rest[..end])
}

fn pseudo_attribute<'a>(decl: &'a str, name: &str) -> Option<&'a str> {
    let at = decl.find(name)?;
    let rest = decl[at + name.len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    rest.find(quote).map(|end| &rest[..end])
}

/// Parses strictly (no DTD, bounded size); any parser complaint is a refusal.
pub(crate) fn parse(xml: &str) -> Result<Document<'_>, Refusal> {
    PARSED.with(|n| n.set(n.get() + 1));
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(xml, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => Refusal::Doctype,
        _ => Refusal::Malformed,
    })?;
    // Depth, in one pass in document order (a parent before its children), before anything
    // walks the tree or hands the text to libxml2.
    let mut depths = vec![0usize; doc.descendants().count() + 1];
    for node in doc.descendants() {
        let parent = node.parent().map_or(0, |p| depths[p.id().get_usize()]);
        let depth = parent + usize::from(node.is_element());
        if depth > MAX_DEPTH {
            return Err(Refusal::Malformed);
        }
        depths[node.id().get_usize()] = depth;
    }
    Ok(doc)
}

/// An element with this namespace and local name.
pub(crate) fn is(node: Node, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

/// Element children with this namespace and local name.
pub(crate) fn children<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children().filter(move |c| is(*c, ns, name))
}

/// The one element child with this name: none or several is a refusal.
pub(crate) fn only_child<'a, 'input>(
    node: Node<'a, 'input>,
    ns: &'a str,
    name: &'a str,
) -> Result<Node<'a, 'input>, Refusal> {
    let mut it = children(node, ns, name);
    match (it.next(), it.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(Refusal::Malformed),
    }
}

/// At most one element child with this name.
pub(crate) fn optional_child<'a, 'input>(
    node: Node<'a, 'input>,
    ns: &'a str,
    name: &'a str,
) -> Result<Option<Node<'a, 'input>>, Refusal> {
    let mut it = children(node, ns, name);
    match (it.next(), it.next()) {
        (c, None) => Ok(c),
        _ => Err(Refusal::Malformed),
    }
}

/// The whole text of an element (every text descendant, in order), trimmed. Comments are
/// not text: `a<!---->b` reads `ab`.
pub(crate) fn text(node: Node) -> String {
    let mut s = String::new();
    for d in node.descendants().filter(|d| d.is_text()) {
        s.push_str(d.text().unwrap_or(""));
    }
    s.trim().to_string()
}

/// An xs:dateTime (SAML: UTC) → epoch seconds; fractions of a second are dropped.
pub(crate) fn instant(value: &str) -> Result<i64, Refusal> {
    time::OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| Refusal::Malformed)
}

/// Epoch seconds → xs:dateTime in UTC (`2024-05-01T12:00:00Z`).
pub(crate) fn format_instant(epoch: i64) -> String {
    identity_shared::clock::rfc3339(epoch)
}

/// Escapes text for an XML attribute value or element content.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn decode_post_tolerates_line_breaks_and_missing_padding() {
        let xml = "<a>hello</a>";
        let mut enc = b64(xml.as_bytes());
        enc.insert(4, '\n');
        enc.insert(2, '\r');
        assert_eq!(decode_post(&enc).unwrap(), xml);
        let unpadded = b64(b"<a>x</a>").trim_end_matches('=').to_string();
        assert_eq!(decode_post(&unpadded).unwrap(), "<a>x</a>");
    }

    #[test]
    fn decode_post_refuses_garbage_and_oversize() {
        assert_eq!(decode_post("not base64!"), Err(Refusal::Malformed));
        assert_eq!(decode_post("   "), Err(Refusal::Malformed));
        let big = format!("<a>{}</a>", "x".repeat(MAX_XML_BYTES));
        assert_eq!(decode_post(&b64(big.as_bytes())), Err(Refusal::Malformed));
    }

    #[test]
    fn only_utf8_is_accepted() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>caf\xe9</a>";
        assert_eq!(decode_post(&b64(latin1)), Err(Refusal::UnsupportedEncoding));
        let declared = "<?xml version='1.0' encoding='windows-1252'?><a/>";
        assert_eq!(
            decode_post(&b64(declared.as_bytes())),
            Err(Refusal::UnsupportedEncoding)
        );
        let utf16: Vec<u8> = "<a/>"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert_eq!(decode_post(&b64(&utf16)), Err(Refusal::UnsupportedEncoding));
        let bom16 = [&[0xff, 0xfe][..], &utf16].concat();
        assert_eq!(decode_post(&b64(&bom16)), Err(Refusal::UnsupportedEncoding));
        for ok in [
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a/>",
            "<?xml version=\"1.0\" encoding=\"us-ascii\" standalone=\"yes\"?><a/>",
            "<?xml version=\"1.0\"?><a/>",
            "\u{feff}<a/>",
        ] {
            assert!(decode_post(&b64(ok.as_bytes())).is_ok(), "{ok}");
        }
    }

    #[test]
    fn nesting_deeper_than_max_depth_is_refused_before_parsing() {
        let nest = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(parse(&nest(MAX_DEPTH)).is_ok());
        assert!(matches!(
            parse(&nest(MAX_DEPTH + 1)),
            Err(Refusal::Malformed)
        ));
        // Before any parser: the guard's own count, with self-closing elements a level
        // deeper than their parent and end tags closing one.
        assert!(guard(&nest(MAX_DEPTH)).is_ok());
        assert_eq!(guard(&nest(MAX_DEPTH + 1)), Err(Refusal::Malformed));
        let leaf = |n: usize| format!("{}<b/>{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(guard(&leaf(MAX_DEPTH - 1)).is_ok());
        assert_eq!(guard(&leaf(MAX_DEPTH)), Err(Refusal::Malformed));
        let siblings = format!("<r>{}</r>", "<a><b/></a>".repeat(1_000));
        assert!(guard(&siblings).is_ok(), "siblings do not nest");
        let deep = b64(nest(10_000).as_bytes());
        assert_eq!(decode_post(&deep), Err(Refusal::Malformed));
    }

    /// A root element with `n` distinct empty attributes.
    fn attribute_flood(n: usize) -> String {
        let attrs: String = (0..n).map(|i| format!(" a{i}=\"\"")).collect();
        format!("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"{attrs}/>")
    }

    #[test]
    fn an_element_with_more_attributes_than_the_limit_is_refused_before_parsing() {
        // One namespace declaration plus the flood.
        assert!(guard(&attribute_flood(MAX_ATTRIBUTES_PER_ELEMENT - 1)).is_ok());
        assert_eq!(
            guard(&attribute_flood(MAX_ATTRIBUTES_PER_ELEMENT)),
            Err(Refusal::Malformed)
        );
        // The flood the attack used: 36,000 attributes in 332 KB (here within the size cap).
        assert_eq!(guard(&attribute_flood(20_000)), Err(Refusal::Malformed));
    }

    #[test]
    fn more_attributes_in_all_than_the_limit_are_refused_before_parsing() {
        let one = "<e a=\"1\" b=\"2\" c=\"3\" d=\"4\"/>";
        let doc = |n: usize| format!("<r>{}</r>", one.repeat(n));
        assert!(guard(&doc(MAX_ATTRIBUTES / 4)).is_ok());
        assert_eq!(guard(&doc(MAX_ATTRIBUTES / 4 + 1)), Err(Refusal::Malformed));
    }

    #[test]
    fn more_namespace_declarations_than_the_limit_are_refused_before_parsing() {
        let doc = |n: usize| {
            let decls: String = (0..n)
                .map(|i| format!("<e xmlns:p{i}=\"urn:x:{i}\"/>"))
                .collect();
            format!("<r>{decls}</r>")
        };
        assert!(guard(&doc(MAX_NAMESPACE_DECLARATIONS)).is_ok());
        assert_eq!(
            guard(&doc(MAX_NAMESPACE_DECLARATIONS + 1)),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn a_start_tag_longer_than_the_limit_is_refused_before_parsing() {
        let long = |n: usize| format!("<r a=\"{}\"/>", "x".repeat(n));
        assert!(guard(&long(MAX_START_TAG_BYTES - 16)).is_ok());
        assert_eq!(guard(&long(MAX_START_TAG_BYTES)), Err(Refusal::Malformed));
    }

    #[test]
    fn equals_signs_in_values_comments_and_text_are_not_attributes() {
        let values = format!("<r a=\"{}\" b='{}'/>", "=".repeat(500), "=\"".repeat(200));
        assert!(guard(&values).is_ok());
        let elsewhere = format!(
            "<r><!-- {eq} --><![CDATA[{eq}]]><?pi {eq}?>{eq}</r>",
            eq = "x=1 ".repeat(2_000)
        );
        assert!(guard(&elsewhere).is_ok());
    }

    #[test]
    fn doctype_and_entities_are_refused_before_parsing() {
        for bad in [
            "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            "<?xml version=\"1.0\"?>\n<!doctype a><a/>",
            "<a><![CDATA[<!ENTITY]]></a>",
        ] {
            assert_eq!(
                decode_post(&b64(bad.as_bytes())),
                Err(Refusal::Doctype),
                "{bad}"
            );
            assert_eq!(guard(bad), Err(Refusal::Doctype));
        }
    }

    #[test]
    fn text_reads_across_comments() {
        let doc = parse("<n>user@evil.com<!---->.example.com</n>").unwrap();
        assert_eq!(text(doc.root_element()), "user@evil.com.example.com");
    }

    #[test]
    fn instants_parse_with_and_without_fractions() {
        assert_eq!(instant("1970-01-01T00:01:00Z"), Ok(60));
        assert_eq!(instant("1970-01-01T00:01:00.999Z"), Ok(60));
        // Entra ID and AD FS write seven fractional digits.
        assert_eq!(instant("1970-01-01T00:01:00.1234567Z"), Ok(60));
        assert_eq!(instant("yesterday"), Err(Refusal::Malformed));
        assert_eq!(format_instant(60), "1970-01-01T00:01:00Z");
    }
}
