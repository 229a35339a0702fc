#!/usr/bin/python3
"""Drives the stand-in API server with Debian's python3-kubernetes, the way a controller does, and checks what the
client sees. Run by tests/k8s/test_apiserver_python.sh:

    check_python_client.py KUBECONFIG REQUEST_LOG

1. An informer loop (list, then watch.Watch().stream() from the list's resourceVersion with allowWatchBookmarks;
   relist on 410) sees ADDED, MODIFIED and DELETED for pods another client creates, labels and deletes; a label
   selector watch sees a pod move into and out of the selector as ADDED and DELETED.
2. The server ends every watch: the library's own loop resumes from the last resourceVersion it saw (the request log
   shows the resumed watch's resourceVersion), no event is lost or repeated.
3. The history is compacted and the watches dropped: the resumed watch gets 410 Expired, the loop relists and
   carries on.
4. The connection under a watch is cut: the loop relists and carries on.
5. A BOOKMARK asked for through the test control arrives with the current resourceVersion.
6. limit/_continue walks 230 config maps in pages of 40, all from one consistent snapshot even while objects change;
   a continue token from before a compaction gets 410 Expired with the documented message and an inconsistent
   continuation token that lists the rest.
7. labelSelector and fieldSelector filter lists.

Prints "ok: ..." per check; exits 1 with "FAIL: ..." on the first failure. Every wait is bounded.
"""

import json
import queue
import ssl
import sys
import threading
import urllib.request

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

KUBECONFIG, REQUEST_LOG = sys.argv[1], sys.argv[2]
NS = "informer"
WAIT = 15


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def ok(msg):
    print("ok: " + msg, flush=True)


config.load_kube_config(config_file=KUBECONFIG)
v1 = client.CoreV1Api()
conf = client.Configuration.get_default_copy()
ctx = ssl.create_default_context(cafile=conf.ssl_ca_cert)


def test_control(what, method="POST"):
    req = urllib.request.Request(conf.host + "/_test/" + what, method=method, data=b"" if method == "POST" else None,
                                 headers={"Authorization": conf.api_key["authorization"]})
    with urllib.request.urlopen(req, context=ctx, timeout=WAIT) as r:
        return json.load(r)


def pod(name, labels=None):
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels=labels or {}),
                        spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="shop/app:1")]))


class Informer(threading.Thread):
    """list, then watch from the list's resourceVersion; relist on 410 Gone or a broken connection."""

    def __init__(self, namespace, label_selector=None):
        super().__init__(daemon=True)
        self.namespace, self.selector = namespace, label_selector
        self.events = queue.Queue()
        self.watch = watch.Watch()
        self.stopping = False

    def run(self):
        kw = {"label_selector": self.selector} if self.selector else {}
        while not self.stopping:
            listed = v1.list_namespaced_pod(self.namespace, **kw)
            self.events.put(("LIST", sorted(p.metadata.name for p in listed.items), listed.metadata.resource_version))
            try:
                for ev in self.watch.stream(v1.list_namespaced_pod, self.namespace,
                                            resource_version=listed.metadata.resource_version,
                                            allow_watch_bookmarks=True, **kw):
                    if ev["type"] == "BOOKMARK":
                        self.events.put(("BOOKMARK", None, ev["raw_object"]["metadata"]["resourceVersion"]))
                    else:
                        md = ev["object"].metadata
                        self.events.put((ev["type"], md.name, md.resource_version))
            except ApiException as e:
                self.events.put(("RELIST-%d" % e.status, None, None))
            except Exception as e:  # noqa: BLE001 (urllib3's ProtocolError and friends: the connection broke)
                self.events.put(("RELIST-broken", type(e).__name__, None))
            if self.stopping:
                return

    def expect(self, etype, name=None, skip=("BOOKMARK",)):
        """The next event that is not in skip must be (etype, name); returns it."""
        while True:
            try:
                ev = self.events.get(timeout=WAIT)
            except queue.Empty:
                fail("no %s %s within %d s" % (etype, name or "", WAIT))
            if ev[0] in skip and ev[0] != etype:
                continue
            if ev[0] != etype or (name is not None and ev[1] != name):
                fail("expected %s %s, got %r" % (etype, name or "", ev))
            return ev

    def quiet(self):
        """No pending event but bookmarks: nothing was repeated."""
        while not self.events.empty():
            ev = self.events.get()
            if ev[0] != "BOOKMARK":
                fail("unexpected event %r" % (ev,))


def watch_requests():
    with open(REQUEST_LOG, encoding="utf-8") as f:
        return [e for e in map(json.loads, f) if "watch=" in e["path"] and "/namespaces/%s/pods" % NS in e["path"]]


def wait_watches(n):
    for _ in range(WAIT * 20):
        if len([w for w in test_control("watches", "GET")["watches"] if w == "/pods"]) >= n:
            return
        threading.Event().wait(0.05)
    fail("the informers did not open their watches")


def informer_checks():
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    inf = Informer(NS)
    sel = Informer(NS, "tier=web")
    inf.start()
    sel.start()
    if inf.expect("LIST")[1] != [] or sel.expect("LIST")[1] != []:
        fail("the first list is not empty")
    wait_watches(2)

    v1.create_namespaced_pod(NS, pod("orders", {"app": "orders"}))
    inf.expect("ADDED", "orders")
    v1.patch_namespaced_pod("orders", NS, {"metadata": {"labels": {"tier": "web"}}})
    inf.expect("MODIFIED", "orders")
    sel.expect("ADDED", "orders")
    v1.patch_namespaced_pod("orders", NS, {"metadata": {"labels": {"tier": "db"}}})
    inf.expect("MODIFIED", "orders")
    sel.expect("DELETED", "orders")
    v1.delete_namespaced_pod("orders", NS)
    inf.expect("DELETED", "orders")
    sel.quiet()
    ok("list-then-watch sees ADDED, MODIFIED, DELETED; the selector watch sees the pod enter and leave")

    # 2. the server ends the watches; the library resumes from the last resourceVersion it saw
    last_rv = v1.create_namespaced_pod(NS, pod("before-drop")).metadata.resource_version
    inf.expect("ADDED", "before-drop")
    before = len(watch_requests())
    dropped = test_control("drop-watches?mode=close")["dropped"]
    if dropped < 2:
        fail("drop-watches ended %d watches" % dropped)
    v1.create_namespaced_pod(NS, pod("after-drop"))
    inf.expect("ADDED", "after-drop")
    wait_watches(2)
    resumed = [w for w in watch_requests()[before:] if "labelSelector" not in w["path"]]
    if not resumed or "resourceVersion=%s" % last_rv not in resumed[0]["path"]:
        fail("the resumed watch did not start from resourceVersion %s: %r" % (last_rv, resumed[:1]))
    inf.quiet()
    ok("a watch the server ended is resumed from resourceVersion %s, nothing lost or repeated" % last_rv)

    # 3. compaction: the resumed watch is too old, 410, relist
    other = "elsewhere"
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    v1.create_namespaced_pod(other, pod("unseen"))  # moves the global resourceVersion past the informer's
    test_control("compact")
    test_control("drop-watches?mode=close")
    inf.expect("RELIST-410")
    listed = inf.expect("LIST")
    if listed[1] != ["after-drop", "before-drop"]:
        fail("the relist after 410 holds %r" % listed[1])
    wait_watches(2)
    v1.delete_namespaced_pod("before-drop", NS)
    inf.expect("DELETED", "before-drop")
    ok("after compaction the resumed watch got 410 Expired; the informer relisted and watches again")

    # 4. the connection under the watch is cut
    test_control("drop-watches?mode=abort")
    inf.expect("RELIST-broken")
    inf.expect("LIST")
    wait_watches(2)
    v1.create_namespaced_pod(NS, pod("after-abort"))
    inf.expect("ADDED", "after-abort")
    ok("a cut connection makes the informer relist; it sees the next change")

    # 5. bookmarks
    rv = test_control("bookmark")
    current = v1.list_namespace().metadata.resource_version
    got = inf.expect("BOOKMARK", skip=())
    if got[2] != current:
        fail("the bookmark carries resourceVersion %s, the server is at %s (%r)" % (got[2], current, rv))
    ok("a BOOKMARK arrives with the current resourceVersion %s" % current)
    inf.stopping = sel.stopping = True
    inf.watch.stop()
    sel.watch.stop()


def pagination_checks():
    ns = "bulk"
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    names = ["cm-%03d" % i for i in range(230)]
    for i, n in enumerate(names):
        v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(
            name=n, labels={"parity": "even" if i % 2 == 0 else "odd"}), data={"i": str(i)}))
    seen, token, rvs, pages = [], None, set(), 0
    while True:
        page = v1.list_namespaced_config_map(ns, limit=40, _continue=token)
        pages += 1
        if len(page.items) > 40:
            fail("a page holds %d items" % len(page.items))
        seen.extend(c.metadata.name for c in page.items)
        rvs.add(page.metadata.resource_version)
        if pages == 1:
            # changes after the first page must not show in the later ones
            v1.delete_namespaced_config_map("cm-200", ns)
            v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm-999")))
        token = page.metadata._continue
        if not token:
            break
        if page.metadata.remaining_item_count != 230 - len(seen):
            fail("remainingItemCount %s after %d items" % (page.metadata.remaining_item_count, len(seen)))
        if pages > 20:
            fail("pagination does not end")
    if seen != names or len(rvs) != 1 or pages != 6:
        fail("pagination walked %d names in %d pages at resourceVersions %s" % (len(seen), pages, sorted(rvs)))
    ok("limit/continue walked 230 config maps in 6 pages from one snapshot (resourceVersion %s)" % rvs.pop())

    first = v1.list_namespaced_config_map(ns, limit=100)
    # a change after the first page, then the history is compacted: the snapshot cannot be rebuilt any more
    v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm-998")))
    test_control("compact")
    try:
        v1.list_namespaced_config_map(ns, limit=100, _continue=first.metadata._continue)
        fail("a continue token from before the compaction was accepted")
    except ApiException as e:
        body = json.loads(e.body)
        if e.status != 410 or body.get("reason") != "Expired" or \
                not body.get("message", "").startswith("The provided continue parameter is too old"):
            fail("expired continue: %s %s" % (e.status, e.body))
        rest = v1.list_namespaced_config_map(ns, limit=1000, _continue=body["metadata"]["continue"])
    got = [c.metadata.name for c in first.items] + [c.metadata.name for c in rest.items]
    want = sorted(set(names) - {"cm-200"} | {"cm-998", "cm-999"})
    if got != want:
        fail("the inconsistent continuation did not list the rest: %d names" % len(got))
    ok("an expired continue token gets 410 Expired; its inconsistent continuation lists the rest")

    # across namespaces whose names sort differently as strings and as (namespace, name) pairs
    for n in ("pg", "pg-x"):
        v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=n)))
        for c in ("a", "z"):
            v1.create_namespaced_config_map(n, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=c)))
    whole = [(c.metadata.namespace, c.metadata.name) for c in v1.list_config_map_for_all_namespaces().items]
    walked, token = [], None
    for _ in range(len(whole) + 2):
        page = v1.list_config_map_for_all_namespaces(limit=3, _continue=token)
        walked += [(c.metadata.namespace, c.metadata.name) for c in page.items]
        token = page.metadata._continue
        if not token:
            break
    if walked != whole or whole != sorted(whole):
        fail("paging across namespaces walked %d of %d objects, or out of order" % (len(walked), len(whole)))
    ok("paging across namespaces in pages of 3 walks all %d config maps in (namespace, name) order" % len(whole))

    odd = v1.list_namespaced_config_map(ns, label_selector="parity=odd,parity notin (even)")
    one = v1.list_config_map_for_all_namespaces(field_selector="metadata.name=cm-007,metadata.namespace=%s" % ns)
    if len(odd.items) != 115 or [c.metadata.name for c in one.items] != ["cm-007"]:
        fail("selectors: %d odd, %r" % (len(odd.items), [c.metadata.name for c in one.items]))
    try:
        v1.list_namespaced_config_map(ns, field_selector="data.i=3")
        fail("an unsupported field selector was accepted")
    except ApiException as e:
        if e.status != 400 or "field label not supported: data.i" not in e.body:
            fail("unsupported field selector: %s %s" % (e.status, e.body))
    ok("labelSelector and fieldSelector filter lists; an unsupported field label is a 400")


informer_checks()
pagination_checks()
print("PASS", flush=True)
