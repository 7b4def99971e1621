-- Shared by the wrk scripts of bench/: tallies response statuses in every
-- wrk thread and prints one machine-readable summary line at the end:
--
--   BENCH requests=… duration_us=… rps=… p50_us=… p90_us=… p99_us=… max_us=…
--         non2xx=… socket_errors=… timeouts=… statuses=200:1234,429:5
--
-- Latency percentiles are wrk's own (per request, send to response).

local common = {}

local threads = {}

-- Main state: remember every thread so that done() can read its tally.
function common.setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

-- Thread state: count statuses.
statuses = {}

function common.response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function common.done(summary, latency, requests)
   local totals = {}
   for _, thread in ipairs(threads) do
      local tally = thread:get("statuses")
      if tally then
         for status, count in pairs(tally) do
            totals[status] = (totals[status] or 0) + count
         end
      end
   end
   local keys = {}
   for status in pairs(totals) do table.insert(keys, status) end
   table.sort(keys)
   local parts, non2xx = {}, 0
   for _, status in ipairs(keys) do
      table.insert(parts, status .. ":" .. totals[status])
      if status < 200 or status > 299 then non2xx = non2xx + totals[status] end
   end
   local e = summary.errors
   local seconds = summary.duration / 1e6
   io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.2f p50_us=%d p90_us=%d p99_us=%d max_us=%d "
         .. "non2xx=%d socket_errors=%d timeouts=%d statuses=%s\n",
      summary.requests, summary.duration, summary.requests / seconds,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      non2xx, e.connect + e.read + e.write, e.timeout,
      (#parts > 0) and table.concat(parts, ",") or "none"))
end

return common
