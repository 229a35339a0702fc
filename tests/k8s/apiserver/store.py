"""The stand-in API server's storage: every object, one global resourceVersion, the event history and the watchers.

Follows the Kubernetes API Concepts page ("Resource versions", "Efficient detection of changes", "Retrieving large
results sets in chunks"): every write gets the next value of one global counter, written as a decimal string into
metadata.resourceVersion (clients must treat it as opaque); a list carries the counter at the time it was made; a
watch from resourceVersion N replays the events after N that the history still holds, and a watch from an N older
than the history gets a 410 "Expired" (too old resource version). A continued list is served from the state at the
first page's resourceVersion, rebuilt from the history; once the history no longer reaches back that far, the
continue token has expired (410).

Objects are keyed by group-resource ("apps/deployments", "/pods") and (namespace, name); the stored form is the JSON
object exactly as served (with apiVersion and kind). All methods take the one lock; watchers get events through their
own queue, filled under that lock, so a watcher never misses or reorders an event.
"""

import copy
import queue
import threading

HISTORY_MAX = 5000


class Expired(Exception):
    """The requested resourceVersion is older than the retained history (410 Gone, reason Expired)."""

    def __init__(self, requested, oldest):
        super().__init__("too old resource version: %d (%d)" % (requested, oldest))
        self.requested = requested
        self.oldest = oldest


class Watcher:
    """One open watch: the events of one group-resource after `start`, delivered through `events`."""

    def __init__(self, gr):
        self.gr = gr
        self.events = queue.Queue()

    def close(self, mode):
        """Ends the watch: mode "close" ends the stream properly, "abort" drops the connection."""
        self.events.put(("END", mode, None, 0))


class Store:
    def __init__(self, history_max=HISTORY_MAX):
        self.lock = threading.RLock()
        self.rv = 1
        self.objects = {}  # gr -> {(namespace, name): obj}
        self.history = []  # [(rv, type, gr, key, obj, old)], oldest first
        self.base = 1  # a watch or continued list from rv >= base is served; older is Expired
        self.history_max = history_max
        self.watchers = set()

    # -- reading ------------------------------------------------------------------------------------------------

    def get(self, gr, namespace, name):
        with self.lock:
            obj = self.objects.get(gr, {}).get((namespace or "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, gr, namespace=None, at=None):
        """(resourceVersion, [objects sorted by namespace/name]) now, or at resourceVersion `at` (Expired if the
        history no longer reaches it)."""
        with self.lock:
            current = dict(self.objects.get(gr, {}))
            rv = self.rv
            if at is not None and at < self.rv:
                if at < self.base:
                    raise Expired(at, self.base)
                for erv, _etype, egr, key, obj, old in reversed(self.history):
                    if erv <= at:
                        break
                    if egr != gr:
                        continue
                    if old is None:
                        current.pop(key, None)
                    else:
                        current[key] = old
                rv = at
            items = [copy.deepcopy(o) for k, o in sorted(current.items()) if namespace is None or k[0] == namespace]
            return rv, items

    def all_objects(self):
        with self.lock:
            return [copy.deepcopy(o) for gr in sorted(self.objects) for _k, o in sorted(self.objects[gr].items())]

    def current_rv(self):
        with self.lock:
            return self.rv

    # -- writing ------------------------------------------------------------------------------------------------

    def _record(self, etype, gr, key, obj, old):
        self.history.append((self.rv, etype, gr, key, obj, old))
        if len(self.history) > self.history_max:
            drop = len(self.history) - self.history_max
            self.base = self.history[drop - 1][0]
            del self.history[:drop]
        for w in list(self.watchers):
            if w.gr == gr:
                w.events.put((etype, copy.deepcopy(obj), copy.deepcopy(old), self.rv))

    def put(self, gr, obj, check):
        """Creates or replaces obj (keyed by its metadata) under the next resourceVersion, after check(old) (which
        may raise to refuse the write, and sees the stored object or None). Returns the stored copy."""
        with self.lock:
            md = obj["metadata"]
            key = (md.get("namespace", ""), md["name"])
            old = self.objects.get(gr, {}).get(key)
            check(copy.deepcopy(old) if old is not None else None)
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            stored = copy.deepcopy(obj)
            self.objects.setdefault(gr, {})[key] = stored
            self._record("ADDED" if old is None else "MODIFIED", gr, key, stored, old)
            return copy.deepcopy(stored)

    def delete(self, gr, namespace, name, check=None):
        """Removes an object; returns the removed object (with the deletion's resourceVersion) or None."""
        with self.lock:
            key = (namespace or "", name)
            old = self.objects.get(gr, {}).get(key)
            if old is None:
                return None
            if check is not None:
                check(copy.deepcopy(old))
            del self.objects[gr][key]
            self.rv += 1
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(self.rv)
            self._record("DELETED", gr, key, gone, old)
            return copy.deepcopy(gone)

    # -- watching -----------------------------------------------------------------------------------------------

    def watch(self, gr, since, initial_end=False):
        """Registers a watcher of gr. since=None: the current objects as ADDED events first (watch without a
        resourceVersion, or "0"), then, with initial_end, a BOOKMARK-INITIAL marker (sendInitialEvents); since=N:
        the retained events after N (Expired when N is older than the history).
        Returns (watcher, resourceVersion the replay ends at)."""
        with self.lock:
            w = Watcher(gr)
            if since is None:
                for _k, o in sorted(self.objects.get(gr, {}).items()):
                    w.events.put(("ADDED", copy.deepcopy(o), None, int(o["metadata"]["resourceVersion"])))
                if initial_end:
                    w.events.put(("BOOKMARK-INITIAL", None, None, self.rv))
            else:
                if since < self.base:
                    raise Expired(since, self.base)
                for erv, etype, egr, _key, obj, old in self.history:
                    if erv > since and egr == gr:
                        w.events.put((etype, copy.deepcopy(obj), copy.deepcopy(old), erv))
            self.watchers.add(w)
            return w, self.rv

    def unwatch(self, w):
        with self.lock:
            self.watchers.discard(w)

    def drop_watchers(self, mode, gr=None):
        """Ends every open watch (of gr, or all); returns how many."""
        with self.lock:
            dropped = [w for w in self.watchers if gr is None or w.gr == gr]
            for w in dropped:
                self.watchers.discard(w)
                w.close(mode)
            return len(dropped)

    def bookmark_all(self):
        with self.lock:
            for w in self.watchers:
                w.events.put(("BOOKMARK", None, None, self.rv))
            return len(self.watchers)

    def compact(self):
        """Forgets the whole history: a watch or continued list from before now gets 410 Expired."""
        with self.lock:
            self.history.clear()
            self.base = self.rv
            return self.rv
