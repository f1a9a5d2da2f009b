-- wrk script for scripts/bench.sh, workload css-edge-z with BENCH_PIPELINE=n
-- (n > 1): the request of accept-encoding.lua, n at a time on each
-- connection (HTTP/1.1 pipelining), so that wrk's cost per answer falls n-fold
-- and a proxy that costs less per answer than wrk is no longer held at wrk's
-- ceiling. wrk still reads and counts every answer; all proxies get the same.
-- The depth is the script's first argument (wrk ... -- n).
wrk.headers["Accept-Encoding"] = "gzip, br"
local batch
init = function(args)
	local depth = tonumber(args[1]) or 1
	local r = {}
	for i = 1, depth do
		r[i] = wrk.format()
	end
	batch = table.concat(r)
end
request = function()
	return batch
end
