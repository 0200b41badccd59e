-- wrk script of the isrproxy benchmark harness (bench/run.sh).
--
-- BENCH_PAGES=N (N > 0): each request asks for a random page among
-- /page/BENCH_FIRST … /page/BENCH_FIRST+N-1 (uniform); otherwise wrk's own
-- URL path is used (one hot page). BENCH_PACE_MS=M (M > 0): each
-- connection waits M ms after an answer before its next request. At the
-- end, one JSON line with requests/s, errors and latency percentiles
-- (microseconds).

local pages = tonumber(os.getenv("BENCH_PAGES") or "") or 0
local pace = tonumber(os.getenv("BENCH_PACE_MS") or "") or 0
local first = tonumber(os.getenv("BENCH_FIRST") or "") or 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  -- Let the generator move off its first values.
  for _ = 1, 10 do math.random() end
end

if pages > 0 then
  function request()
    return wrk.format(nil, "/page/" .. (first + math.random(0, pages - 1)))
  end
end

if pace > 0 then
  -- Each connection waits this long after an answer before its next
  -- request: the same offered rate for every system.
  function delay()
    return pace
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"duration_s":%.3f,"bytes":%d,"rps":%.1f,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"non2xx":%d,' ..
    '"lat_mean_us":%.1f,"lat_stdev_us":%.1f,"lat_max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, secs, summary.bytes, summary.requests / secs,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
