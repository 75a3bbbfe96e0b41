#!/usr/bin/python3
"""Scrapes a Prometheus text endpoint over HTTP and parses it with prometheus_client's parser
(Debian's python3-prometheus-client), the parser a Prometheus toolchain trusts. Prints one
line per sample, `name{label="value",...} value`, labels sorted, so a shell test can grep
exact figures. Exits 1, saying why, when the endpoint does not answer or its text does not
parse, or when a family's type is not the one its name promises (a _total is a counter).

    scrape_metrics.py HOST:PORT
"""
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    address = sys.argv[1]
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
            content_type = response.headers.get("Content-Type", "")
            text = response.read().decode("utf-8")
    except OSError as error:
        print(f"scrape_metrics: no answer from {address}: {error}", file=sys.stderr)
        return 1
    if not content_type.startswith("text/plain"):
        print(f"scrape_metrics: Content-Type is {content_type!r}, not text/plain", file=sys.stderr)
        return 1
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as error:
        print(f"scrape_metrics: the text does not parse: {error}\n{text}", file=sys.stderr)
        return 1
    for family in families:
        # The parser strips _total from a counter's family name; a _total sample of another
        # type would be a naming mistake.
        for sample in family.samples:
            if sample.name.endswith("_total") and family.type != "counter":
                print(f"scrape_metrics: {sample.name} is a {family.type}, not a counter", file=sys.stderr)
                return 1
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            print(f"{sample.name}{{{labels}}} {sample.value:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
