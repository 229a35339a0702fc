#!/usr/bin/env python3
"""The made-up proxies of the `ringmeshctl stat` tests (tests/e2e/test_ringmeshctl_stat.sh), as fixtures for
tests/e2e/tools/metrics_fixture.py: each series with its value at the first scrape and its growth per scrape.

  make_fixtures.py DIR      writes DIR/proxy-orders.json and DIR/proxy-istio.json

proxy-orders (ringmesh_ names), per scrape interval, for reporter="destination":
  shop/orders  HTTP 200 x100 (mTLS), 503 x10 (mTLS), 403 x10 (plaintext), 201 x4 (plaintext, a series new after
               the first scrape); gRPC OK x20 and PERMISSION_DENIED x10 (mTLS, HTTP 200): 154 requests,
               77 of them up to 5 ms and 77 between 10 and 25 ms; TCP connections: 10 + 5k opened, 4 + 4k closed
  web/front"end\\v2  HTTP 200 x2 (mTLS), no duration histogram
and series that must not count: the source reporter's, Istio-named copies, the proxy's own metrics.
proxy-istio (istio_ names only): shop/orders HTTP 200 x46 (mTLS), all up to 5 ms.
"""
import json
import os
import sys

# Istio's default request duration buckets (ms)
BUCKETS = ["0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "30000",
           "60000", "300000", "600000", "1800000", "3600000", "+Inf"]
D = "destination"


def labels(reporter, ns, wl, proto, code=None, grpc=None, sec="mutual_tls"):
    lab = {"reporter": reporter,
           "source_workload": "frontend", "source_workload_namespace": "web",
           "source_principal": "spiffe://cluster.local/ns/web/sa/frontend", "source_app": "frontend",
           "source_version": "v1",
           "destination_workload": wl, "destination_workload_namespace": ns,
           "destination_principal": f"spiffe://cluster.local/ns/{ns}/sa/{wl}", "destination_app": wl,
           "destination_version": "v1", "destination_service": f"{wl}.{ns}.svc.cluster.local",
           "destination_service_name": wl, "destination_service_namespace": ns, "request_protocol": proto}
    if code is not None:
        lab["response_code"] = code
        lab["grpc_response_status"] = grpc if grpc is not None else ""
    lab["response_flags"] = "-"
    lab["connection_security_policy"] = sec
    return lab


def page(prefix, requests, histogram, tcp=None, extra=()):
    req, dur = prefix + "requests_total", prefix + "request_duration_milliseconds"
    opened, closed = prefix + "tcp_connections_opened_total", prefix + "tcp_connections_closed_total"
    series = [{"name": req, "labels": lab, "first": first, "delta": delta, "new": new}
              for lab, first, delta, new in requests]
    lab, counts = histogram
    assert len(counts) == len(BUCKETS)
    for le, (first, delta) in zip(BUCKETS, counts):
        series.append({"name": dur + "_bucket", "family": dur, "labels": {**lab, "le": le}, "first": first,
                       "delta": delta})
    series.append({"name": dur + "_sum", "family": dur, "labels": lab, "first": counts[-1][0] * 7.5,
                   "delta": counts[-1][1] * 7.5})
    series.append({"name": dur + "_count", "family": dur, "labels": lab, "first": counts[-1][0],
                   "delta": counts[-1][1]})
    if tcp:
        lab, o, c = tcp
        series.append({"name": opened, "labels": lab, "first": o[0], "delta": o[1]})
        series.append({"name": closed, "labels": lab, "first": c[0], "delta": c[1]})
    series.extend(extra)
    return {"series": series,
            "help": {req: "Requests, as Istio counts them.", dur: "Request duration in ms.",
                     opened: "TCP connections opened.", closed: "TCP connections closed."},
            "type": {req: "counter", dur: "histogram", opened: "counter", closed: "counter"}}


def main():
    out = sys.argv[1]
    orders = page("ringmesh_", [
        (labels(D, "shop", "orders", "http", "200"), 100, 100, False),
        (labels(D, "shop", "orders", "http", "503"), 10, 10, False),
        (labels(D, "shop", "orders", "http", "403", sec="none"), 5, 10, False),
        (labels(D, "shop", "orders", "grpc", "200", "0"), 50, 20, False),
        (labels(D, "shop", "orders", "grpc", "200", "7"), 2, 10, False),
        (labels(D, "shop", "orders", "http", "201", sec="none"), 0, 4, True),
        (labels("source", "shop", "orders", "http", "200"), 1000, 500, False),
        (labels(D, "web", 'front"end\\v2', "http", "200"), 1, 2, False),
    ], (labels(D, "shop", "orders", "http"), [(0, 0), (0, 0), (40, 77), (40, 77)] + [(60, 154)] * 16),
        tcp=(labels(D, "shop", "orders", "tcp"), (10, 5), (4, 4)),
        extra=[
            {"name": "istio_requests_total", "labels": labels(D, "shop", "orders", "http", "200"), "first": 7,
             "delta": 9999},
            {"name": "ringmesh_proxy_authz_decisions_total",
             "labels": {"decision": "deny", "policy": 'shop/no "admin"\\\n', "rule": "0"}, "first": 5, "delta": 10},
    ])
    istio = page("istio_", [(labels(D, "shop", "orders", "http", "200"), 0, 46, False)],
                 (labels(D, "shop", "orders", "http"), [(0, 0), (0, 0)] + [(0, 46)] * 18))
    for name, doc in (("proxy-orders.json", orders), ("proxy-istio.json", istio)):
        with open(os.path.join(out, name), "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
