-- tests/integration/lib/wrk_mix.lua — wrk request mix for hostile.sh:
-- GETs rotating over the cheap read endpoints (404s included on purpose).
local paths = {"/healthz", "/jobs", "/jobs/1", "/metrics", "/datasets",
               "/jobs/1/metrics", "/jobs?status=queued", "/nope"}
local i = 0
request = function()
	i = i + 1
	return wrk.format("GET", paths[(i % #paths) + 1])
end
