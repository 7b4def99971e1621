-- POST scenarios of bench/blog.sh that read (GraphQL queries): one JSON
-- body, the same for every request, with access tokens rotating from a file.
--
-- Environment (set by bench/blog.sh):
--   BENCH_PATH         the path to POST to (e.g. /graphql)
--   BENCH_BODY_FILE    a file holding the request body (JSON)
--   BENCH_TOKENS_FILE  a file of access tokens (JWTs), one a line; sent as
--                      `Authorization: Token <jwt>`; anonymous when unset
--   BENCH_THREADS      wrk's -t (default 2)
--
-- As in blog-get.lua, every request is formatted once, in init(), and each
-- wrk thread starts at a different point of the token list.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local common = require("common")

local threads = tonumber(os.getenv("BENCH_THREADS") or "2")

setup = common.setup
response = common.response
done = common.done

local requests = {}
local next_request = 0

function init(args)
   local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
   local body = file:read("*a")
   file:close()
   local tokens = {}
   local tokens_file = os.getenv("BENCH_TOKENS_FILE")
   if tokens_file then
      for line in io.lines(tokens_file) do
         if line ~= "" then table.insert(tokens, line) end
      end
   end
   local path = os.getenv("BENCH_PATH") or "/graphql"
   local n = math.max(#tokens, 1)
   for i = 1, n do
      local headers = { ["Content-Type"] = "application/json" }
      if #tokens > 0 then headers["Authorization"] = "Token " .. tokens[i] end
      requests[i] = wrk.format("POST", path, headers, body)
   end
   next_request = math.floor((thread_index or 0) * n / threads) % n
end

function request()
   next_request = next_request % #requests + 1
   return requests[next_request]
end
