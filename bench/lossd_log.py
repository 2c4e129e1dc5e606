"""Reading lossd's JSON log in the benchmarks: the server-side time of each request."""

import json


def server_ms(log_path, request_ids):
    """The access-log `ms` of each request id, from lossd's JSON log."""
    found = {}
    if not log_path:
        return found
    wanted = set(request_ids)
    with open(log_path) as f:
        for line in f:
            if '"request_id"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("request_id") in wanted and "ms" in entry:
                found[entry["request_id"]] = float(entry["ms"])
    return found
