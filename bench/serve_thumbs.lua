-- wrk script for shardset serve's thumbnails, and for the same images from a
-- peer web server (bench/serve_bench.py, tests/test_serve.py). Requests the
-- paths of a list in turn and checks every answer: a 200 carrying an ETag
-- the server gave one of the paths when idle, with that path's length.
--   THUMBS_LIST   file of "PATH ETAG LENGTH" lines
local expected, paths = {}, {}
for line in io.lines(os.getenv("THUMBS_LIST")) do
  local path, etag, len = line:match("^(%S+) (%S+) (%d+)$")
  expected[etag] = tonumber(len)
  paths[#paths + 1] = path
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end

-- Globals, not locals: done() reads each thread's through thread:get.
i, checked, wrong = 0, 0, 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
response = function(status, headers, body)
  checked = checked + 1
  if status ~= 200 or expected[headers["ETag"]] ~= #body then wrong = wrong + 1 end
end
done = function(summary, latency, requests)
  local c, w = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("checked")
    w = w + t:get("wrong")
  end
  io.write(string.format("checked %d answers, %d wrong\n", c, w))
  io.write(string.format("latency_us p50 %d p90 %d p99 %d max %d\n", latency:percentile(50),
                         latency:percentile(90), latency:percentile(99), latency.max))
  io.write(string.format("requests %d errors %d seconds %.3f\n", summary.requests,
                         summary.errors.connect + summary.errors.read + summary.errors.write +
                         summary.errors.status + summary.errors.timeout,
                         summary.duration / 1e6))
end
