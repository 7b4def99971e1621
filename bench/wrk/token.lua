-- Sign-in storm: POST /api/auth/token as the seeded users, in rotation.
--
-- Environment (set by bench/run.sh):
--   BENCH_USERS         number of seeded users (default 200)
--   BENCH_EMAIL_PREFIX  users are <prefix><n>@example.com, n = 1..BENCH_USERS
--   BENCH_PASSWORD      their password
--   BENCH_THREADS       wrk's -t (default 2)
--
-- Each wrk thread starts at a different point of the list, so concurrent
-- requests are for different accounts (the per-account limits and the
-- lockout counter never see two sign-ins of one account at once).

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local common = require("common")

local users = tonumber(os.getenv("BENCH_USERS") or "200")
local prefix = os.getenv("BENCH_EMAIL_PREFIX") or "bench-user-"
local password = os.getenv("BENCH_PASSWORD") or "correct horse battery staple"
local threads = tonumber(os.getenv("BENCH_THREADS") or "2")

local next_user = 0

setup = common.setup
response = common.response
done = common.done

function init(args)
   -- thread_index was set by setup(); spread the threads over the list.
   next_user = math.floor((thread_index or 0) * users / threads) % users
end

function request()
   next_user = next_user % users + 1
   local body = string.format('{"email":"%s%d@example.com","password":"%s"}',
                              prefix, next_user, password)
   return wrk.format("POST", "/api/auth/token",
                     { ["Content-Type"] = "application/json" }, body)
end
