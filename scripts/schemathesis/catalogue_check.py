"""openapi.yaml's loss schemas against the catalogue a running lossd serves.

    python scripts/schemathesis/catalogue_check.py URL        (URL: the server's base URL)

Run by scripts/api-check.sh before schemathesis, with LOSSD_API_KEY when the server has
one. Checks that
  * `LossName` lists exactly the served names and aliases;
  * every served loss (and alias) has a request schema (`SingleLossRequest`) and a
    `losses[]` entry schema (`LossEntry`) whose `loss` is that name;
  * the `params` of those schemas are exactly the loss's parameters, each with the type,
    enum, bounds, nullability and requiredness the catalogue gives (soft_topk's `k`,
    whose range depends on the input, excepted);
  * the inputs of each request schema are inputs the catalogue lists for that loss.
Prints one line and exits 0, or prints every difference and exits 1.

Most of these schemas are generated from the same catalogue (`make openapi`, checked by
Tests/LossdServiceTests/OpenAPIFragmentTests.swift); this check also covers the ones a
loss's record names as written by hand (focal's modes, pass_at_n's and cacr's forms,
kd_kl, hl_gauss's and soft_topk's params) and the document the server was built with.
"""

import json
import os
import sys
import urllib.request

import yaml

# Members of a single-loss request that are not inputs of the loss.
COMMON = {"loss", "params", "reduction", "return_grad", "output_encoding", "output_dtype", "groups"}
# |v| < 1e15 for every integer parameter (ResolvedParameters).
INTEGER_LIMIT = 999999999999999


def fetch(url: str):
    headers = {}
    if os.environ.get("LOSSD_API_KEY"):
        headers["Authorization"] = "Bearer " + os.environ["LOSSD_API_KEY"]
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return json.load(response)


def main() -> int:
    catalogue = fetch(sys.argv[1].rstrip("/") + "/v1/losses")
    with open("openapi.yaml") as f:
        schemas = yaml.safe_load(f)["components"]["schemas"]

    def deref(node):
        while isinstance(node, dict) and "$ref" in node:
            node = schemas[node["$ref"].rsplit("/", 1)[1]]
        return node

    def names_of(variant):
        loss = deref(variant)["properties"]["loss"]
        return set(loss["enum"]) if "enum" in loss else {loss["const"]}

    def params_of(variant):
        """The params schemas of a request or entry schema (a `oneOf` gives several)."""
        node = deref(deref(variant)["properties"]["params"])
        return [deref(x) for x in node["oneOf"]] if "oneOf" in node else [node]

    errors = []
    served = {}
    for entry in catalogue:
        for name in [entry["name"]] + entry.get("aliases", []):
            served[name] = entry
    documented = set(schemas["LossName"]["enum"])
    if documented != set(served):
        errors.append(f"LossName: only served {sorted(set(served) - documented)}, only documented {sorted(documented - set(served))}")

    requests = [deref(v) for v in schemas["SingleLossRequest"]["oneOf"]]
    entries = [deref(v) for v in schemas["LossEntry"]["oneOf"]]
    for name, entry in sorted(served.items()):
        for kind, variants in (("SingleLossRequest", requests), ("LossEntry", entries)):
            mine = [v for v in variants if name in names_of(v)]
            if not mine:
                errors.append(f"{kind}: no schema for loss `{name}`")
                continue
            documented_params = {}
            for variant in mine:
                for params in params_of(variant):
                    for pname, pschema in params.get("properties", {}).items():
                        documented_params.setdefault(pname, []).append((deref(pschema), params.get("required", [])))
                if kind == "SingleLossRequest":
                    inputs = set(variant["properties"]) - COMMON
                    listed = {i["name"] for i in entry["inputs"]} | ({"sample_weights"} if entry["sample_weights"] else set())
                    if not inputs <= listed:
                        errors.append(f"{kind} `{name}`: inputs {sorted(inputs - listed)} are not in the catalogue")
                    if entry["sample_weights"] != ("sample_weights" in inputs):
                        errors.append(f"{kind} `{name}`: sample_weights disagrees with the catalogue")
            if set(documented_params) != set(entry["params"]):
                errors.append(f"{kind} `{name}`: params {sorted(documented_params)} but the catalogue has {sorted(entry['params'])}")
                continue
            for pname, spec in entry["params"].items():
                for pschema, required in documented_params[pname]:
                    problem = compare(pname, spec, pschema, pname in required, name)
                    if problem:
                        errors.append(f"{kind} `{name}` params.{pname}: {problem}")
    if errors:
        print("api-check: openapi.yaml's loss schemas differ from GET /v1/losses:", file=sys.stderr)
        for error in errors:
            print("  " + error, file=sys.stderr)
        return 1
    print(f"api-check: the {len(served)} loss names of openapi.yaml, their request schemas and parameters match the server's catalogue")
    return 0


def compare(pname, spec, schema, required, loss):
    """What differs between a catalogue parameter and its schema (None when they agree)."""
    if (loss, pname) == ("soft_topk", "k"):
        return None  # (0, L): the bounds depend on the input
    kind = spec["type"]
    if kind == "object":
        return None if "min" in schema.get("properties", {}) else "expected the histogram support object"
    types = schema.get("type")
    types = set(types) if isinstance(types, list) else {types}
    if "const" in schema:
        types = {"string"}
    want = {kind} | ({"null"} if spec.get("nullable") else set())
    if types != want:
        return f"type {sorted(types)} but the catalogue says {sorted(want)}"
    if kind == "string":
        allowed = set(schema.get("enum", [schema.get("const")]))
        return None if allowed <= set(spec["enum"]) else f"enum {sorted(allowed)} not within {spec['enum']}"
    if kind in ("number", "integer"):
        lo, hi = spec.get("min"), spec.get("max")
        if kind == "integer":
            lo = -INTEGER_LIMIT if lo is None else lo
            hi = INTEGER_LIMIT if hi is None else hi
        got_lo = schema.get("exclusiveMinimum", schema.get("minimum"))
        got_hi = schema.get("exclusiveMaximum", schema.get("maximum"))
        if got_lo != lo or got_hi != hi:
            return f"range [{got_lo}, {got_hi}] but the catalogue says [{lo}, {hi}]"
        if ("exclusiveMinimum" in schema) != bool(spec.get("min_exclusive")):
            return "min exclusiveness differs"
        if ("exclusiveMaximum" in schema) != bool(spec.get("max_exclusive")):
            return "max exclusiveness differs"
    if bool(spec.get("required")) != required:
        return "requiredness differs"
    return None


if __name__ == "__main__":
    sys.exit(main())
