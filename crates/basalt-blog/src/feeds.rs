//! Atom 1.0 ([RFC 4287]) and RSS 2.0 feeds of articles.
//!
//! Both are written with quick-xml's writer, so every text node and attribute
//! value is escaped by one piece of code rather than by hand. Titles, names
//! and tags are user input and may hold characters that XML 1.0 cannot carry
//! at all (most C0 controls, U+FFFE, U+FFFF), escaped or not; those are
//! removed before writing, so the document is always well-formed.
//!
//! Dates are whole seconds: RFC 3339 in Atom, RFC 2822 in RSS.
//!
//! [RFC 4287]: https://www.rfc-editor.org/rfc/rfc4287

use std::borrow::Cow;
use std::io;

use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::Writer;
use quick_xml::escape::escape;
use quick_xml::events::{BytesDecl, BytesText, Event};

/// Content type of Atom documents.
pub const ATOM_CONTENT_TYPE: &str = "application/atom+xml; charset=utf-8";
/// Content type of RSS documents.
pub const RSS_CONTENT_TYPE: &str = "application/rss+xml; charset=utf-8";

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
/// Dublin Core, for `dc:creator`: RSS's own `<author>` must be an email address.
const DC_NS: &str = "http://purl.org/dc/elements/1.1/";
/// For `content:encoded`, the full HTML body (RSS's `<description>` is the summary).
const CONTENT_NS: &str = "http://purl.org/rss/1.0/modules/content/";

/// The feed as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedMeta {
    /// Title.
    pub title: String,
    /// Subtitle (Atom `subtitle`, RSS channel `description`).
    pub subtitle: Option<String>,
    /// The site the feed belongs to: the feed's alternate link, and the
    /// authority of entry ids.
    pub site_url: String,
    /// The feed's own URL: its `rel="self"` link and its Atom id.
    pub self_url: String,
    /// Newest change.
    pub updated: DateTime<Utc>,
}

/// One article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Slug: with the publication date, the entry's id.
    pub slug: String,
    /// Title (plain text).
    pub title: String,
    /// Summary (plain text; the article's description). Omitted when empty.
    pub summary: String,
    /// Body as HTML, already sanitised (see [`basalt_markdown`]): it is escaped
    /// into the feed, and feed readers will render it. Omitted when empty.
    pub content_html: String,
    /// Author's name.
    pub author: String,
    /// Article URL.
    pub link: String,
    /// First published.
    pub published: DateTime<Utc>,
    /// Last updated.
    pub updated: DateTime<Utc>,
    /// Tags, one category each.
    pub tags: Vec<String>,
}

/// An Atom 1.0 document for `entries`, in the order given.
pub fn atom(meta: &FeedMeta, entries: &[FeedEntry]) -> String {
    finish(write_atom, meta, entries)
}

/// An RSS 2.0 document for `entries`, in the order given.
pub fn rss(meta: &FeedMeta, entries: &[FeedEntry]) -> String {
    finish(write_rss, meta, entries)
}

type Xml = Writer<Vec<u8>>;

fn finish(
    write: fn(&mut Xml, &FeedMeta, &[FeedEntry]) -> io::Result<()>,
    meta: &FeedMeta,
    entries: &[FeedEntry],
) -> String {
    let mut xml = Writer::new_with_indent(Vec::new(), b' ', 2);
    // The only I/O errors quick-xml reports are its sink's, and writing into
    // a Vec cannot fail: there is no error for callers to handle.
    let written = write(&mut xml, meta, entries);
    debug_assert!(
        written.is_ok(),
        "writing XML into memory failed: {written:?}"
    );
    let mut bytes = xml.into_inner();
    bytes.push(b'\n');
    // Everything written came from `&str`s, so this is always valid UTF-8.
    String::from_utf8(bytes)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

fn write_atom(xml: &mut Xml, meta: &FeedMeta, entries: &[FeedEntry]) -> io::Result<()> {
    declaration(xml)?;
    xml.create_element("feed")
        .with_attribute(("xmlns", ATOM_NS))
        .write_inner_content(|xml| {
            text(xml, "id", &[], &meta.self_url)?;
            text(xml, "title", &[("type", "text")], &meta.title)?;
            if let Some(subtitle) = &meta.subtitle {
                text(xml, "subtitle", &[("type", "text")], subtitle)?;
            }
            text(xml, "updated", &[], &rfc3339(meta.updated))?;
            empty(
                xml,
                "link",
                &[
                    ("rel", "self"),
                    ("type", "application/atom+xml"),
                    ("href", &meta.self_url),
                ],
            )?;
            empty(
                xml,
                "link",
                &[
                    ("rel", "alternate"),
                    ("type", "text/html"),
                    ("href", &meta.site_url),
                ],
            )?;
            for entry in entries {
                xml.create_element("entry").write_inner_content(|xml| {
                    text(xml, "id", &[], &entry_id(meta, entry))?;
                    text(xml, "title", &[("type", "text")], &entry.title)?;
                    empty(
                        xml,
                        "link",
                        &[
                            ("rel", "alternate"),
                            ("type", "text/html"),
                            ("href", &entry.link),
                        ],
                    )?;
                    text(xml, "published", &[], &rfc3339(entry.published))?;
                    text(xml, "updated", &[], &rfc3339(entry.updated))?;
                    xml.create_element("author")
                        .write_inner_content(|xml| text(xml, "name", &[], &entry.author))?;
                    for tag in &entry.tags {
                        empty(xml, "category", &[("term", tag)])?;
                    }
                    if !entry.summary.trim().is_empty() {
                        text(xml, "summary", &[("type", "text")], &entry.summary)?;
                    }
                    // type="html": the HTML is escaped as text, which any HTML can
                    // be; type="xhtml" would need it to be well-formed XML.
                    if !entry.content_html.trim().is_empty() {
                        text(xml, "content", &[("type", "html")], &entry.content_html)?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_rss(xml: &mut Xml, meta: &FeedMeta, entries: &[FeedEntry]) -> io::Result<()> {
    declaration(xml)?;
    xml.create_element("rss")
        .with_attribute(("version", "2.0"))
        .with_attribute(("xmlns:atom", ATOM_NS))
        .with_attribute(("xmlns:dc", DC_NS))
        .with_attribute(("xmlns:content", CONTENT_NS))
        .write_inner_content(|xml| {
            xml.create_element("channel").write_inner_content(|xml| {
                text(xml, "title", &[], &meta.title)?;
                text(xml, "link", &[], &meta.site_url)?;
                // Required by RSS 2.0, so the title stands in for a missing subtitle.
                text(
                    xml,
                    "description",
                    &[],
                    meta.subtitle.as_deref().unwrap_or(&meta.title),
                )?;
                text(xml, "lastBuildDate", &[], &meta.updated.to_rfc2822())?;
                empty(
                    xml,
                    "atom:link",
                    &[
                        ("href", &meta.self_url),
                        ("rel", "self"),
                        ("type", "application/rss+xml"),
                    ],
                )?;
                for entry in entries {
                    xml.create_element("item").write_inner_content(|xml| {
                        text(xml, "title", &[], &entry.title)?;
                        text(xml, "link", &[], &entry.link)?;
                        // The same id as the Atom entry, so that readers
                        // following both see one article; it is not a URL.
                        text(
                            xml,
                            "guid",
                            &[("isPermaLink", "false")],
                            &entry_id(meta, entry),
                        )?;
                        text(xml, "pubDate", &[], &entry.published.to_rfc2822())?;
                        text(xml, "dc:creator", &[], &entry.author)?;
                        for tag in &entry.tags {
                            text(xml, "category", &[], tag)?;
                        }
                        // Readers treat <description> as HTML; the summary is
                        // plain text, so it is HTML-escaped first (then
                        // XML-escaped by `text`), or a summary mentioning
                        // "<script>" would become markup in the reader.
                        if !entry.summary.trim().is_empty() {
                            text(xml, "description", &[], &escape(entry.summary.as_str()))?;
                        }
                        if !entry.content_html.trim().is_empty() {
                            text(xml, "content:encoded", &[], &entry.content_html)?;
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(())
}

fn declaration(xml: &mut Xml) -> io::Result<()> {
    xml.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
}

/// `<name attrs…>value</name>`, with `value` and the attribute values made
/// XML-safe and escaped.
fn text(xml: &mut Xml, name: &str, attributes: &[(&str, &str)], value: &str) -> io::Result<()> {
    let mut element = xml.create_element(name);
    for (key, value) in attributes {
        element = element.with_attribute((*key, xml_safe(value).as_ref()));
    }
    // `escape` explicitly, not `BytesText::new`, whose docs reserve the right
    // to escape less: `>` must stay escaped, or a title holding `]]>` would
    // make the document ill-formed.
    element.write_text_content(BytesText::from_escaped(escape(xml_safe(value))))?;
    Ok(())
}

/// `<name attrs…/>`, with the attribute values made XML-safe and escaped.
fn empty(xml: &mut Xml, name: &str, attributes: &[(&str, &str)]) -> io::Result<()> {
    let mut element = xml.create_element(name);
    for (key, value) in attributes {
        // The `(&str, &str)` conversion escapes the value, including tabs and
        // newlines, which attribute-value normalisation would otherwise eat.
        element = element.with_attribute((*key, xml_safe(value).as_ref()));
    }
    element.write_empty()?;
    Ok(())
}

/// `text` without the characters XML 1.0 forbids even as character
/// references (C0 controls other than tab, LF and CR; U+FFFE; U+FFFF), and
/// without DEL and the C1 controls, which XML 1.0 discourages and which no
/// title needs. Rust strings hold no surrogates, the only other exclusion.
fn xml_safe(text: &str) -> Cow<'_, str> {
    fn allowed(c: char) -> bool {
        !matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{7F}'..='\u{9F}' | '\u{FFFE}' | '\u{FFFF}')
    }
    if text.chars().all(allowed) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().filter(|&c| allowed(c)).collect())
    }
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A stable, unique id for an entry: a [tag URI] (RFC 4151) built from the
/// site's host, the publication date and the slug, e.g.
/// `tag:example.com,2024-03-05:hello-world`. Unlike the article URL it does
/// not change when the site's URL layout or scheme does. Falls back to the
/// article URL when the site URL has no host.
///
/// [tag URI]: https://www.rfc-editor.org/rfc/rfc4151
fn entry_id(meta: &FeedMeta, entry: &FeedEntry) -> String {
    let host = url::Url::parse(&meta.site_url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned));
    match host {
        Some(host) => format!(
            "tag:{host},{}:{}",
            entry.published.format("%Y-%m-%d"),
            percent_encode(&entry.slug)
        ),
        None => entry.link.clone(),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so that
/// any slug makes a valid URI.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use feed_rs::model::{Feed, FeedType};

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .unwrap_or_default()
    }

    fn meta() -> FeedMeta {
        FeedMeta {
            title: "Basalt: recent articles".to_owned(),
            subtitle: Some("Articles published on Basalt".to_owned()),
            site_url: "https://blog.example.com".to_owned(),
            self_url: "https://blog.example.com/feeds/articles.atom?tag=rust".to_owned(),
            updated: at(2024, 3, 6, 7, 8, 9),
        }
    }

    fn entry(n: u32) -> FeedEntry {
        FeedEntry {
            slug: format!("article-{n}"),
            title: format!("Article {n}"),
            summary: format!("What article {n} is about"),
            content_html: format!(
                "<p>Body of <em>article {n}</em></p>\n<pre><code>x &lt; y</code></pre>"
            ),
            author: format!("author{n}"),
            link: format!("https://blog.example.com/article/article-{n}"),
            published: at(2024, 3, n, 6, 7, 8),
            updated: at(2024, 3, n + 1, 10, 11, 12),
            tags: vec!["rust".to_owned(), format!("tag-{n}")],
        }
    }

    fn parse(xml: &str) -> Feed {
        match feed_rs::parser::parse(xml.as_bytes()) {
            Ok(feed) => feed,
            Err(err) => panic!("feed does not parse: {err}\n{xml}"),
        }
    }

    /// Independent of feed-rs: quick-xml's reader checks well-formedness
    /// (matching end tags, valid references, no stray markup), and no raw
    /// character XML 1.0 forbids may appear.
    fn assert_well_formed(xml: &str) {
        let mut reader = quick_xml::Reader::from_str(xml);
        reader.config_mut().check_end_names = true;
        let mut depth = 0usize;
        let mut roots = 0usize;
        loop {
            match reader.read_event() {
                Ok(Event::Eof) => break,
                Ok(Event::Start(_)) => {
                    if depth == 0 {
                        roots += 1;
                    }
                    depth += 1;
                }
                Ok(Event::End(_)) => depth -= 1,
                Ok(Event::GeneralRef(r)) => {
                    // Character references must name a character XML allows.
                    if r.is_char_ref() {
                        let c = r.resolve_char_ref().ok().flatten();
                        assert!(
                            c.is_some_and(|c| xml_safe(&c.to_string()).len() == c.len_utf8()),
                            "bad &{};",
                            &*r
                        );
                    } else {
                        assert!(
                            ["lt", "gt", "amp", "quot", "apos"].contains(&&*r),
                            "undefined entity &{};",
                            &*r
                        );
                    }
                }
                Ok(_) => {}
                Err(err) => panic!(
                    "not well-formed at {}: {err}\n{xml}",
                    reader.buffer_position()
                ),
            }
        }
        assert_eq!((depth, roots), (0, 1), "unbalanced document\n{xml}");
        assert!(
            !xml.chars().any(|c| matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')),
            "raw control character in\n{xml}"
        );
    }

    /// feed-rs hands links back parsed and re-serialised by the `url` crate
    /// (`https://host` gains its `/`, `<` becomes `%3C`).
    fn normalised(url: &str) -> String {
        url::Url::parse(url).map_or_else(|_| url.to_owned(), String::from)
    }

    fn hrefs(feed_links: &[feed_rs::model::Link]) -> Vec<(Option<&str>, &str)> {
        feed_links
            .iter()
            .map(|l| (l.rel.as_deref(), l.href.as_str()))
            .collect()
    }

    fn terms(entry: &feed_rs::model::Entry) -> Vec<&str> {
        entry.categories.iter().map(|c| c.term.as_str()).collect()
    }

    fn author_names(entry: &feed_rs::model::Entry) -> Vec<&str> {
        entry
            .authors
            .iter()
            .filter_map(|p| p.name.as_deref())
            .collect()
    }

    #[test]
    fn atom_round_trips_every_field() {
        let meta = meta();
        let entries = [entry(1), entry(2)];
        let xml = atom(&meta, &entries);
        assert_well_formed(&xml);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">"));
        let feed = parse(&xml);
        assert_eq!(feed.feed_type, FeedType::Atom);
        assert_eq!(feed.id, meta.self_url);
        assert_eq!(
            feed.title.as_ref().map(|t| t.content.as_str()),
            Some("Basalt: recent articles")
        );
        assert_eq!(
            feed.description.as_ref().map(|t| t.content.as_str()),
            Some("Articles published on Basalt")
        );
        assert_eq!(feed.updated, Some(meta.updated));
        assert_eq!(
            hrefs(&feed.links),
            [
                (Some("self"), meta.self_url.as_str()),
                (Some("alternate"), "https://blog.example.com/")
            ]
        );
        assert_eq!(feed.entries.len(), 2);
        for (parsed, original) in feed.entries.iter().zip(&entries) {
            assert_eq!(
                parsed.id,
                format!(
                    "tag:blog.example.com,{}:{}",
                    original.published.format("%Y-%m-%d"),
                    original.slug
                )
            );
            assert_eq!(
                parsed.title.as_ref().map(|t| t.content.as_str()),
                Some(original.title.as_str())
            );
            assert_eq!(
                hrefs(&parsed.links),
                [(Some("alternate"), original.link.as_str())]
            );
            assert_eq!(parsed.published, Some(original.published));
            assert_eq!(parsed.updated, Some(original.updated));
            assert_eq!(author_names(parsed), [original.author.as_str()]);
            assert_eq!(
                terms(parsed),
                original.tags.iter().map(String::as_str).collect::<Vec<_>>()
            );
            let summary = parsed
                .summary
                .as_ref()
                .map(|t| (t.content_type.to_string(), t.content.as_str()));
            assert_eq!(
                summary,
                Some(("text/plain".to_owned(), original.summary.as_str()))
            );
            let content = parsed
                .content
                .as_ref()
                .map(|c| (c.content_type.to_string(), c.body.as_deref()));
            assert_eq!(
                content,
                Some(("text/html".to_owned(), Some(original.content_html.as_str())))
            );
        }
    }

    #[test]
    fn rss_round_trips_every_field() {
        let meta = meta();
        let entries = [entry(1), entry(2)];
        let xml = rss(&meta, &entries);
        assert_well_formed(&xml);
        let feed = parse(&xml);
        assert_eq!(feed.feed_type, FeedType::RSS2);
        assert_eq!(
            feed.title.as_ref().map(|t| t.content.as_str()),
            Some("Basalt: recent articles")
        );
        assert_eq!(
            feed.description.as_ref().map(|t| t.content.as_str()),
            Some("Articles published on Basalt")
        );
        assert_eq!(feed.updated, Some(meta.updated));
        assert_eq!(
            hrefs(&feed.links),
            [
                (None, "https://blog.example.com/"),
                (Some("self"), meta.self_url.as_str())
            ]
        );
        assert_eq!(feed.entries.len(), 2);
        for (parsed, original) in feed.entries.iter().zip(&entries) {
            assert_eq!(
                parsed.id,
                format!(
                    "tag:blog.example.com,{}:{}",
                    original.published.format("%Y-%m-%d"),
                    original.slug
                )
            );
            assert_eq!(
                parsed.title.as_ref().map(|t| t.content.as_str()),
                Some(original.title.as_str())
            );
            assert_eq!(hrefs(&parsed.links), [(None, original.link.as_str())]);
            assert_eq!(parsed.published, Some(original.published));
            assert_eq!(author_names(parsed), [original.author.as_str()]);
            assert_eq!(
                terms(parsed),
                original.tags.iter().map(String::as_str).collect::<Vec<_>>()
            );
            assert_eq!(
                parsed.summary.as_ref().map(|t| t.content.as_str()),
                Some(original.summary.as_str())
            );
            let content = parsed
                .content
                .as_ref()
                .map(|c| (c.content_type.to_string(), c.body.as_deref()));
            assert_eq!(
                content,
                Some(("text/html".to_owned(), Some(original.content_html.as_str())))
            );
        }
        assert!(xml.contains(
            "<guid isPermaLink=\"false\">tag:blog.example.com,2024-03-01:article-1</guid>"
        ));
        assert!(xml.contains("<dc:creator>author1</dc:creator>"));
    }

    #[test]
    fn date_formats() {
        let mut meta = meta();
        // Sub-second precision is dropped, as both formats are in seconds.
        meta.updated = at(2024, 3, 5, 6, 7, 8) + chrono::Duration::milliseconds(999);
        let mut e = entry(5);
        e.published = at(2024, 3, 5, 6, 7, 8);
        let atom = atom(&meta, std::slice::from_ref(&e));
        assert!(
            atom.contains("<updated>2024-03-05T06:07:08Z</updated>"),
            "{atom}"
        );
        assert!(
            atom.contains("<published>2024-03-05T06:07:08Z</published>"),
            "{atom}"
        );
        let rss = rss(&meta, &[e]);
        assert!(
            rss.contains("<lastBuildDate>Tue, 5 Mar 2024 06:07:08 +0000</lastBuildDate>"),
            "{rss}"
        );
        assert!(
            rss.contains("<pubDate>Tue, 5 Mar 2024 06:07:08 +0000</pubDate>"),
            "{rss}"
        );
    }

    #[test]
    fn hostile_text_stays_well_formed_and_intact() {
        let hostile = "<b>\"Fish\" & 'Chips'</b> ]]> <![CDATA[x]]> &amp; &#0; 🦀 Zoë\r\n日本語";
        let controls = "\u{0}\u{1}\u{8}\u{B}\u{C}\u{1B}\u{1F}\u{7F}\u{85}\u{FFFE}\u{FFFF}";
        let body =
            "<p>ok</p></content></entry></feed></summary><script>alert(1)</script>]]>&lt;<!-- -->";
        let mut meta = meta();
        meta.title = format!("{hostile}{controls} title");
        meta.subtitle = Some(format!("{controls}{hostile}"));
        meta.self_url =
            "https://blog.example.com/feeds/articles.atom?tag=a&author=\"b\"<c>".to_owned();
        let e = FeedEntry {
            slug: "a b/c?d#é".to_owned(),
            title: format!("{hostile} entry{controls}"),
            summary: format!("Summary with {hostile}"),
            content_html: body.to_owned(),
            author: format!("Zoë {controls}<admin> & \"co\""),
            link: "https://blog.example.com/article/x?a=1&b=<2>".to_owned(),
            tags: vec![
                format!("c&{controls}c"),
                "\"quoted\" <tag>".to_owned(),
                "🦀".to_owned(),
            ],
            ..entry(3)
        };
        let clean = |s: &str| {
            s.chars()
                .filter(|c| !controls.contains(*c))
                .collect::<String>()
        };

        for (xml, kind) in [
            (atom(&meta, std::slice::from_ref(&e)), FeedType::Atom),
            (rss(&meta, std::slice::from_ref(&e)), FeedType::RSS2),
        ] {
            assert_well_formed(&xml);
            assert!(!xml.contains("<script>"), "{xml}");
            let feed = parse(&xml);
            assert_eq!(feed.feed_type, kind);
            assert_eq!(feed.title.map(|t| t.content), Some(clean(&meta.title)));
            let parsed = &feed.entries[0];
            assert_eq!(
                parsed.title.as_ref().map(|t| t.content.clone()),
                Some(clean(&e.title))
            );
            assert_eq!(
                parsed.content.as_ref().and_then(|c| c.body.as_deref()),
                Some(body)
            );
            assert_eq!(hrefs(&parsed.links)[0].1, normalised(&e.link));
            assert_eq!(author_names(parsed), [clean(&e.author).trim()]);
            assert_eq!(
                terms(parsed),
                [clean(&e.tags[0]).as_str(), "\"quoted\" <tag>", "🦀"]
            );
            assert_eq!(
                parsed.id,
                "tag:blog.example.com,2024-03-03:a%20b%2Fc%3Fd%23%C3%A9"
            );
            let self_link = feed
                .links
                .iter()
                .find(|l| l.rel.as_deref() == Some("self"))
                .map(|l| l.href.as_str());
            assert_eq!(self_link, Some(normalised(&meta.self_url).as_str()));
            let summary = parsed
                .summary
                .as_ref()
                .map(|t| t.content.clone())
                .unwrap_or_default();
            match kind {
                FeedType::Atom => assert_eq!(summary, e.summary),
                // HTML-escaped once more for readers that render it as HTML.
                _ => assert_eq!(summary, escape(e.summary.as_str())),
            }
        }
    }

    #[test]
    fn line_breaks_in_attributes_survive() {
        let mut e = entry(1);
        e.tags = vec!["two\nlines\tand tab".to_owned()];
        let feed = parse(&atom(&meta(), &[e]));
        assert_eq!(terms(&feed.entries[0]), ["two\nlines\tand tab"]);
    }

    #[test]
    fn empty_feeds_are_valid() {
        for (xml, kind) in [
            (atom(&meta(), &[]), FeedType::Atom),
            (rss(&meta(), &[]), FeedType::RSS2),
        ] {
            assert_well_formed(&xml);
            let feed = parse(&xml);
            assert_eq!(feed.feed_type, kind);
            assert!(feed.entries.is_empty());
            assert_eq!(
                feed.title.map(|t| t.content),
                Some("Basalt: recent articles".to_owned())
            );
            assert_eq!(feed.updated, Some(meta().updated));
        }
    }

    #[test]
    fn empty_optional_parts_are_left_out() {
        let mut m = meta();
        m.subtitle = None;
        let mut e = entry(1);
        e.summary = "  ".to_owned();
        e.content_html = String::new();
        e.tags.clear();
        let atom = atom(&m, std::slice::from_ref(&e));
        assert!(
            !atom.contains("<subtitle") && !atom.contains("<summary") && !atom.contains("<content"),
            "{atom}"
        );
        let feed = parse(&atom);
        assert!(feed.entries[0].content.is_none() && feed.entries[0].categories.is_empty());
        let rss = rss(&m, &[e]);
        assert_well_formed(&rss);
        // RSS requires a channel description: the title stands in.
        assert!(
            rss.contains("<description>Basalt: recent articles</description>"),
            "{rss}"
        );
        let feed = parse(&rss);
        assert!(feed.entries[0].summary.is_none() && feed.entries[0].content.is_none());
    }

    #[test]
    fn ids_fall_back_to_the_link_without_a_host() {
        let mut m = meta();
        m.site_url = "not a url".to_owned();
        let e = entry(1);
        assert_eq!(entry_id(&m, &e), e.link);
        m.site_url = "http://LOCALHOST:8080/".to_owned();
        assert_eq!(entry_id(&m, &e), "tag:localhost,2024-03-01:article-1");
    }

    #[test]
    fn content_types() {
        assert_eq!(ATOM_CONTENT_TYPE, "application/atom+xml; charset=utf-8");
        assert_eq!(RSS_CONTENT_TYPE, "application/rss+xml; charset=utf-8");
    }
}
