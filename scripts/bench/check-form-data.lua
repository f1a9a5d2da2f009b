-- wrk script for scripts/bench.sh: POST /api/v1/frontend/check-form-data with a
-- 524-byte form body as mosparo's frontend JS sends it. The submit token is
-- unknown, so every node answers 200 {"error":true,"errorMessage":"Submit token
-- not valid."} after parsing the form: the same work behind every proxy.
wrk.method = "POST"
wrk.path = "/api/v1/frontend/check-form-data"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Origin"] = "http://127.0.0.1"
wrk.body = "publicKey=PUBLICKEY_example&submitToken=bench0000000000000000000000000000000000000000&formData=%7B%22fields%22%3A%5B%7B%22name%22%3A%22name%22%2C%22value%22%3A%22Jane%20Example%22%7D%2C%7B%22name%22%3A%22email%22%2C%22value%22%3A%22jane%40example.com%22%7D%2C%7B%22name%22%3A%22subject%22%2C%22value%22%3A%22Question%22%7D%2C%7B%22name%22%3A%22message%22%2C%22value%22%3A%22Hello%2C%20I%20would%20like%20to%20know%20more%20about%20your%20offer.%22%7D%2C%7B%22name%22%3A%22_mosparo_honeypot%22%2C%22value%22%3A%22%22%7D%5D%7D"
