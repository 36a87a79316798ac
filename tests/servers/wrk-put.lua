-- wrk-put.lua -- PUT bodies of WRK_BODY_SIZE bytes (default 1024) to distinct
-- paths under WRK_PREFIX (default /bench/), e.g. against nginx.sh:
--   WRK_BODY_SIZE=1024 wrk -t2 -c32 -d5s -s tests/servers/wrk-put.lua http://127.0.0.1:PORT
-- Use WRK_PREFIX=/null/ for HTTP only (nginx discards the body).
local size = tonumber(os.getenv("WRK_BODY_SIZE") or "1024")
local prefix = os.getenv("WRK_PREFIX") or "/bench/"
local body = string.rep("x", size)
local n = 0
id = 0  -- set per thread by setup()
local ids = 0

function setup(thread)
	ids = ids + 1
	thread:set("id", ids)
end

function request()
	n = n + 1
	-- a bounded set of keys per thread, so that a long run does not fill tmpfs
	return wrk.format("PUT", prefix .. id .. "/" .. (n % 100000), nil, body)
end
