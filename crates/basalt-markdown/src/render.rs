//! The renderer and its allow-list; what it keeps and why is in the
//! [crate docs](crate).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};
use pulldown_cmark::{Alignment, CowStr, Event, Options, Parser, Tag, TagEnd};

/// What every link in rendered content carries: no `window.opener` for the
/// target, no referrer leak, and no search-engine credit for user-supplied
/// links (which would reward spam).
pub const LINK_REL: &str = "noopener noreferrer nofollow";

/// URL schemes allowed in `href` and `src`; relative URLs are allowed too.
const URL_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

/// The sanitiser, built once: its sets are immutable and it is `Sync`.
static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(sanitizer);

/// Renders `markdown` (CommonMark with tables and strikethrough) to HTML that
/// is safe to insert into a page: raw HTML in the input is sanitised, never
/// passed through, and only the allow-list described in the [crate
/// docs](crate) survives. Links get `rel="noopener noreferrer nofollow"`.
///
/// To keep the cost of hostile input near linear, nesting deeper than
/// [`MAX_NESTING`] is flattened and raw HTML past [`MAX_RAW_HTML_TAGS`] start
/// tags is shown as text; callers should still cap stored bodies at
/// [`MAX_MARKDOWN_BYTES`].
///
/// ```
/// use basalt_markdown::markdown_to_safe_html;
///
/// let html = markdown_to_safe_html("*Hi* [there](javascript:alert(1)) <script>alert(2)</script>");
/// assert_eq!(html, "<p><em>Hi</em> <a rel=\"noopener noreferrer nofollow\">there</a> </p>\n");
/// ```
pub fn markdown_to_safe_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events = Events::new(Parser::new_ext(markdown, options));
    let mut html = String::with_capacity(markdown.len() + markdown.len() / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    SANITIZER.clean(&html).to_string()
}

/// The allow-list.
fn sanitizer() -> Builder<'static> {
    let tags = HashSet::from([
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "code",
        "del",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "kbd",
        "li",
        "ol",
        "p",
        "pre",
        "s",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]);
    // Elements dropped together with everything inside them. Without this an
    // unknown element is unwrapped and its content kept, which is right for
    // `<div>` or `<span>` but not for these: their content is script,
    // CSS, fallback for active content, or foreign markup (SVG, MathML) that
    // has no meaning once its element is gone.
    let clean_content_tags = HashSet::from([
        "applet", "embed", "frame", "frameset", "iframe", "math", "noembed", "noframes",
        "noscript", "object", "script", "select", "style", "svg", "template", "textarea", "title",
        "xmp",
    ]);
    let tag_attributes = HashMap::from([
        ("a", HashSet::from(["href", "title"])),
        ("abbr", HashSet::from(["title"])),
        ("img", HashSet::from(["src", "alt", "title"])),
        ("ol", HashSet::from(["start"])),
        // Only `language-*`, checked by `filter_attribute`: the hook syntax
        // highlighters use for fenced code blocks.
        ("code", HashSet::from(["class"])),
    ]);
    // Table alignment as the `align` attribute (see `Events`),
    // with only these three exact values.
    let alignment = || HashMap::from([("align", HashSet::from(["left", "center", "right"]))]);
    let tag_attribute_values = HashMap::from([("th", alignment()), ("td", alignment())]);

    let mut builder = Builder::empty();
    builder
        .tags(tags)
        .clean_content_tags(clean_content_tags)
        // The defaults allow `lang` and `title` everywhere; nothing is needed
        // on every element.
        .generic_attributes(HashSet::new())
        .tag_attributes(tag_attributes)
        .tag_attribute_values(tag_attribute_values)
        .attribute_filter(filter_attribute)
        .url_schemes(HashSet::from(URL_SCHEMES))
        // Links within the site (between articles, say) are relative; a
        // relative URL cannot change the scheme, so it cannot smuggle
        // `javascript:` in.
        .url_relative(UrlRelative::PassThrough)
        .link_rel(Some(LINK_REL))
        // Conditional comments and comment-based parser confusion have no
        // business in user-written text.
        .strip_comments(true);
    builder
}

/// Final check on the attributes the allow-list admitted: a `class` on
/// `<code>` must be a single `language-*` token, so that Markdown info strings
/// (` ```rust `) survive but no other class names (which page scripts or
/// styles could react to) do.
fn filter_attribute<'a>(element: &str, attribute: &str, value: &'a str) -> Option<Cow<'a, str>> {
    if element == "code" && attribute == "class" {
        let language = value.strip_prefix("language-")?;
        let valid = !language.is_empty()
            && language.len() <= 32
            && language
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+#._-".contains(&b));
        return valid.then_some(Cow::Borrowed(value));
    }
    Some(Cow::Borrowed(value))
}

/// Deepest Markdown nesting rendered as elements; deeper containers (quotes,
/// lists, emphasis, …) keep their text but lose their markup. Real articles
/// and messages stay far below this.
pub const MAX_NESTING: usize = 32;

/// Raw HTML start tags rendered as HTML per document; raw HTML after that is
/// shown as text.
pub const MAX_RAW_HTML_TAGS: usize = 500;

/// Longest Markdown input that callers storing user content should accept.
/// The renderer takes longer input, but the HTML parser and serialiser
/// behind the sanitiser have costs that grow faster than linearly on some
/// abusive shapes (such as a single URL of 100,000 `&`s); at this size the
/// worst shape found costs about a quarter of a second in a release build.
pub const MAX_MARKDOWN_BYTES: usize = 256 * 1024;

/// Longest run of text handed to the sanitiser as one text node (see
/// [`Events`]).
const TEXT_NODE_BYTES: usize = 4096;

/// The Markdown events on their way to the HTML writer, with these changes:
///
/// - A column's table alignment becomes an `align` attribute instead of
///   pulldown-cmark's `style="text-align: …"`: the sanitiser lets no CSS
///   through at all, and this keeps alignment without making an exception.
/// - Nesting deeper than [`MAX_NESTING`] is flattened, and raw HTML beyond
///   [`MAX_RAW_HTML_TAGS`] start tags becomes text. html5ever (the parser
///   inside ammonia) spends time proportional to the depth of open elements
///   for every element it inserts, so 40,000 nested list items (80 KB of
///   `- `) would otherwise cost tens of seconds of CPU on every render.
/// - Long runs of text are broken up by empty comments, which the sanitiser
///   strips (so the output is unchanged). html5ever's serialiser escapes a
///   text node in time proportional to its length times its number of `&`s,
///   so a long code listing dense with `&&` would otherwise be quadratic.
///
/// None of this is a security boundary: whatever these steps let through,
/// the sanitiser still sees the final HTML.
struct Events<'a, I> {
    inner: I,
    /// Events to hand out before reading more.
    queue: VecDeque<Event<'a>>,
    alignments: Vec<Alignment>,
    in_head: bool,
    column: usize,
    depth: usize,
    raw_tags_left: usize,
    /// Image elements open: their text is the `alt` attribute, where a
    /// comment would be literal text.
    in_image: usize,
    /// Bytes of text since the last element boundary or comment.
    text_run: usize,
}

impl<'a, I: Iterator<Item = Event<'a>>> Events<'a, I> {
    fn new(inner: I) -> Self {
        Self {
            inner,
            queue: VecDeque::new(),
            alignments: Vec::new(),
            in_head: false,
            column: 0,
            depth: 0,
            raw_tags_left: MAX_RAW_HTML_TAGS,
            in_image: 0,
            text_run: 0,
        }
    }

    fn start(&mut self, tag: Tag<'a>) -> Event<'a> {
        match &tag {
            Tag::Table(alignments) => self.alignments.clone_from(alignments),
            // pulldown-cmark's head has its cells directly, without a row.
            Tag::TableHead => {
                self.in_head = true;
                self.column = 0;
            }
            Tag::TableRow => self.column = 0,
            Tag::Image { .. } => self.in_image += 1,
            Tag::TableCell => {
                let start = match (self.in_head, self.alignments.get(self.column)) {
                    (true, Some(Alignment::Left)) => "<th align=\"left\">",
                    (true, Some(Alignment::Center)) => "<th align=\"center\">",
                    (true, Some(Alignment::Right)) => "<th align=\"right\">",
                    (false, Some(Alignment::Left)) => "<td align=\"left\">",
                    (false, Some(Alignment::Center)) => "<td align=\"center\">",
                    (false, Some(Alignment::Right)) => "<td align=\"right\">",
                    _ => return Event::Start(tag),
                };
                // The writer closes the cell itself on `End(TableCell)`,
                // choosing `</th>` or `</td>` from its own state.
                return Event::Html(CowStr::Borrowed(start));
            }
            _ => {}
        }
        Event::Start(tag)
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::TableHead => self.in_head = false,
            TagEnd::TableCell => self.column += 1,
            TagEnd::Image => self.in_image = self.in_image.saturating_sub(1),
            _ => {}
        }
    }

    /// Spends the raw-HTML budget on `html`, or says it is spent.
    fn within_budget(&mut self, html: &str) -> bool {
        // Counted as the HTML tokenizer starts a tag: `<` and a letter.
        let tags = html
            .as_bytes()
            .windows(2)
            .filter(|w| w[0] == b'<' && w[1].is_ascii_alphabetic())
            .count();
        match self.raw_tags_left.checked_sub(tags) {
            Some(left) => {
                self.raw_tags_left = left;
                true
            }
            None => {
                self.raw_tags_left = 0;
                false
            }
        }
    }

    /// `html` as `kind` within the budget, as text beyond it. Raw HTML may
    /// hold text too, but is not broken up like text: a comment could land
    /// inside a tag that spans lines.
    fn raw_html(&mut self, html: CowStr<'a>, kind: fn(CowStr<'a>) -> Event<'a>) -> Event<'a> {
        if !self.within_budget(&html) {
            return self.text(html);
        }
        self.text_run += html.len();
        kind(html)
    }

    /// `text`, with a comment before it and within it wherever the current
    /// run of text would pass [`TEXT_NODE_BYTES`].
    fn text(&mut self, text: CowStr<'a>) -> Event<'a> {
        if self.in_image > 0 || self.text_run + text.len() <= TEXT_NODE_BYTES {
            self.text_run += text.len();
            return Event::Text(text);
        }
        let mut rest: &str = &text;
        while !rest.is_empty() {
            let mut end = rest.len().min(TEXT_NODE_BYTES);
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            self.queue
                .push_back(Event::Text(CowStr::from(rest[..end].to_owned())));
            self.queue
                .push_back(Event::InlineHtml(CowStr::Borrowed("<!---->")));
            self.text_run = end;
            rest = &rest[end..];
        }
        // The last comment is not needed; the first one is.
        self.queue.pop_back();
        Event::InlineHtml(CowStr::Borrowed("<!---->"))
    }
}

impl<'a, I: Iterator<Item = Event<'a>>> Iterator for Events<'a, I> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        if let Some(event) = self.queue.pop_front() {
            return Some(event);
        }
        loop {
            let event = self.inner.next()?;
            if !matches!(
                event,
                Event::Text(_) | Event::SoftBreak | Event::Html(_) | Event::InlineHtml(_)
            ) {
                self.text_run = 0;
            }
            match event {
                Event::Start(tag) => {
                    self.depth += 1;
                    if self.depth <= MAX_NESTING {
                        return Some(self.start(tag));
                    }
                }
                // Events nest properly, so an end is dropped exactly when
                // its start was.
                Event::End(tag) => {
                    let kept = self.depth <= MAX_NESTING;
                    self.depth = self.depth.saturating_sub(1);
                    if kept {
                        self.end(tag);
                        return Some(Event::End(tag));
                    }
                }
                Event::Text(text) => return Some(self.text(text)),
                Event::Html(html) => return Some(self.raw_html(html, Event::Html)),
                Event::InlineHtml(html) => return Some(self.raw_html(html, Event::InlineHtml)),
                other => return Some(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- positive rendering -------------------------------------------------

    #[test]
    fn headings_and_emphasis() {
        assert_eq!(markdown_to_safe_html("# Title"), "<h1>Title</h1>\n");
        assert_eq!(markdown_to_safe_html("###### Six"), "<h6>Six</h6>\n");
        assert_eq!(
            markdown_to_safe_html("*em* **strong** ~~gone~~ `code`"),
            "<p><em>em</em> <strong>strong</strong> <del>gone</del> <code>code</code></p>\n"
        );
    }

    #[test]
    fn code_blocks_are_escaped_and_keep_their_language() {
        let html = markdown_to_safe_html("```rust\nlet s = \"<script>alert(1)</script>\";\n```\n");
        assert_eq!(
            html,
            "<pre><code class=\"language-rust\">let s = \"&lt;script&gt;alert(1)&lt;/script&gt;\";\n\
             </code></pre>\n"
        );
        let indented = markdown_to_safe_html("    <img src=x onerror=alert(1)>\n");
        assert_eq!(
            indented,
            "<pre><code>&lt;img src=x onerror=alert(1)&gt;\n</code></pre>\n"
        );
        assert_eq!(
            markdown_to_safe_html("`<b>&amp;</b>`"),
            "<p><code>&lt;b&gt;&amp;amp;&lt;/b&gt;</code></p>\n"
        );
    }

    #[test]
    fn only_plain_language_classes_survive() {
        let odd = markdown_to_safe_html("```c++ extra\nx\n```\n");
        assert!(odd.contains("<code class=\"language-c++\">"), "{odd}");
        for info in ["\"><script>", "a b\"onclick=\"x", "x\" style=\"color:red"] {
            let html = markdown_to_safe_html(&format!("```{info}\nx\n```\n"));
            assert!(
                !html.contains("script") && !html.contains("style"),
                "{html}"
            );
        }
        let raw = markdown_to_safe_html("<code class=\"evil language-x\">x</code>");
        assert_eq!(raw, "<p><code>x</code></p>\n");
        let raw = markdown_to_safe_html("<p class=\"language-x\">x</p>");
        assert_eq!(raw, "<p>x</p>");
    }

    #[test]
    fn links_get_rel_and_keep_safe_urls() {
        assert_eq!(
            markdown_to_safe_html("[Basalt](https://example.com/a?b=1&c=2 \"The title\")"),
            "<p><a href=\"https://example.com/a?b=1&amp;c=2\" title=\"The title\" \
             rel=\"noopener noreferrer nofollow\">Basalt</a></p>\n"
        );
        assert_eq!(
            markdown_to_safe_html("[rel](/articles/hello-world) [mail](mailto:a@example.com)"),
            "<p><a href=\"/articles/hello-world\" rel=\"noopener noreferrer nofollow\">rel</a> \
             <a href=\"mailto:a@example.com\" rel=\"noopener noreferrer nofollow\">mail</a></p>\n"
        );
        assert_eq!(
            markdown_to_safe_html("<https://example.com>"),
            "<p><a href=\"https://example.com\" rel=\"noopener noreferrer nofollow\">\
             https://example.com</a></p>\n"
        );
        // A user's own rel (or target) does not replace ours.
        assert_eq!(
            markdown_to_safe_html(
                "<a href=\"https://x.example\" rel=\"opener\" target=\"_top\">x</a>"
            ),
            "<p><a href=\"https://x.example\" rel=\"noopener noreferrer nofollow\">x</a></p>\n"
        );
        // Other schemes lose the URL but keep the text.
        assert_eq!(
            markdown_to_safe_html("[ftp](ftp://example.com/file)"),
            "<p><a rel=\"noopener noreferrer nofollow\">ftp</a></p>\n"
        );
    }

    #[test]
    fn images_keep_http_sources() {
        assert_eq!(
            markdown_to_safe_html("![A cat](https://img.example/cat.png \"Cat\")"),
            "<p><img src=\"https://img.example/cat.png\" alt=\"A cat\" title=\"Cat\"></p>\n"
        );
        assert_eq!(
            markdown_to_safe_html("![rel](/static/x.png)"),
            "<p><img src=\"/static/x.png\" alt=\"rel\"></p>\n"
        );
        // No data: URLs at all, even images: SVG in a data URL is a script
        // vector in some contexts, and none of it is needed for user-written text.
        assert_eq!(
            markdown_to_safe_html("![x](data:image/png;base64,iVBORw0KGgo=)"),
            "<p><img alt=\"x\"></p>\n"
        );
    }

    #[test]
    fn tables_keep_alignment_without_css() {
        let html = markdown_to_safe_html(
            "| Left | Centre | Right | None |\n|:-----|:------:|------:|------|\n| a | b | c | d |\n| e | f | g | h |\n",
        );
        assert_eq!(
            html,
            "<table><thead><tr><th align=\"left\">Left</th><th align=\"center\">Centre</th>\
             <th align=\"right\">Right</th><th>None</th></tr></thead><tbody>\n\
             <tr><td align=\"left\">a</td><td align=\"center\">b</td><td align=\"right\">c</td><td>d</td></tr>\n\
             <tr><td align=\"left\">e</td><td align=\"center\">f</td><td align=\"right\">g</td><td>h</td></tr>\n\
             </tbody></table>\n"
        );
        assert!(!html.contains("style"));
        // Raw HTML may only use the three alignment values.
        assert_eq!(
            markdown_to_safe_html(
                "<table><tr><td align=\"justify\" style=\"color:red\">x</td></tr></table>"
            ),
            "<table><tbody><tr><td>x</td></tr></tbody></table>"
        );
    }

    #[test]
    fn prose_blocks() {
        assert_eq!(
            markdown_to_safe_html(
                "> quoted\n\n- one\n- two\n\n3. three\n4. four\n\n---\n\nline  \nbreak"
            ),
            "<blockquote>\n<p>quoted</p>\n</blockquote>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n\
             <ol start=\"3\">\n<li>three</li>\n<li>four</li>\n</ol>\n<hr>\n<p>line<br>\nbreak</p>\n"
        );
    }

    #[test]
    fn harmless_raw_html_is_kept_and_the_rest_unwrapped() {
        assert_eq!(
            markdown_to_safe_html("<strong>ok</strong>"),
            "<p><strong>ok</strong></p>\n"
        );
        assert_eq!(
            markdown_to_safe_html(
                "<div class=\"x\" id=\"y\"><span>kept</span> <kbd>Ctrl</kbd></div>"
            ),
            "kept <kbd>Ctrl</kbd>"
        );
        assert_eq!(
            markdown_to_safe_html("a <sub>b</sub> <sup>c</sup>"),
            "<p>a <sub>b</sub> <sup>c</sup></p>\n"
        );
    }

    #[test]
    fn text_is_escaped_and_unicode_intact() {
        assert_eq!(
            markdown_to_safe_html("Zoë & 日本語 < 🦀 > \"q\""),
            "<p>Zoë &amp; 日本語 &lt; 🦀 &gt; \"q\"</p>\n"
        );
        assert_eq!(markdown_to_safe_html(""), "");
        assert_eq!(markdown_to_safe_html("   \n\n"), "");
    }

    #[test]
    fn long_text_renders_unchanged() {
        // Long runs are split into several text nodes on the way (see
        // `Events`); none of that may show, including in multi-byte text,
        // code blocks and image descriptions.
        let text = "x&y 1<2 é ".repeat(3000);
        let expected = "x&amp;y 1&lt;2 é ".repeat(3000);
        assert_eq!(
            markdown_to_safe_html(&text),
            format!("<p>{}</p>\n", expected.trim_end())
        );
        let code = format!("```\n{}```\n", "a && b\n".repeat(3000));
        let expected = format!(
            "<pre><code>{}</code></pre>\n",
            "a &amp;&amp; b\n".repeat(3000)
        );
        assert_eq!(markdown_to_safe_html(&code), expected);
        let image = format!("![{}](/x.png)", "é&".repeat(5000));
        let expected = format!(
            "<p><img src=\"/x.png\" alt=\"{}\"></p>\n",
            "é&amp;".repeat(5000)
        );
        assert_eq!(markdown_to_safe_html(&image), expected);
    }

    #[test]
    fn deep_nesting_is_flattened() {
        let quotes = markdown_to_safe_html(&(">".repeat(50_000) + " deep"));
        assert_eq!(quotes.matches("<blockquote>").count(), MAX_NESTING);
        assert!(quotes.contains("deep"));
        let list = markdown_to_safe_html(&("- ".repeat(50_000) + "deep"));
        assert_eq!(
            list.matches("<li>").count() + list.matches("<ul>").count(),
            MAX_NESTING
        );
        assert!(list.contains("deep"));
        let emphasis = markdown_to_safe_html(&("*a ".repeat(10_000) + &" b*".repeat(10_000)));
        assert!(emphasis.matches("<em>").count() <= MAX_NESTING);
        // Tables keep working inside the limit.
        let nested_table = format!(
            "{}| a |\n{}|:-:|\n{}| b |\n",
            "> ".repeat(5),
            "> ".repeat(5),
            "> ".repeat(5)
        );
        assert!(markdown_to_safe_html(&nested_table).contains("<td align=\"center\">b</td>"));
    }

    #[test]
    fn raw_html_beyond_the_budget_is_text() {
        let divs = markdown_to_safe_html(&("<div>".repeat(50_000) + "deep"));
        assert!(
            divs.ends_with("&lt;div&gt;deep"),
            "{}",
            &divs[divs.len() - 100..]
        );
        let inline = "x <b>b</b>".repeat(MAX_RAW_HTML_TAGS + 10);
        let html = markdown_to_safe_html(&inline);
        assert_eq!(html.matches("<b>").count(), MAX_RAW_HTML_TAGS);
        assert_eq!(html.matches("&lt;b&gt;").count(), 10);
        // Closing tags and comments cost nothing.
        let closers = "</b>".repeat(10 * MAX_RAW_HTML_TAGS) + "<i>still html</i>";
        assert!(markdown_to_safe_html(&closers).contains("<i>still html</i>"));
    }

    // ---- the XSS corpus -----------------------------------------------------

    /// One payload per line; lines starting with `;;` and blank lines are
    /// skipped; `\n`, `\r` and `\t` stand for those characters.
    const CORPUS: &str = include_str!("xss-corpus.txt");

    fn payloads() -> Vec<String> {
        CORPUS
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with(";;"))
            .map(|line| {
                line.replace("\\n", "\n")
                    .replace("\\r", "\r")
                    .replace("\\t", "\t")
            })
            .collect()
    }

    /// A tag as seen by [`scan`]: lower-cased name and attributes with their
    /// values still entity-encoded, as written.
    #[derive(Debug)]
    struct ScannedTag {
        name: String,
        closing: bool,
        attributes: Vec<(String, String)>,
    }

    /// A deliberately simple, ammonia-independent tokenizer for the output.
    /// It follows the HTML tokenizer where that matters (a tag starts with
    /// `<` plus a letter, or `</` plus a letter; attribute values may be
    /// double-, single- or un-quoted) and treats anything else that a browser
    /// would parse as markup (`<!`, `<?`, `</` plus a non-letter) as a
    /// finding.
    fn scan(html: &str) -> Result<Vec<ScannedTag>, String> {
        let bytes = html.as_bytes();
        let mut tags = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'<' {
                i += 1;
                continue;
            }
            let next = bytes.get(i + 1).copied();
            let (closing, start) = match next {
                Some(b) if b.is_ascii_alphabetic() => (false, i + 1),
                Some(b'/') if bytes.get(i + 2).is_some_and(u8::is_ascii_alphabetic) => {
                    (true, i + 2)
                }
                Some(b'!' | b'?' | b'/') => return Err(format!("markup declaration at byte {i}")),
                // A `<` before anything else is text to a browser.
                _ => {
                    i += 1;
                    continue;
                }
            };
            let mut j = start;
            while j < bytes.len()
                && !bytes[j].is_ascii_whitespace()
                && bytes[j] != b'/'
                && bytes[j] != b'>'
            {
                j += 1;
            }
            let name = html[start..j].to_ascii_lowercase();
            let mut attributes = Vec::new();
            loop {
                while j < bytes.len() && (bytes[j].is_ascii_whitespace() || bytes[j] == b'/') {
                    j += 1;
                }
                if j >= bytes.len() {
                    return Err(format!("unterminated tag <{name}"));
                }
                if bytes[j] == b'>' {
                    j += 1;
                    break;
                }
                let name_start = j;
                while j < bytes.len()
                    && !bytes[j].is_ascii_whitespace()
                    && !matches!(bytes[j], b'=' | b'>' | b'/')
                {
                    j += 1;
                }
                let attribute = html[name_start..j].to_ascii_lowercase();
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                let mut value = String::new();
                if bytes.get(j) == Some(&b'=') {
                    j += 1;
                    while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    match bytes.get(j) {
                        Some(&quote @ (b'"' | b'\'')) => {
                            let end = html[j + 1..]
                                .find(quote as char)
                                .ok_or_else(|| format!("unterminated attribute {attribute}"))?;
                            value = html[j + 1..j + 1 + end].to_owned();
                            j += end + 2;
                        }
                        _ => {
                            let value_start = j;
                            while j < bytes.len()
                                && !bytes[j].is_ascii_whitespace()
                                && bytes[j] != b'>'
                            {
                                j += 1;
                            }
                            value = html[value_start..j].to_owned();
                        }
                    }
                }
                attributes.push((attribute, value));
            }
            tags.push(ScannedTag {
                name,
                closing,
                attributes,
            });
            i = j;
        }
        Ok(tags)
    }

    /// Decodes the character references a browser would decode in an
    /// attribute value: numeric ones (with or without `;`, as browsers
    /// accept) and the named ones that matter for URL obfuscation.
    fn decode_entities(value: &str) -> String {
        const NAMED: [(&str, char); 12] = [
            ("amp", '&'),
            ("lt", '<'),
            ("gt", '>'),
            ("quot", '"'),
            ("apos", '\''),
            ("colon", ':'),
            ("tab", '\t'),
            ("newline", '\n'),
            ("nbsp", '\u{a0}'),
            ("lpar", '('),
            ("rpar", ')'),
            ("sol", '/'),
        ];
        let mut out = String::new();
        let mut rest = value;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            rest = &rest[amp + 1..];
            if let Some(number) = rest.strip_prefix('#') {
                let (radix, digits_from) = match number.as_bytes().first() {
                    Some(b'x' | b'X') => (16, 1),
                    _ => (10, 0),
                };
                let digits: String = number[digits_from..]
                    .chars()
                    .take_while(|c| c.is_digit(radix))
                    .collect();
                if let Some(c) = u32::from_str_radix(&digits, radix)
                    .ok()
                    .and_then(char::from_u32)
                {
                    out.push(c);
                    let consumed = 1 + digits_from + digits.len();
                    rest = &rest[consumed..];
                    rest = rest.strip_prefix(';').unwrap_or(rest);
                    continue;
                }
            } else if let Some((name, c)) = NAMED
                .iter()
                .find(|(name, _)| rest.to_ascii_lowercase().starts_with(&format!("{name};")))
            {
                out.push(*c);
                rest = &rest[name.len() + 1..];
                continue;
            }
            out.push('&');
        }
        out.push_str(rest);
        out
    }

    /// The elements and attributes the output may contain, restated here
    /// independently of the sanitiser's configuration.
    fn allowed_attribute(tag: &str, attribute: &str) -> bool {
        matches!(
            (tag, attribute),
            ("a", "href" | "title" | "rel")
                | ("abbr", "title")
                | ("img", "src" | "alt" | "title")
                | ("ol", "start")
                | ("code", "class")
                | ("th" | "td", "align")
        )
    }

    const ALLOWED_TAGS: [&str; 34] = [
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "code",
        "del",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "kbd",
        "li",
        "ol",
        "p",
        "pre",
        "s",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ];

    const FORBIDDEN_TAGS: [&str; 24] = [
        "script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input",
        "button", "style", "base", "meta", "link", "svg", "math", "template", "noscript",
        "textarea", "select", "video", "audio", "body", "html",
    ];

    const URL_ATTRIBUTES: [&str; 13] = [
        "href",
        "src",
        "action",
        "formaction",
        "data",
        "poster",
        "background",
        "xlink:href",
        "srcset",
        "ping",
        "lowsrc",
        "dynsrc",
        "codebase",
    ];

    /// Every way the output could still carry active content, as a list of
    /// findings (empty when safe).
    fn findings(html: &str) -> Vec<String> {
        let mut found = Vec::new();
        if html.to_ascii_lowercase().contains("<script") {
            found.push("contains `<script`".to_owned());
        }
        let tags = match scan(html) {
            Ok(tags) => tags,
            Err(problem) => return vec![problem],
        };
        for tag in &tags {
            if FORBIDDEN_TAGS.contains(&tag.name.as_str()) {
                found.push(format!("forbidden element <{}>", tag.name));
            }
            if !ALLOWED_TAGS.contains(&tag.name.as_str()) {
                found.push(format!("element <{}> not on the allow-list", tag.name));
            }
            if tag.closing {
                continue;
            }
            for (attribute, raw) in &tag.attributes {
                let value = decode_entities(raw);
                if attribute.starts_with("on") {
                    found.push(format!("event handler {attribute} on <{}>", tag.name));
                }
                if matches!(
                    attribute.as_str(),
                    "style" | "srcdoc" | "formaction" | "xmlns" | "id" | "name"
                ) {
                    found.push(format!("attribute {attribute} on <{}>", tag.name));
                }
                if !allowed_attribute(&tag.name, attribute) {
                    found.push(format!(
                        "attribute {attribute} not allowed on <{}>",
                        tag.name
                    ));
                }
                if URL_ATTRIBUTES.contains(&attribute.as_str())
                    && let Some(problem) = unsafe_url(&value)
                {
                    found.push(format!("{attribute}={raw:?}: {problem}"));
                }
                if tag.name == "a" && attribute == "rel" && value != LINK_REL {
                    found.push(format!("rel={value:?}"));
                }
            }
            if tag.name == "a" && !tag.attributes.iter().any(|(a, _)| a == "rel") {
                found.push("link without rel".to_owned());
            }
        }
        found
    }

    /// Why `url` (entity-decoded) is unsafe, if it is. Two checks: the scheme
    /// as a browser's URL parser finds it (leading/trailing C0 controls and
    /// spaces trimmed, tabs and newlines removed anywhere) must be allowed or
    /// absent; and, more bluntly, no dangerous scheme name followed by a colon
    /// may appear anywhere once all whitespace and controls are removed.
    fn unsafe_url(url: &str) -> Option<String> {
        let trimmed = url.trim_matches(|c: char| c <= ' ');
        let browser: String = trimmed
            .chars()
            .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(colon) = browser.find(':') {
            let scheme = &browser[..colon];
            let is_scheme = scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if is_scheme && !URL_SCHEMES.contains(&scheme) {
                return Some(format!("scheme {scheme:?}"));
            }
        }
        let squashed: String = url
            .chars()
            .filter(|c| !c.is_whitespace() && !c.is_control())
            .collect::<String>()
            .to_lowercase();
        ["javascript:", "vbscript:", "data:", "livescript:"]
            .iter()
            .find(|bad| squashed.contains(*bad))
            .map(|bad| format!("contains {bad}"))
    }

    #[test]
    fn the_checker_catches_what_it_should() {
        // Guards the guard: each of these must be flagged, so that a silent
        // checker cannot make the corpus test pass.
        for bad in [
            "<script>x</script>",
            "<img src=x onerror=alert(1)>",
            "<a href=\"jav&#x09;ascript:alert(1)\" rel=\"noopener noreferrer nofollow\">x</a>",
            "<a href=\"&#106;avascript:alert(1)\" rel=\"noopener noreferrer nofollow\">x</a>",
            "<a href=\"JaVaScRiPt&colon;alert(1)\" rel=\"noopener noreferrer nofollow\">x</a>",
            "<a href=' data:text/html,x' rel=\"noopener noreferrer nofollow\">x</a>",
            "<a href=vbscript:x rel=\"noopener noreferrer nofollow\">x</a>",
            "<img src=\"&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A;x\">",
            "<p style=\"color:red\">x</p>",
            "<svg></svg>",
            "<math></math>",
            "<iframe></iframe>",
            "<a href=\"https://x.example\">no rel</a>",
            "<!-- comment -->",
            "<p title=\"x\">x</p>",
        ] {
            assert!(!findings(bad).is_empty(), "not flagged: {bad}");
        }
        for good in [
            "<p>&lt;script&gt; is text</p>",
            "<a href=\"https://x.example/?q=a&amp;b\" rel=\"noopener noreferrer nofollow\">x</a>",
            "<a href=\"/relative\" rel=\"noopener noreferrer nofollow\">x</a>",
            "<img src=\"https://x.example/a.png\" alt=\"a < b\">",
            "<td align=\"left\">x</td>",
            "1 < 2",
        ] {
            assert_eq!(findings(good), Vec::<String>::new(), "flagged: {good}");
        }
        assert_eq!(
            decode_entities("&#106;&#x61;v&#0000097&Tab;&colon;&amp;x&bogus;"),
            "java\t:&x&bogus;"
        );
    }

    #[test]
    fn xss_corpus_is_neutralised() {
        let payloads = payloads();
        assert!(payloads.len() >= 40, "only {} payloads", payloads.len());
        let mut failures = Vec::new();
        for payload in &payloads {
            let html = markdown_to_safe_html(payload);
            let found = findings(&html);
            if !found.is_empty() {
                failures.push(format!(
                    "payload: {payload}\noutput:  {html}\nfound:   {found:?}"
                ));
            }
            // The output must also be stable under a second sanitising pass:
            // output that changes when re-parsed is how mutation XSS starts.
            let again = SANITIZER.clean(&html).to_string();
            if again != html {
                failures.push(format!(
                    "payload: {payload}\nunstable: {html}\nthen:     {again}"
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} payloads failed:\n\n{}",
            failures.len(),
            payloads.len(),
            failures.join("\n\n")
        );
    }

    #[test]
    fn corpus_payloads_keep_their_harmless_text() {
        // Sanitising removes markup, not the prose around it.
        assert_eq!(
            markdown_to_safe_html("Hello <script>alert(1)</script>world"),
            "<p>Hello world</p>\n"
        );
        assert_eq!(
            markdown_to_safe_html("[click](javascript:alert(1))"),
            "<p><a rel=\"noopener noreferrer nofollow\">click</a></p>\n"
        );
        assert_eq!(
            markdown_to_safe_html("<a href=\"jav&#x09;ascript:alert(1)\">x</a>"),
            "<p><a rel=\"noopener noreferrer nofollow\">x</a></p>\n"
        );
        assert_eq!(
            markdown_to_safe_html("<img src=x onerror=alert(1)>"),
            "<img src=\"x\">"
        );
        // Foreign content goes with its element.
        assert_eq!(
            markdown_to_safe_html("<svg onload=alert(1)><text>in svg</text></svg>after"),
            "<p>after</p>\n"
        );
    }
}
