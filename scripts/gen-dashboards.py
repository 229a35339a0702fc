#!/usr/bin/env python3
"""Writes the Grafana dashboards of charts/ringmesh/dashboards/ (ringmesh-mesh.json, ringmesh-workload.json).

    python3 scripts/gen-dashboards.py            rewrite the two files
    python3 scripts/gen-dashboards.py --check    exit 1 if a file is not this script's output
                                                 (tests/k8s/test_observability_chart.sh)

The queries use the metric names of docs/observability.md with the default prefix ringmesh_ (proxies scraped as job
ringmesh-proxy, the control plane as job ringmesh-control; the scrape adds the `namespace` and `pod` labels). The
dashboards use Grafana's current JSON model (schemaVersion 39) with three kinds of template variables: the data
source (`${datasource}`, any Prometheus), and `namespace` / `workload` from label_values(). Every panel's query is
run against a real Prometheus by tests/e2e/test_prometheus_dashboards.sh.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "charts", "ringmesh", "dashboards")
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"

# Selectors of the request and TCP metrics.
MESH_IN = 'reporter="destination", destination_workload_namespace=~"$namespace"'
WL_IN = 'reporter="destination", destination_workload_namespace=~"$namespace", destination_workload=~"$workload"'
WL_OUT = 'reporter="source", source_workload_namespace=~"$namespace", source_workload=~"$workload"'
BY_DEST = "destination_workload, destination_workload_namespace"
BY_SRC = "source_workload, source_workload_namespace"


def rate(metric, sel, by=None):
    inner = f"rate({metric}{{{sel}}}[{RATE}])"
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


def success(sel, by=None):
    ok = rate("ringmesh_requests_total", sel + ', response_code!~"5.."', by)
    return f"{ok}\n/\n{rate('ringmesh_requests_total', sel, by)}"


def quantile(q, metric, sel, by):
    series = f"{metric}_bucket{{{sel}}}" if sel else f"{metric}_bucket"
    return f"histogram_quantile({q}, sum by (le, {by}) (rate({series}[{RATE}])))"


def target(expr, legend="", ref="A", table=False):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto", "refId": ref}
    if table:
        t.update({"format": "table", "instant": True, "range": False})
    else:
        t.update({"instant": False, "range": True})
    return t


class Layout:
    """Places panels left to right on Grafana's 24-column grid, rows of panels under row headers."""

    def __init__(self):
        self.panels, self.x, self.y, self.h, self.next_id = [], 0, 0, 0, 1

    def row(self, title):
        self.newline()
        self.panels.append({"collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                            "id": self.next_id, "panels": [], "title": title, "type": "row"})
        self.next_id += 1
        self.y += 1

    def newline(self):
        if self.x:
            self.x, self.y, self.h = 0, self.y + self.h, 0

    def add(self, panel, w, h):
        if self.x + w > 24:
            self.newline()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        panel["id"] = self.next_id
        self.next_id += 1
        self.panels.append(panel)
        self.x += w
        self.h = max(self.h, h)


def timeseries(title, desc, targets, unit, stack=False):
    return {
        "type": "timeseries", "title": title, "description": desc, "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit, "min": 0, "custom": {
            "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never", "spanNulls": True,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"}}}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                               "calcs": ["mean", "lastNotNull", "max"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
        "targets": targets,
    }


def stat(title, desc, targets, unit, thresholds=None, decimals=None):
    defaults = {"unit": unit, "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": thresholds or [{"color": "green", "value": None}]}}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat", "title": title, "description": desc, "datasource": DS,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "value", "graphMode": "area", "textMode": "auto", "orientation": "auto",
                    "justifyMode": "auto"},
        "targets": targets,
    }


def table(title, desc, targets, unit, rename):
    return {
        "type": "table", "title": title, "description": desc, "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"showHeader": True, "sortBy": [{"desc": True, "displayName": "Value"}]},
        "transformations": [{"id": "organize", "options": {"excludeByName": {"Time": True},
                                                           "renameByName": rename}}],
        "targets": targets,
    }


def var_datasource():
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1,
            "regex": "", "skipUrlSync": False}


def var_query(name, label, query):
    return {"name": name, "label": label, "type": "query", "datasource": DS, "definition": query,
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "current": {}, "hide": 0, "includeAll": True, "allValue": ".*", "multi": True, "options": [],
            "refresh": 2, "regex": "", "skipUrlSync": False, "sort": 1}


def dashboard(uid, title, desc, variables, layout):
    return {
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": desc, "editable": True, "fiscalYearStartMonth": 0, "graphTooltip": 1, "links": [
            {"asDropdown": False, "icon": "dashboard", "includeVars": True, "keepTime": True, "tags": ["ringmesh"],
             "targetBlank": False, "title": "ringmesh", "type": "dashboards"}],
        "panels": layout.panels, "refresh": "30s", "schemaVersion": 39, "tags": ["ringmesh", "service-mesh"],
        "templating": {"list": variables}, "time": {"from": "now-1h", "to": "now"}, "timepicker": {},
        "timezone": "browser", "title": title, "uid": uid, "version": 1, "weekStart": "",
    }


RED = [{"color": "red", "value": None}, {"color": "orange", "value": 0.95}, {"color": "green", "value": 0.99}]
EXPIRY = [{"color": "red", "value": None}, {"color": "orange", "value": 86400}, {"color": "green", "value": 604800}]


def mesh():
    lay = Layout()
    lay.row("Mesh")
    lay.add(stat("Requests", "Requests per second received by the mesh's workloads (reporter=\"destination\").",
                 [target(rate("ringmesh_requests_total", MESH_IN))], "reqps"), 6, 4)
    lay.add(stat("Success rate", "Share of those requests not answered with a 5xx.",
                 [target(success(MESH_IN))], "percentunit", RED, 2), 6, 4)
    lay.add(stat("Denied requests", "Requests denied by authorization policies (or the default action) per second.",
                 [target('sum(rate(ringmesh_proxy_authz_decisions_total{namespace=~"$namespace", decision="deny"}'
                         f"[{RATE}]))")], "reqps"), 6, 4)
    lay.add(stat("Connected sidecars", "Sidecars with a discovery stream open, over every control plane replica.",
                 [target("sum(ringmesh_control_connected_proxies)")], "short"), 6, 4)

    lay.row("Workloads (inbound, reporter=\"destination\")")
    lay.add(timeseries("Request rate by workload", "Requests per second each workload received.",
                       [target(rate("ringmesh_requests_total", MESH_IN, BY_DEST),
                               "{{destination_workload}}.{{destination_workload_namespace}}")], "reqps"), 12, 8)
    lay.add(timeseries("Success rate by workload", "Share of each workload's requests not answered with a 5xx.",
                       [target(success(MESH_IN, BY_DEST),
                               "{{destination_workload}}.{{destination_workload_namespace}}")], "percentunit"),
            12, 8)
    lay.add(timeseries("P50 latency by workload", "Median request duration at the workload's proxy.",
                       [target(quantile(0.5, "ringmesh_request_duration_milliseconds", MESH_IN, BY_DEST),
                               "{{destination_workload}}.{{destination_workload_namespace}}")], "ms"), 12, 8)
    lay.add(timeseries("P99 latency by workload", "99th percentile of the request duration at the workload's proxy.",
                       [target(quantile(0.99, "ringmesh_request_duration_milliseconds", MESH_IN, BY_DEST),
                               "{{destination_workload}}.{{destination_workload_namespace}}")], "ms"), 12, 8)

    lay.row("Authorization")
    lay.add(timeseries("Denied requests by policy and rule",
                       "Denials per second by the policy (namespace/name) and rule that made them; an empty policy "
                       "is the default action or no ALLOW rule matching.",
                       [target('sum by (policy, rule) (rate(ringmesh_proxy_authz_decisions_total{namespace=~'
                               f'"$namespace", decision="deny"}}[{RATE}]))', "{{policy}} rule {{rule}}")], "reqps",
                       stack=True), 12, 8)
    lay.add(timeseries("Dry-run: would deny, by policy",
                       "Requests a dry-run policy would have denied (decision=\"would-deny\"): what enforcing it "
                       "would break.",
                       [target('sum by (policy) (rate(ringmesh_proxy_authz_decisions_total{namespace=~"$namespace", '
                               f'decision="would-deny"}}[{RATE}]))', "{{policy}}")], "reqps", stack=True), 12, 8)

    lay.row("Certificates")
    lay.add(table("SVIDs expiring first", "The ten proxies whose SVID expires first: time left.",
                  [target('bottomk(10, min by (namespace, pod) (ringmesh_proxy_svid_expiry_timestamp_seconds'
                          '{namespace=~"$namespace"} > 0) - time())', table=True)], "s",
                  {"namespace": "Namespace", "pod": "Pod", "Value": "Time left"}), 12, 8)
    lay.add(stat("Mesh CA expires in", "Time left before the mesh CA certificate expires (the soonest replica's).",
                 [target("min(ringmesh_control_ca_expiry_timestamp_seconds) - time()")], "s", EXPIRY), 6, 8)
    lay.add(stat("Webhook certificate expires in",
                 "Time left before the injection webhook's serving certificate expires.",
                 [target("min(ringmesh_control_webhook_cert_expiry_timestamp_seconds) - time()")], "s", EXPIRY),
            6, 8)

    lay.row("Control plane")
    lay.add(timeseries("Connected sidecars by replica", "Discovery streams open on each control plane replica.",
                       [target("sum by (pod) (ringmesh_control_connected_proxies)", "{{pod}}"),
                        target('sum(1 - ringmesh_proxy_control_plane_connected{namespace=~"$namespace"})',
                               "disconnected (proxies' view)", "B")], "short"), 12, 8)
    lay.add(timeseries("Push-to-ACK latency", "Time from a push to the sidecar's ACK, by resource type.",
                       [target(quantile(0.5, "ringmesh_control_push_ack_duration_seconds", "", "type"),
                               "p50 {{type}}"),
                        target(quantile(0.99, "ringmesh_control_push_ack_duration_seconds", "", "type"),
                               "p99 {{type}}", "B")], "s"), 12, 8)
    lay.add(timeseries("Pushes by type", "Resources pushed to sidecars per second.",
                       [target(f"sum by (type) (rate(ringmesh_control_pushes_total[{RATE}]))", "{{type}}")],
                       "ops"), 12, 8)
    lay.add(timeseries("NACKs by type", "Pushes sidecars rejected per second (see config_rejected in their logs).",
                       [target(f"sum by (type) (rate(ringmesh_control_nacks_total[{RATE}]))", "{{type}}")],
                       "ops"), 12, 8)
    return dashboard(
        "ringmesh-mesh", "ringmesh / Mesh",
        "The whole mesh: traffic per workload, authorization denials, certificates and the control plane.",
        [var_datasource(), var_query("namespace", "Namespace",
                                     'label_values(ringmesh_requests_total{reporter="destination"}, '
                                     "destination_workload_namespace)")], lay)


def workload():
    lay = Layout()
    for side, sel, peer_by, peer, peer_title, reporter in (
            ("Inbound", WL_IN, BY_SRC, "source", "Top callers", "destination"),
            ("Outbound", WL_OUT, BY_DEST, "destination", "Top callees", "source")):
        lay.row(f'{side} (reporter="{reporter}")')
        lay.add(timeseries(f"{side} request rate by response code",
                           f"{side} requests per second, by response code.",
                           [target(rate("ringmesh_requests_total", sel, "response_code"), "{{response_code}}")],
                           "reqps", stack=True), 8, 8)
        lay.add(timeseries(f"{side} success rate", f"Share of {side.lower()} requests not answered with a 5xx.",
                           [target(success(sel), "success")], "percentunit"), 8, 8)
        lay.add(timeseries(f"{side} latency", f"Percentiles of the {side.lower()} request duration.",
                           [target(quantile(q, "ringmesh_request_duration_milliseconds", sel, "reporter"),
                                   f"p{int(q * 100)}", ref)
                            for q, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))], "ms"), 8, 8)
        lay.add(table(f"{peer_title}", f"The ten {peer} workloads with the most {side.lower()} requests per "
                      "second.",
                      [target(f"topk(10, {rate('ringmesh_requests_total', sel, peer_by)})", table=True)], "reqps",
                      {f"{peer}_workload": "Workload", f"{peer}_workload_namespace": "Namespace",
                       "Value": "Requests/s"}), 8, 8)
        lay.add(timeseries(f"{side} TCP bytes", f"Bytes per second of {side.lower()} TCP connections.",
                           [target(rate("ringmesh_tcp_received_bytes_total", sel), "received"),
                            target(rate("ringmesh_tcp_sent_bytes_total", sel), "sent", "B")], "Bps"), 8, 8)
        lay.add(timeseries(f"{side} TCP connections", f"{side} TCP connections opened and closed per second.",
                           [target(rate("ringmesh_tcp_connections_opened_total", sel), "opened"),
                            target(rate("ringmesh_tcp_connections_closed_total", sel), "closed", "B")], "cps"),
                8, 8)
    return dashboard(
        "ringmesh-workload", "ringmesh / Workload",
        "One workload: its inbound and outbound requests, latency, TCP traffic, and who it talks to.",
        [var_datasource(),
         var_query("namespace", "Namespace",
                   'label_values(ringmesh_requests_total{reporter="destination"}, destination_workload_namespace)'),
         var_query("workload", "Workload",
                   'label_values(ringmesh_requests_total{reporter="destination", '
                   'destination_workload_namespace=~"$namespace"}, destination_workload)')], lay)


def main():
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] and not check:
        sys.stderr.write(__doc__)
        return 2
    bad = 0
    for name, dash in (("ringmesh-mesh.json", mesh()), ("ringmesh-workload.json", workload())):
        path = os.path.join(OUT, name)
        text = json.dumps(dash, indent=2) + "\n"
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    same = f.read() == text
            except OSError:
                same = False
            if not same:
                sys.stderr.write(f"gen-dashboards.py: {path} is not this script's output: run "
                                 "python3 scripts/gen-dashboards.py\n")
                bad = 1
        else:
            os.makedirs(OUT, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    return bad


if __name__ == "__main__":
    sys.exit(main())
