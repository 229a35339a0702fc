#!/usr/bin/python3
"""Unit checks of the stand-in's pure parts that kubectl and python3-kubernetes do not reach in the other tests:
the strategic merge patch directives, JSON patch edge cases, label selector grammar, the store's history and
snapshots, and custom-resource schema checks. Run by tests/k8s/test_apiserver_units.sh (python3 -m unittest)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import patch  # noqa: E402
import query  # noqa: E402
import validate  # noqa: E402
from store import Expired, Store  # noqa: E402

POD = {"spec": {"containers": [{"name": "app", "image": "a:1", "ports": [{"containerPort": 80}, {"containerPort": 81}],
                                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                               {"name": "side", "image": "s:1"}],
                "volumes": [{"name": "v", "emptyDir": {}}]},
       "metadata": {"finalizers": ["x", "y"], "labels": {"a": "1"}}}


class StrategicMergePatch(unittest.TestCase):
    def smp(self, p, doc=None, kind="Pod"):
        return patch.strategic_merge_patch(doc or POD, p, kind)

    def test_merges_containers_by_name_and_ports_by_container_port(self):
        out = self.smp({"spec": {"containers": [{"name": "app", "image": "a:2", "ports": [{"containerPort": 82}]}]}})
        app = out["spec"]["containers"][0]
        self.assertEqual(app["image"], "a:2")
        self.assertEqual([p["containerPort"] for p in app["ports"]], [80, 81, 82])
        self.assertEqual(out["spec"]["containers"][1]["name"], "side")

    def test_delete_directive_removes_one_element(self):
        out = self.smp({"spec": {"containers": [{"name": "side", "$patch": "delete"}]}})
        self.assertEqual([c["name"] for c in out["spec"]["containers"]], ["app"])

    def test_replace_directive_replaces_the_list(self):
        out = self.smp({"spec": {"containers": [{"name": "only", "image": "o"}, {"$patch": "replace"}]}})
        self.assertEqual(out["spec"]["containers"], [{"name": "only", "image": "o"}])

    def test_replace_directive_on_a_map(self):
        out = self.smp({"metadata": {"labels": {"b": "2", "$patch": "replace"}}})
        self.assertEqual(out["metadata"]["labels"], {"b": "2"})

    def test_set_element_order(self):
        out = self.smp({"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "app"}]}})
        self.assertEqual([c["name"] for c in out["spec"]["containers"]], ["side", "app"])

    def test_retain_keys(self):
        vol = {"spec": {"volumes": [{"name": "v", "hostPath": {"path": "/x"}, "$retainKeys": ["name", "hostPath"]}]}}
        self.assertEqual(self.smp(vol)["spec"]["volumes"], [{"name": "v", "hostPath": {"path": "/x"}}])

    def test_finalizers_are_a_set_and_delete_from_primitive_list(self):
        out = self.smp({"metadata": {"finalizers": ["y", "z"], "$deleteFromPrimitiveList/finalizers": ["x"]}})
        self.assertEqual(out["metadata"]["finalizers"], ["y", "z"])

    def test_null_deletes_and_unkeyed_lists_are_replaced(self):
        out = self.smp({"metadata": {"labels": {"a": None}}, "spec": {"tolerations": [{"key": "k"}]}})
        self.assertEqual(out["metadata"]["labels"], {})
        self.assertEqual(out["spec"]["tolerations"], [{"key": "k"}])

    def test_service_ports_merge_by_port(self):
        svc = {"spec": {"ports": [{"name": "a", "port": 80}]}}
        out = self.smp({"spec": {"ports": [{"name": "b", "port": 81}]}}, svc, "Service")
        self.assertEqual([p["port"] for p in out["spec"]["ports"]], [80, 81])

    def test_missing_merge_key_is_an_error(self):
        with self.assertRaises(patch.PatchError):
            self.smp({"spec": {"containers": [{"image": "x"}]}})


class JsonPatch(unittest.TestCase):
    def test_operations_in_order(self):
        doc = {"a": [1, 2], "b": {"c": 1}}
        out = patch.json_patch(doc, [{"op": "add", "path": "/a/-", "value": 3}, {"op": "move", "from": "/b/c",
                                                                                "path": "/d"},
                                     {"op": "copy", "from": "/d", "path": "/e~1f"}, {"op": "test", "path": "/d",
                                                                                    "value": 1},
                                     {"op": "remove", "path": "/a/0"}])
        self.assertEqual(out, {"a": [2, 3], "b": {}, "d": 1, "e/f": 1})
        self.assertEqual(doc, {"a": [1, 2], "b": {"c": 1}}, "the input is left alone")

    def test_errors(self):
        for ops in ([{"op": "replace", "path": "/nope", "value": 1}], [{"op": "remove", "path": "/a/9"}],
                    [{"op": "test", "path": "/a", "value": 0}], [{"op": "jump", "path": "/a"}], {"op": "add"}):
            with self.assertRaises(patch.PatchError, msg=ops):
                patch.json_patch({"a": [1]}, ops)


class Selectors(unittest.TestCase):
    def match(self, sel, labels):
        return query.labels_match(query.parse_label_selector(sel), labels)

    def test_grammar(self):
        labels = {"app": "web", "tier": "front", "x.io/y": "1"}
        self.assertTrue(self.match("app=web,tier!=back", labels))
        self.assertTrue(self.match("app==web, tier in (front, back), !env, x.io/y", labels))
        self.assertFalse(self.match("tier notin (front)", labels))
        self.assertFalse(self.match("env", labels))
        self.assertTrue(self.match("env!=prod", labels))
        self.assertTrue(self.match("", labels))

    def test_bad_selectors(self):
        for sel in ("a in b", "a in (b", "=b", "a b", "!a=b"):
            with self.assertRaises(query.SelectorError, msg=sel):
                query.parse_label_selector(sel)

    def test_field_selectors(self):
        reqs = query.parse_field_selector("metadata.name=p,status.phase!=Failed", "Pod")
        self.assertTrue(query.fields_match(reqs, {"metadata": {"name": "p"}, "status": {"phase": "Running"}}))
        with self.assertRaises(query.SelectorError):
            query.parse_field_selector("spec.nodeName=n", "ConfigMap")


class History(unittest.TestCase):
    def test_snapshot_and_expiry(self):
        s = Store(history_max=3)
        ok = lambda old: None  # noqa: E731
        s.put("/cm", {"metadata": {"name": "a", "namespace": "n"}}, ok)
        rv, _ = s.list("/cm")
        s.put("/cm", {"metadata": {"name": "b", "namespace": "n"}}, ok)
        s.delete("/cm", "n", "a")
        self.assertEqual([o["metadata"]["name"] for o in s.list("/cm", at=rv)[1]], ["a"])
        self.assertEqual([o["metadata"]["name"] for o in s.list("/cm")[1]], ["b"])
        for i in range(3):
            s.put("/cm", {"metadata": {"name": "c%d" % i, "namespace": "n"}}, ok)
        with self.assertRaises(Expired):
            s.list("/cm", at=rv)
        with self.assertRaises(Expired):
            s.watch("/cm", rv)


class CustomResourceSchema(unittest.TestCase):
    SCHEMA = {"type": "object", "properties": {"spec": {
        "type": "object", "required": ["port"], "properties": {
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "mode": {"type": "string", "enum": ["STRICT", "PERMISSIVE"]},
            "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
            "hosts": {"type": "array", "items": {"type": "string"}, "maxItems": 1},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}

    def check(self, spec):
        obj = {"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "x"}, "spec": spec}
        return validate.check_custom(obj, self.SCHEMA)

    def test_valid_and_pruned(self):
        causes, out, unknown = self.check({"port": 80, "mode": "STRICT", "extra": {"any": 1}, "bogus": 2})
        self.assertEqual(causes, [])
        self.assertEqual(unknown, ["spec.bogus"])
        self.assertEqual(out["spec"], {"port": 80, "mode": "STRICT", "extra": {"any": 1}})

    def test_each_rule(self):
        causes, _, _ = self.check({"port": "80", "mode": "AUDIT", "name": "ABCDEFG", "hosts": ["a", "b"]})
        fields = sorted(f for _r, f, _m in causes)
        self.assertEqual(fields, ["spec.hosts", "spec.mode", "spec.name", "spec.name", "spec.port"])
        causes, _, _ = self.check({})
        self.assertEqual(causes, [("FieldValueRequired", "spec.port", "Required value")])


if __name__ == "__main__":
    unittest.main()
