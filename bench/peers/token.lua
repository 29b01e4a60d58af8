-- wrk: POST the token endpoint with client_credentials, client_secret_basic from the
-- environment (BENCH_BASIC = base64(id:secret)), as a client does.
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=" .. (os.getenv("BENCH_SCOPE") or "")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
