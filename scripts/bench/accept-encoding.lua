-- wrk script for scripts/bench.sh, workload css-edge-z: the hashed CSS asked
-- for as a browser does, accepting gzip and brotli. Each proxy answers with
-- what it has: mosparo-lb its edge entry's stored brotli form, nginx the
-- pre-compressed file (brotli_static when the module is installed, else
-- gzip_static), haproxy the node's answer compressed per request (gzip).
wrk.headers["Accept-Encoding"] = "gzip, br"
