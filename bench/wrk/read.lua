-- Cheap-read probe: GET a cheap endpoint at a steady, low rate, to measure
-- its latency without the probe itself loading the machine.
--
-- Environment (set by bench/run.sh):
--   BENCH_READ_PATH      path to read (default /.well-known/jwks.json)
--   BENCH_READ_DELAY_MS  pause of each connection between requests
--                        (default 10: at most ~100 req/s per connection)
--
-- wrk measures latency from sending a request to its response, so the pause
-- is not counted in it.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local common = require("common")

local path = os.getenv("BENCH_READ_PATH") or "/.well-known/jwks.json"
local pause = tonumber(os.getenv("BENCH_READ_DELAY_MS") or "10")

setup = common.setup
response = common.response
done = common.done

function request()
   return wrk.format("GET", path)
end

function delay()
   return pause
end
