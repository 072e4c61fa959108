"""What running the hub needs around the core: settings, logs (and what they mask), metrics,
Redis across processes (cluster), rate limits, request limits, proxies, the outbound network
guard, backups, files. It imports no feature and no HTTP route."""
