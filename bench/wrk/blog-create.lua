-- Create-article scenario of bench/blog.sh: POST /api/articles as the
-- benchmark's writers, in rotation, each request with a title of its own
-- (so a slug of its own: no request pays for a taken slug).
--
-- Environment (set by bench/blog.sh):
--   BENCH_TOKENS_FILE  the writers' access tokens (JWTs), one a line
--   BENCH_RUN_ID       makes the titles unique across runs
--   BENCH_THREADS      wrk's -t (default 2)
--
-- The article: a title, a one-line description, a Markdown body of about
-- 2 KB (headings, paragraphs, a list, a code block, links: what the seeded
-- articles hold; the server renders it to HTML for the response) and two
-- tags that the seeded data does not use.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local common = require("common")

local threads = tonumber(os.getenv("BENCH_THREADS") or "2")
local run_id = os.getenv("BENCH_RUN_ID") or "run"

setup = common.setup
response = common.response
done = common.done

local paragraph = "Measure before you change anything: the server, the load generator and the "
   .. "database share two cores, so every **millisecond** of CPU shows. Read the "
   .. "[plans](https://example.com/plans) of the queries, then `EXPLAIN` them again after the change."
local body_lines = {
   "## Why this article exists", "", paragraph, "", paragraph, "",
   "- first, a list item with `code`", "- second, with *emphasis*", "- third, with a [link](https://example.com/x)", "",
   "```rust", "fn main() {", "    println!(\\\"hello\\\");", "}", "```", "",
   "### Details", "", paragraph, "", paragraph, "", paragraph, "",
   "> A quotation, to round it off.", "", paragraph, "", paragraph,
}
local body = table.concat(body_lines, "\\n")

local tokens = {}
local counter = 0

function init(args)
   for line in io.lines(os.getenv("BENCH_TOKENS_FILE")) do
      if line ~= "" then table.insert(tokens, line) end
   end
   assert(#tokens > 0, "no tokens")
end

function request()
   counter = counter + 1
   local t = thread_index or 0
   local token = tokens[(counter * threads + t) % #tokens + 1]
   local payload = string.format(
      '{"article":{"title":"Load test %s %d %d","description":"An article written by the benchmark.",'
         .. '"body":"%s","tagList":["bench-write","load-test"]}}',
      run_id, t, counter, body)
   return wrk.format("POST", "/api/articles", {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Token " .. token,
   }, payload)
end
