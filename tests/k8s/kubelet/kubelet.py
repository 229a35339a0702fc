#!/usr/bin/env python3
"""A test kubelet: runs one Pod object in a network namespace of the e2e namespace mesh (tests/e2e/lib.sh), for the
fields an injected pod depends on. Python 3 stdlib only. See README.md beside it.

  kubelet.py run --pod-file POD.json | --pod NAMESPACE/NAME   (the Pod as the stand-in API server stores it)
             --netns NS --pod-ip IP --dir DIR --image PATTERN=SPEC ... [--hosts FILE]
             [--api URL --api-ca CA --api-token-file FILE] [--token-review-table TABLE | --token-mint KEY:KID]
             [--ctl ringmeshctl] [--configmap-wait S]

It runs in the node namespace (probes go to the pod IP from there, as a kubelet's do) and starts every container
through `ip netns exec NS unshare --mount --uts` and this file's `exec` mode, which bind-mounts the volumes at their
mountPaths, sets the hostname, and execs setpriv with the security context's user, group, capabilities and
no_new_privs. Events are JSON lines on stdout; each container's stdout/stderr go to DIR/containers/NAME.N.log(.stderr).
On SIGTERM it stops the app containers, then the native sidecars in reverse order (SIGTERM, then SIGKILL after the
grace period), each by its PID, and exits.
"""
import argparse
import base64
import fcntl
import fnmatch
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid

HERE = os.path.abspath(__file__)
DEFAULT_CAPS = ["chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
                "net_bind_service", "sys_chroot", "mknod", "audit_write", "setfcap", "net_raw"]


def now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def log(event, **kw):
    print(json.dumps(dict(ts=now(), event=event, **kw)), flush=True)


class PodError(Exception):
    pass


# --------------------------------------------------------------------------------------------------------------
# the API server


class Api:
    def __init__(self, url, ca, token_file):
        self.url, self.token_file = url.rstrip("/"), token_file
        self.ctx = ssl.create_default_context(cafile=ca)

    def call(self, method, path, body=None):
        host = self.url.split("://", 1)[1]
        conn = http.client.HTTPSConnection(host.rsplit(":", 1)[0].strip("[]"), int(host.rsplit(":", 1)[1]),
                                           context=self.ctx, timeout=20)
        token = open(self.token_file).read().strip()
        headers = {"Authorization": "Bearer " + token, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read()
        finally:
            conn.close()
        return resp.status, json.loads(text) if text else None


# --------------------------------------------------------------------------------------------------------------
# volumes


def field_value(pod, path):
    md, spec = pod["metadata"], pod["spec"]
    if path == "metadata.name":
        return md["name"]
    if path == "metadata.namespace":
        return md.get("namespace", "default")
    if path == "metadata.uid":
        return md.get("uid", "")
    if path == "spec.serviceAccountName":
        return spec.get("serviceAccountName", "default")
    if path == "spec.nodeName":
        return spec.get("nodeName", "")
    if path in ("status.podIP", "status.hostIP"):
        return pod.get("status", {}).get(path.split(".")[1], "")
    if path.startswith("metadata.labels['") and path.endswith("']"):
        return md.get("labels", {}).get(path[len("metadata.labels['"):-2], "")
    if path.startswith("metadata.annotations['") and path.endswith("']"):
        return md.get("annotations", {}).get(path[len("metadata.annotations['"):-2], "")
    if path in ("metadata.labels", "metadata.annotations"):
        # the kubelet's format: key="value" per line, sorted, values quoted as Go's %q does
        items = sorted(md.get(path.split(".")[1], {}).items())
        return "\n".join('%s=%s' % (k, json.dumps(v)) for k, v in items)
    raise PodError("fieldRef %s is not supported by the test kubelet" % path)


def write_file(path, content, mode, uid=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content if isinstance(content, bytes) else content.encode())
    os.chmod(path, mode)
    if uid is not None:
        os.chown(path, uid, uid)


class Volumes:
    def __init__(self, kubelet):
        self.k = kubelet
        self.paths = {}

    def users_of(self, name):
        uids = set()
        for c in self.k.all_containers():
            if any(m["name"] == name for m in c.get("volumeMounts", [])):
                uids.add(self.k.run_as(c)[0])
        return uids

    def make(self):
        pod = self.k.pod
        for v in pod["spec"].get("volumes", []):
            name = v["name"]
            path = os.path.join(self.k.dir, "volumes", name)
            os.makedirs(path, exist_ok=True)
            self.paths[name] = path
            users = self.users_of(name)
            owner = users.pop() if len(users) == 1 else None
            if "emptyDir" in v:
                if v["emptyDir"].get("medium") == "Memory":
                    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700,size=64m", "tmpfs-" + name, path],
                                   check=True)
                if owner is not None:
                    os.chown(path, owner, owner)
                    os.chmod(path, 0o700)
                else:
                    os.chmod(path, 0o777)
                log("volume", volume=name, type="emptyDir", medium=v["emptyDir"].get("medium", ""),
                    mode="%o" % (os.stat(path).st_mode & 0o7777), owner=os.stat(path).st_uid)
            elif "projected" in v:
                mode = v["projected"].get("defaultMode", 0o644)
                for src in v["projected"]["sources"]:
                    self.source(path, src, mode, owner)
                os.chmod(path, 0o755)
                log("volume", volume=name, type="projected")
            elif "downwardAPI" in v:
                self.source(path, {"downwardAPI": v["downwardAPI"]}, v["downwardAPI"].get("defaultMode", 0o644),
                            owner)
                os.chmod(path, 0o755)
                log("volume", volume=name, type="downwardAPI")
            elif "configMap" in v:
                self.source(path, {"configMap": v["configMap"]}, v["configMap"].get("defaultMode", 0o644), owner)
                os.chmod(path, 0o755)
                log("volume", volume=name, type="configMap")
            else:
                raise PodError("volume %s: type %s is not supported by the test kubelet" % (name, sorted(v)))

    def source(self, path, src, mode, owner):
        pod = self.k.pod
        if "serviceAccountToken" in src:
            t = src["serviceAccountToken"]
            token = self.k.token(t.get("audience", ""), t.get("expirationSeconds", 3600))
            # the kubelet gives a projected token to the containers' common runAsUser, mode 0600
            write_file(os.path.join(path, t["path"]), token, 0o600 if owner is not None else mode, owner)
        elif "downwardAPI" in src:
            for item in src["downwardAPI"].get("items", []):
                if "fieldRef" not in item:
                    raise PodError("downwardAPI item %s: only fieldRef is supported" % item.get("path"))
                write_file(os.path.join(path, item["path"]), field_value(pod, item["fieldRef"]["fieldPath"]),
                           item.get("mode", mode))
        elif "configMap" in src:
            cm = self.k.configmap(src["configMap"]["name"], src["configMap"].get("optional", False))
            data = (cm or {}).get("data", {})
            items = src["configMap"].get("items") or [{"key": k, "path": k} for k in sorted(data)]
            for item in items:
                if item["key"] not in data:
                    raise PodError("configMap %s has no key %s" % (src["configMap"]["name"], item["key"]))
                write_file(os.path.join(path, item["path"]), data[item["key"]], item.get("mode", mode))
        else:
            raise PodError("projected source %s is not supported by the test kubelet" % sorted(src))


# --------------------------------------------------------------------------------------------------------------
# containers


class Container:
    def __init__(self, spec, kind):
        self.spec, self.kind, self.name = spec, kind, spec["name"]
        self.proc = None
        self.restarts = -1
        self.started = False  # startup probe passed (or none)
        self.ready = False
        self.exit_code = None
        self.probe_state = {}
        self.next_probe = {}
        self.done = False

    @property
    def sidecar(self):
        return self.kind == "init" and self.spec.get("restartPolicy") == "Always"


class Kubelet:
    def __init__(self, args):
        self.args = args
        self.dir = os.path.abspath(args.dir)
        os.makedirs(os.path.join(self.dir, "containers"), exist_ok=True)
        self.api = Api(args.api, args.api_ca, args.api_token_file) if args.api else None
        self.images = []
        for spec in args.image:
            pattern, _, what = spec.partition("=")
            kind, _, val = what.partition(":")
            if kind not in ("path", "cmd"):
                raise PodError("--image %s: want PATTERN=path:DIR or PATTERN=cmd:JSON_ARGV" % spec)
            self.images.append((pattern, kind, json.loads(val) if kind == "cmd" else val))
        self.stopping = False
        self.phase = None
        self.last_status = None

    # ---- the pod ----
    def load(self):
        if self.args.pod_file:
            self.pod = json.load(open(self.args.pod_file))
        else:
            ns, name = self.args.pod.split("/", 1)
            code, self.pod = self.api.call("GET", "/api/v1/namespaces/%s/pods/%s" % (ns, name))
            if code != 200:
                raise PodError("GET pod %s: HTTP %d %s" % (self.args.pod, code, self.pod))
        self.pod.setdefault("status", {})
        self.pod["status"]["podIP"] = self.args.pod_ip
        self.pod["metadata"].setdefault("uid", str(uuid.uuid4()))
        self.pod["metadata"].setdefault("namespace", "default")
        spec = self.pod["spec"]
        if spec.get("hostNetwork"):
            raise PodError("hostNetwork pods are not supported by the test kubelet")
        self.init = [Container(c, "init") for c in spec.get("initContainers", [])]
        self.regular = [Container(c, "regular") for c in spec["containers"]]

    def all_containers(self):
        spec = self.pod["spec"]
        return spec.get("initContainers", []) + spec["containers"]

    def run_as(self, c):
        psc = self.pod["spec"].get("securityContext", {})
        sc = c.get("securityContext", {})
        uid = sc.get("runAsUser", psc.get("runAsUser", 0))
        gid = sc.get("runAsGroup", psc.get("runAsGroup", uid if "runAsUser" in sc or "runAsUser" in psc else 0))
        return uid, gid

    def token(self, audience, expiration):
        md, spec = self.pod["metadata"], self.pod["spec"]
        ns, sa = md["namespace"], spec.get("serviceAccountName", "default")
        if self.args.token_mint:
            key, _, kid = self.args.token_mint.partition(":")
            out = subprocess.run([self.args.ctl, "token", "mint", "--key", key, "--kid", kid, "--namespace", ns,
                                  "--service-account", sa, "--pod", md["name"], "--pod-uid", md["uid"],
                                  "--audience", audience, "--ttl", "%ds" % expiration],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise PodError("ringmeshctl token mint: " + out.stderr.strip())
            log("token", how="minted", audience=audience, expirationSeconds=expiration)
            return out.stdout.strip()
        if self.args.token_review_table:
            # an opaque token the stand-in's TokenReview answers for, as the API server would for a bound token
            seg = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
            token = "%s.%s.%s" % (seg({"alg": "RS256", "kid": "test-kubelet"}),
                                  seg({"sub": "system:serviceaccount:%s:%s" % (ns, sa), "pod": md["name"],
                                       "jti": str(uuid.uuid4())}), seg({"sig": str(uuid.uuid4())}))
            table_path = self.args.token_review_table
            review_name = "review-%s-%s.json" % (ns, md["name"])
            review = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "metadata": {},
                      "spec": {"token": token, "audiences": [audience]},
                      "status": {"authenticated": True, "user": {
                          "username": "system:serviceaccount:%s:%s" % (ns, sa), "uid": str(uuid.uuid4()),
                          "groups": ["system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"],
                          "extra": {"authentication.kubernetes.io/credential-id": ["JTI=" + str(uuid.uuid4())],
                                    "authentication.kubernetes.io/node-name": ["test-node"],
                                    "authentication.kubernetes.io/pod-name": [md["name"]],
                                    "authentication.kubernetes.io/pod-uid": [md["uid"]]}},
                          "audiences": [audience]}}
            json.dump(review, open(os.path.join(os.path.dirname(table_path), review_name), "w"), indent=1)
            # several kubelets share the table: read, add and replace it under a lock, through a file of our own
            with open(table_path + ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                table = json.load(open(table_path))
                table.setdefault("reviews", {})[token] = review_name
                tmp = "%s.%d.tmp" % (table_path, os.getpid())
                json.dump(table, open(tmp, "w"), indent=1)
                os.replace(tmp, table_path)
            log("token", how="token-review", audience=audience, expirationSeconds=expiration)
            return token
        raise PodError("a serviceAccountToken volume needs --token-mint or --token-review-table")

    def configmap(self, name, optional):
        ns = self.pod["metadata"]["namespace"]
        deadline = time.monotonic() + self.args.configmap_wait
        while True:
            code, body = self.api.call("GET", "/api/v1/namespaces/%s/configmaps/%s" % (ns, name))
            if code == 200:
                return body
            if optional:
                return None
            if time.monotonic() > deadline or self.stopping:
                raise PodError('configmap "%s" not found in %s after %d s (HTTP %d)'
                               % (name, ns, self.args.configmap_wait, code))
            log("waiting", reason="configmap %s/%s not found" % (ns, name))
            time.sleep(0.5)

    # ---- starting a container ----
    def env_of(self, c):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOSTNAME": self.pod["metadata"]["name"]}
        if c.get("envFrom"):
            raise PodError("container %s: envFrom is not supported by the test kubelet" % c["name"])
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = expand(e["value"], env)
            elif "fieldRef" in e.get("valueFrom", {}):
                env[e["name"]] = field_value(self.pod, e["valueFrom"]["fieldRef"]["fieldPath"])
            elif "valueFrom" in e:
                raise PodError("container %s env %s: only value and fieldRef are supported" % (c["name"], e["name"]))
            else:
                env[e["name"]] = ""
        return env

    def image_of(self, c):
        for pattern, kind, val in self.images:
            if fnmatch.fnmatchcase(c["image"], pattern):
                return kind, val
        raise PodError("container %s: no --image maps %s" % (c["name"], c["image"]))

    def argv_of(self, c, env, command=None):
        kind, val = self.image_of(c)
        if command is None:
            if "command" in c:
                command = [expand(a, env) for a in c["command"]] + [expand(a, env) for a in c.get("args", [])]
            elif kind == "cmd":
                command = list(val) + [expand(a, env) for a in c.get("args", [])]
            else:
                raise PodError("container %s: image %s has no entrypoint and the container no command"
                               % (c["name"], c["image"]))
        if kind == "path" and "/" not in command[0]:
            found = os.path.join(val, command[0])
            if not os.access(found, os.X_OK):
                raise PodError("container %s: %s is not in image %s (%s)" % (c["name"], command[0], c["image"], val))
            command = [found] + command[1:]
        return command

    def exec_spec(self, c, argv, env):
        uid, gid = self.run_as(c)
        sc = c.get("securityContext", {})
        psc = self.pod["spec"].get("securityContext", {})
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) and uid == 0:
            raise PodError("container %s: runAsNonRoot and the user is 0" % c["name"])
        caps = sc.get("capabilities", {})
        drop = [x.lower() for x in caps.get("drop", [])]
        have = [] if "all" in drop else [x for x in DEFAULT_CAPS if x not in drop]
        have += [x.lower() for x in caps.get("add", []) if x.lower() not in have]
        mounts = []
        for m in c.get("volumeMounts", []):
            if m["name"] not in self.volumes.paths:
                raise PodError("container %s: volumeMount %s names no volume" % (c["name"], m["name"]))
            mounts.append([self.volumes.paths[m["name"]], m["mountPath"], bool(m.get("readOnly"))])
        return {"argv": argv, "env": env, "uid": uid, "gid": gid, "caps": have, "mounts": mounts,
                "hostname": self.pod["metadata"]["name"], "hosts": self.args.hosts, "resolv_conf": self.resolv_conf,
                "no_new_privs": sc.get("allowPrivilegeEscalation") is False,
                "read_only_root": bool(sc.get("readOnlyRootFilesystem"))}

    def spawn(self, c, argv, env, stdout, stderr):
        spec = self.exec_spec(c, argv, env)
        self.spawns = getattr(self, "spawns", 0) + 1  # one file per process: a hook must not rewrite its container's
        path = os.path.join(self.dir, "containers", "%s.%d.spec.json" % (c["name"], self.spawns))
        json.dump(spec, open(path, "w"))
        return subprocess.Popen(["ip", "netns", "exec", self.args.netns, "unshare", "--mount", "--uts",
                                 "--propagation", "private", sys.executable, HERE, "exec", path],
                                stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)

    def start(self, ct):
        c = ct.spec
        env = self.env_of(c)
        argv = self.argv_of(c, env)
        ct.restarts += 1
        ct.started = ct.ready = False
        ct.exit_code = None
        ct.probe_state, ct.next_probe = {}, {}
        base = os.path.join(self.dir, "containers", "%s.%d.log" % (ct.name, ct.restarts + 1))
        ct.log = base
        ct.proc = self.spawn(c, argv, env, open(base, "wb"), open(base + ".stderr", "wb"))
        ct.started_at = time.monotonic()
        log("container_started", container=ct.name, kind="sidecar" if ct.sidecar else ct.kind, pid=ct.proc.pid,
            restarts=ct.restarts, uid=self.run_as(c)[0], argv=argv, log=base)
        hook = c.get("lifecycle", {}).get("postStart", {})
        if hook:
            if "exec" not in hook:
                raise PodError("container %s: postStart %s is not supported" % (ct.name, sorted(hook)))
            cmd = self.argv_of(c, env, [expand(a, env) for a in hook["exec"]["command"]])
            with open(base + ".poststart", "wb") as out:
                p = self.spawn(c, cmd, env, out, subprocess.STDOUT)
                deadline = time.monotonic() + 300
                rc = wait_until(p, lambda: self.stopping or time.monotonic() > deadline)
                if rc is None:
                    p.kill()
                    p.wait()
            log("post_start", container=ct.name, exitCode=rc)
            if rc != 0:
                self.kill(ct, "postStart hook failed")

    def kill(self, ct, why, grace=None):
        if ct.proc is None or ct.proc.poll() is not None:
            self.reap(ct)
            return
        grace = self.pod["spec"].get("terminationGracePeriodSeconds", 30) if grace is None else grace
        log("container_stopping", container=ct.name, pid=ct.proc.pid, reason=why)
        ct.proc.send_signal(signal.SIGTERM)
        if wait_bounded(ct.proc, grace) is None:
            ct.proc.kill()
            ct.proc.wait()
        self.reap(ct)

    def reap(self, ct):
        if ct.proc is not None and ct.proc.poll() is not None and ct.exit_code is None:
            ct.exit_code = ct.proc.returncode
            ct.ready = False
            log("container_exited", container=ct.name, pid=ct.proc.pid, exitCode=ct.exit_code)
            return True
        return False

    # ---- probes ----
    def probe_once(self, ct, probe):
        timeout = probe.get("timeoutSeconds", 1)
        try:
            if "httpGet" in probe:
                h = probe["httpGet"]
                port = self.port_of(ct, h["port"])
                host = h.get("host") or self.args.pod_ip
                if h.get("scheme", "HTTP") == "HTTPS":
                    conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                       context=ssl._create_unverified_context())
                else:
                    conn = http.client.HTTPConnection(host, port, timeout=timeout)
                headers = {"User-Agent": "kube-probe/1.33", "Accept": "*/*"}
                for hh in h.get("httpHeaders", []):
                    headers[hh["name"]] = hh["value"]
                try:
                    conn.request("GET", h.get("path", "/"), headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                finally:
                    conn.close()
                return 200 <= resp.status < 400, "HTTP %d" % resp.status
            if "tcpSocket" in probe:
                port = self.port_of(ct, probe["tcpSocket"]["port"])
                with socket.create_connection((probe["tcpSocket"].get("host") or self.args.pod_ip, port), timeout):
                    return True, "connected"
            if "exec" in probe:
                env = self.env_of(ct.spec)
                argv = self.argv_of(ct.spec, env, [expand(a, env) for a in probe["exec"]["command"]])
                with open(ct.log + ".probe", "ab") as out:
                    p = self.spawn(ct.spec, argv, env, out, subprocess.STDOUT)
                    rc = wait_bounded(p, timeout)
                    if rc is None:
                        p.kill()
                        p.wait()
                        return False, "exec timed out after %d s" % timeout
                return rc == 0, "exit code %d" % rc
            # gRPC probes: the injector rewrites them to httpGet /app-health, so a meshed pod never has one here
            return False, "probe handler %s is not supported by the test kubelet" % sorted(probe)
        except (OSError, http.client.HTTPException) as e:
            return False, str(e) or type(e).__name__

    def port_of(self, ct, port):
        if isinstance(port, int):
            return port
        for p in ct.spec.get("ports", []):
            if p.get("name") == port:
                return p["containerPort"]
        raise PodError("container %s: no port named %s" % (ct.name, port))

    def run_probes(self, ct):
        """Runs the probes of a running container that are due; returns why it must be restarted, else None."""
        t = time.monotonic()
        kinds = ["startupProbe"] if not ct.started else ["livenessProbe", "readinessProbe"]
        if not ct.started and "startupProbe" not in ct.spec:
            ct.started = True
            kinds = ["livenessProbe", "readinessProbe"]
        if ct.started and "readinessProbe" not in ct.spec:
            ct.ready = True
        for kind in kinds:
            probe = ct.spec.get(kind)
            if probe is None:
                continue
            due = ct.next_probe.get(kind, ct.started_at + probe.get("initialDelaySeconds", 0))
            if t < due:
                continue
            ct.next_probe[kind] = t + probe.get("periodSeconds", 10)
            ok, detail = self.probe_once(ct, probe)
            st = ct.probe_state.setdefault(kind, {"ok": 0, "fail": 0, "result": None})
            if ok:
                st["ok"], st["fail"] = st["ok"] + 1, 0
            else:
                st["ok"], st["fail"] = 0, st["fail"] + 1
            result = st["result"]
            if ok and st["ok"] >= probe.get("successThreshold", 1):
                result = "success"
            elif not ok and st["fail"] >= probe.get("failureThreshold", 3):
                result = "failure"
            if result != st["result"]:
                st["result"] = result
                log("probe", container=ct.name, probe=kind, result=result, detail=detail,
                    handler=next((dict(probe[h], type=h) for h in ("httpGet", "tcpSocket", "exec", "grpc")
                                  if h in probe), {}))
            if kind == "startupProbe" and result == "success":
                ct.started = True
            elif kind == "startupProbe" and result == "failure":
                return "startup probe failed"
            elif kind == "readinessProbe":
                ct.ready = result == "success"
            elif kind == "livenessProbe" and result == "failure":
                return "liveness probe failed"
        return None

    # ---- status in the API ----
    def report(self, phase, message=""):
        def cstatus(ct):
            s = {"name": ct.name, "image": ct.spec["image"], "imageID": "", "ready": bool(ct.ready),
                 "restartCount": max(ct.restarts, 0), "started": bool(ct.started and ct.exit_code is None),
                 "containerID": "test-kubelet://%s" % (ct.proc.pid if ct.proc else 0)}
            if ct.proc is None:
                s["state"] = {"waiting": {"reason": "PodInitializing"}}
            elif ct.exit_code is None:
                s["state"] = {"running": {"startedAt": now()[:19] + "Z"}}
            else:
                s["state"] = {"terminated": {"exitCode": ct.exit_code,
                                             "reason": "Completed" if ct.exit_code == 0 else "Error"}}
            return s

        ready = phase == "Running" and all(ct.ready for ct in self.regular) and all(
            ct.ready for ct in self.init if ct.sidecar)
        initialized = all(ct.exit_code == 0 or (ct.sidecar and ct.started) for ct in self.init)
        cond = lambda t, v: {"type": t, "status": "True" if v else "False", "lastTransitionTime": now()[:19] + "Z"}
        status = {"phase": phase, "podIP": self.args.pod_ip, "podIPs": [{"ip": self.args.pod_ip}],
                  "hostIP": self.args.host_ip, "startTime": self.start_time,
                  "conditions": [cond("PodScheduled", True), cond("Initialized", initialized),
                                 cond("ContainersReady", ready), cond("Ready", ready)],
                  "initContainerStatuses": [cstatus(c) for c in self.init],
                  "containerStatuses": [cstatus(c) for c in self.regular]}
        if message:
            status["message"] = message
        key = json.dumps({k: v for k, v in status.items() if k != "conditions"} | {
            "c": [(c["type"], c["status"]) for c in status["conditions"]]}, sort_keys=True, default=str)
        key = key.replace(now()[:19], "")  # startedAt stamps do not make a change
        if key == self.last_status:
            return
        self.last_status = key
        if phase != self.phase:
            log("pod_phase", phase=phase, ready=ready, message=message)
            self.phase = phase
        elif ready != getattr(self, "last_ready", None):
            log("pod_ready", ready=ready)
        self.last_ready = ready
        if self.api is None or self.args.pod_file:
            return
        md = self.pod["metadata"]
        path = "/api/v1/namespaces/%s/pods/%s/status" % (md["namespace"], md["name"])
        code, cur = self.api.call("GET", path)
        if code != 200:
            log("status_error", code=code, body=cur)
            return
        cur["status"] = status
        code, body = self.api.call("PUT", path, cur)
        if code != 200:
            log("status_error", code=code, body=body)

    # ---- the pod's life ----
    def run(self):
        self.start_time = now()[:19] + "Z"
        self.load()
        restart = self.pod["spec"].get("restartPolicy", "Always")
        self.report("Pending")
        self.volumes = Volumes(self)
        self.volumes.make()
        # the pod's DNS: names come from --hosts; a query for any other name fails at once (no server on the pod's
        # loopback), instead of waiting for the host's resolvers, which the namespace mesh cannot reach
        self.resolv_conf = os.path.join(self.dir, "resolv.conf")
        write_file(self.resolv_conf, "nameserver 127.0.0.1\nsearch %s.svc.cluster.local svc.cluster.local "
                   "cluster.local\noptions attempts:1 timeout:1\n" % self.pod["metadata"]["namespace"], 0o644)
        for ct in self.init:
            while True:
                self.start(ct)
                if ct.sidecar:
                    while not ct.started:  # the startup probe gates the next container
                        if self.stopping:
                            return
                        why = "exited" if self.reap(ct) else self.run_probes(ct)
                        if why:
                            raise PodError("native sidecar %s did not start: %s" % (ct.name, why))
                        self.report("Pending")
                        time.sleep(0.1)
                    log("sidecar_started", container=ct.name)
                    break
                rc = wait_until(ct.proc, lambda: self.stopping)
                self.reap(ct)
                if rc == 0:
                    break
                if self.stopping:
                    return
                if restart == "Never":
                    self.report("Failed", "init container %s exited %s" % (ct.name, rc))
                    return
                time.sleep(1)
            self.report("Pending")
        for ct in self.regular:
            if self.stopping:
                return
            self.start(ct)
        self.report("Running")
        while not self.stopping:
            for ct in self.init + self.regular:
                if ct.done or (ct.kind == "init" and not ct.sidecar):
                    continue
                if ct.exit_code is None and not self.reap(ct):
                    why = self.run_probes(ct)
                    if why:
                        self.kill(ct, why)
                if ct.exit_code is None:
                    continue
                # a native sidecar is always restarted; the others per the pod's restartPolicy, at most once a second
                if ct.sidecar or restart == "Always" or (restart == "OnFailure" and ct.exit_code != 0):
                    if time.monotonic() - ct.started_at >= 1 and not self.stopping:
                        self.start(ct)
                else:
                    ct.done = True
            if all(ct.done for ct in self.regular):
                ok = all(ct.exit_code == 0 for ct in self.regular)
                for ct in reversed([c for c in self.init if c.sidecar]):
                    self.kill(ct, "pod's main containers finished")
                    ct.done = True
                self.report("Succeeded" if ok else "Failed")
                return
            self.report("Running")
            time.sleep(0.1)

    def stop(self):
        """The pod is deleted: app containers first, then the init containers in reverse order, each given
        --stop-grace seconds after SIGTERM (short, so that a test's teardown never outlasts it)."""
        for ct in self.regular:
            self.kill(ct, "pod deleted", self.args.stop_grace)
        for ct in reversed(self.init):
            self.kill(ct, "pod deleted", self.args.stop_grace)


def expand(s, env):
    """Kubernetes' $(VAR) expansion ($$ escapes, unknown references stay as written)."""
    out, i = [], 0
    while i < len(s):
        if s.startswith("$$", i):
            out.append("$")
            i += 2
        elif s.startswith("$(", i) and ")" in s[i:]:
            j = s.index(")", i)
            name = s[i + 2:j]
            out.append(env.get(name, s[i:j + 1]))
            i = j + 1
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def wait_bounded(p, seconds):
    try:
        return p.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None


def wait_until(p, stop):
    while True:
        rc = wait_bounded(p, 0.1)
        if rc is not None or stop():
            return rc


# --------------------------------------------------------------------------------------------------------------
# exec mode: inside the pod's network namespace and a private mount and UTS namespace


def exec_container(spec_path):
    spec = json.load(open(spec_path))
    socket.sethostname(spec["hostname"])
    # A mountPath the host lacks is made on an overlay of its nearest existing ancestor (upper layer on a tmpfs of
    # this mount namespace), as an image would hold it: nothing is created on the host's filesystem.
    scratch, overlays = spec_path + ".scratch", []
    for _, dst, _ in spec["mounts"]:
        real = os.path.realpath(dst)
        if os.path.exists(real):
            continue
        top = real
        while not os.path.exists(top):
            top = os.path.dirname(top)
        if top in overlays:
            continue
        if not overlays:
            os.makedirs(scratch, exist_ok=True)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "kubelet-scratch", scratch], check=True)
        n = len(overlays)
        os.makedirs("%s/upper%d" % (scratch, n))
        os.makedirs("%s/work%d" % (scratch, n))
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s/upper%d,workdir=%s/work%d"
                        % (top, scratch, n, scratch, n), top], check=True)
        overlays.append(top)
    for src, dst, ro in spec["mounts"]:
        os.makedirs(dst, exist_ok=True)
        subprocess.run(["mount", "--bind", src, dst], check=True)
        if ro:
            subprocess.run(["mount", "-o", "remount,bind,ro", dst], check=True)
    if spec["hosts"]:
        subprocess.run(["mount", "--bind", spec["hosts"], "/etc/hosts"], check=True)
    subprocess.run(["mount", "--bind", spec["resolv_conf"], "/etc/resolv.conf"], check=True)
    if spec["read_only_root"]:
        for top in ["/"] + overlays:
            subprocess.run(["mount", "-o", "remount,ro" if top != "/" else "remount,bind,ro", top], check=True)
    caps = ",".join(["-all"] + ["+" + c for c in spec["caps"]])
    argv = ["setpriv", "--reuid", str(spec["uid"]), "--regid", str(spec["gid"]), "--clear-groups",
            "--bounding-set", caps, "--inh-caps", "-all"]
    if spec["no_new_privs"]:
        argv.append("--no-new-privs")
    argv += ["--"] + spec["argv"]
    os.execvpe("setpriv", argv, spec["env"])


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "exec":
        exec_container(sys.argv[2])
        return 1
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["run"])
    ap.add_argument("--pod-file")
    ap.add_argument("--pod")
    ap.add_argument("--netns", required=True)
    ap.add_argument("--pod-ip", required=True)
    ap.add_argument("--host-ip", default="")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--image", action="append", default=[])
    ap.add_argument("--hosts")
    ap.add_argument("--api")
    ap.add_argument("--api-ca")
    ap.add_argument("--api-token-file")
    ap.add_argument("--token-review-table")
    ap.add_argument("--token-mint")
    ap.add_argument("--ctl", default="ringmeshctl")
    ap.add_argument("--configmap-wait", type=int, default=30)
    ap.add_argument("--stop-grace", type=float, default=1.0)
    args = ap.parse_args()
    if bool(args.pod_file) == bool(args.pod):
        ap.error("give one of --pod-file and --pod")
    if args.pod and not args.api:
        ap.error("--pod needs --api")
    k = Kubelet(args)

    def on_term(signum, frame):
        k.stopping = True

    signal.signal(signal.SIGTERM, on_term)
    rc = 0
    try:
        k.run()
        while not k.stopping:  # the pod finished: stay until deleted, so the test reads its status
            time.sleep(0.2)
    except PodError as e:
        log("pod_error", error=str(e))
        rc = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if hasattr(k, "regular"):
            k.stop()
        log("kubelet_stopped")
    return rc


if __name__ == "__main__":
    sys.exit(main())
