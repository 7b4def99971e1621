-- GET scenarios of bench/blog.sh: one path, or paths rotating from a file;
-- anonymous, or with access tokens rotating from a file.
--
-- Environment (set by bench/blog.sh):
--   BENCH_PATH         the path to GET (when BENCH_PATHS_FILE is unset)
--   BENCH_PATHS_FILE   a file of paths, one a line
--   BENCH_TOKENS_FILE  a file of access tokens (JWTs), one a line; sent as
--                      `Authorization: Token <jwt>` (the RealWorld scheme)
--   BENCH_THREADS      wrk's -t (default 2)
--
-- Every request is formatted once, in init(); request() only hands the
-- next one out, so the load generator's work per request is the same in
-- every scenario (the ceiling included). Path n goes with token n modulo
-- the number of tokens; each wrk thread starts at a different point of the
-- list, so that concurrent requests are for different articles and users.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local common = require("common")

local threads = tonumber(os.getenv("BENCH_THREADS") or "2")

setup = common.setup
response = common.response
done = common.done

local function lines(path)
   local list = {}
   for line in io.lines(path) do
      if line ~= "" then table.insert(list, line) end
   end
   assert(#list > 0, "empty file " .. path)
   return list
end

local requests = {}
local next_request = 0

function init(args)
   local paths_file = os.getenv("BENCH_PATHS_FILE")
   local tokens_file = os.getenv("BENCH_TOKENS_FILE")
   local paths = paths_file and lines(paths_file) or { os.getenv("BENCH_PATH") or "/" }
   local tokens = tokens_file and lines(tokens_file) or nil
   local n = #paths
   if tokens and #tokens > n then n = #tokens end
   for i = 1, n do
      local headers = nil
      if tokens then
         headers = { ["Authorization"] = "Token " .. tokens[(i - 1) % #tokens + 1] }
      end
      requests[i] = wrk.format("GET", paths[(i - 1) % #paths + 1], headers)
   end
   next_request = math.floor((thread_index or 0) * n / threads) % n
end

function request()
   next_request = next_request % #requests + 1
   return requests[next_request]
end
