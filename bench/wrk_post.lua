-- POST a chat request; BENCH_STREAM=1 asks for a stream, BENCH_KEY is the bearer key.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "none")
local stream = os.getenv("BENCH_STREAM") == "1"
wrk.body = '{"model": "' .. (os.getenv("BENCH_MODEL") or "bench") ..
  '", "messages": [{"role": "user", "content": "ping"}]' ..
  (stream and ', "stream": true' or '') .. '}'
