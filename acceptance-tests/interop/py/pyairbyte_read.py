"""Run source-klaviyo through PyAirbyte the way its README tells users to, and report what PyAirbyte saw.

Usage: python pyairbyte_read.py CONFIG_JSON EXECUTABLE
Runs check(), get_available_streams(), select_all_streams() and read() into the default cache (DuckDB under
./.cache), then prints one line `RESULT {json}` with the stream list, the cache class and file, and the row count
of every stream as PyAirbyte stored it.
"""

import json
import sys

import airbyte as ab


def main(config_path, executable):
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    source = ab.get_source("source-klaviyo", config=config, local_executable=executable)
    source.check()
    streams = source.get_available_streams()
    source.select_all_streams()
    result = source.read()
    counts = {name: len(dataset) for name, dataset in result.streams.items()}
    cache = result.cache
    print("RESULT " + json.dumps({
        "streams": streams,
        "counts": counts,
        "cache": type(cache).__name__,
        "db_path": str(getattr(cache, "db_path", "")),
        "processed_records": result.processed_records,
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
