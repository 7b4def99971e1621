//! Safe Markdown, shared by the modules that show user-written text as HTML:
//! the blog (article bodies, comments, feed entries) and the chat
//! (messages). One renderer and one allow-list, so that a payload neutralised
//! in an article is neutralised in a message too.
//!
//! Input is CommonMark (plus tables and strikethrough), rendered with
//! pulldown-cmark and then sanitised with an ammonia allow-list.
//!
//! Sanitising happens on the rendered HTML, not on the Markdown, because
//! Markdown may embed raw HTML and produces links and images of its own: only
//! the final HTML shows what a browser would see. The allow-list keeps prose
//! (paragraphs, headings, emphasis, code, quotes, lists, links, images,
//! rules, tables) and drops everything that can run script, load active
//! content, submit data or restyle the page: no `<script>`, `<style>`,
//! `<iframe>`, `<object>`, `<embed>`, `<form>`, `<svg>` or `<math>`, no
//! event-handler or `style` attributes, and only `http`, `https`, `mailto`
//! and relative URLs.
//!
//! The renderer takes no module-specific input: each caller chooses its own
//! length limit for what it stores (at most [`MAX_MARKDOWN_BYTES`]).

mod render;

pub use render::{
    LINK_REL, MAX_MARKDOWN_BYTES, MAX_NESTING, MAX_RAW_HTML_TAGS, markdown_to_safe_html,
};
