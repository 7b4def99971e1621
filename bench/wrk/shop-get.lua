-- Catalog-read scenario of bench/shop.sh: GET BENCH_PATH (default
-- /api/shop/products), anonymous, as fast as the connections allow; the
-- same script reads the blog's /api/articles for the comparison.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local common = require("common")

setup = common.setup
response = common.response
done = common.done

local path = os.getenv("BENCH_PATH") or "/api/shop/products"

function request()
   return wrk.format("GET", path, { ["Accept"] = "application/json" })
end
