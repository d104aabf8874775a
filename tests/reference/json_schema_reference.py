"""Oracle for guided JSON decoding (infer/json_matcher): Python's jsonschema (Draft 2020-12).

  json_schema_reference.py OUT.json    writes test schemas, documents that validate (drawn from each
                                       schema, checked by jsonschema, written with random layout), near
                                       misses that do not (changed values and bytes, checked too) and
                                       the command line of --check
  json_schema_reference.py --check F   validates the documents the matcher wrote for each schema
                                       (F: {"cases": [{"name", "schema", "outputs": [text]}]}); exit 1
                                       naming every one that fails
"""
import copy
import json
import math
import random
import sys

import jsonschema

SCHEMAS = {
    "person": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 12},
            "age": {"type": "integer"},
            "email": {"type": "string", "format": "email", "description": "format is an annotation"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 4}, "maxItems": 3},
            "address": {"$ref": "#/$defs/address"},
            'odd "key" \\ here': {"type": "boolean"},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
        "$defs": {"address": {"type": "object", "properties": {
            "street": {"type": "string"}, "zip": {"type": "string", "minLength": 5, "maxLength": 5}},
            "required": ["zip"]}},
    },
    "enums": {
        "type": "object",
        "properties": {
            "color": {"enum": ["red", "green", "blue", "rouge", "ré"]},
            "size": {"enum": [1, 12, 123, 1.5, None, True, "x"]},
            "fixed": {"const": {"a": [1, 2], "b": "c"}},
            "level": {"type": "string", "enum": ["low", "high", 3]},
        },
        "required": ["color", "size"],
    },
    "shapes": {
        "anyOf": [
            {"type": "object", "properties": {"kind": {"const": "circle"}, "r": {"type": "number"}},
             "required": ["kind", "r"]},
            {"type": "object", "properties": {"kind": {"const": "rect"}, "w": {"type": "number"},
                                              "h": {"type": "number"}}, "required": ["kind", "w", "h"]},
            {"type": "object", "properties": {"kind": {"const": "circle"}, "d": {"type": "integer"}},
             "required": ["kind", "d"]},
            {"type": "null"},
        ]
    },
    "tree": {
        "$ref": "#/$defs/node",
        "$defs": {"node": {"type": "object", "properties": {
            "value": {"type": "integer"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 3}},
            "required": ["value"]}},
    },
    "extra_keys": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "na\u00efve": {"type": "string"}},
        "required": ["id"],
        "additionalProperties": {"type": "string", "maxLength": 4},
    },
    "tuple": {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "integer"}],
        "items": {"type": "boolean"},
        "minItems": 2,
        "maxItems": 5,
    },
    "union_types": {"type": ["string", "integer", "null"], "maxLength": 3},
    "lengths": {
        "type": "object",
        "properties": {"s": {"type": "string", "minLength": 2, "maxLength": 4},
                       "list": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 2}},
        "required": ["s", "list"],
        "additionalProperties": False,
    },
    "pydantic_optional": {
        "title": "Model",
        "type": "object",
        "properties": {
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "title": "Note"},
            "count": {"title": "Count", "type": "integer"},
            "item": {"allOf": [{"$ref": "#/definitions/Item"}]},
        },
        "required": ["count"],
        "definitions": {"Item": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
                                 "additionalProperties": False}},
    },
    "bounds": {  # Pydantic's Field(ge=..., le=..., gt=..., lt=...)
        "type": "object",
        "properties": {
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "score": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "temp": {"type": "number", "minimum": -40.5, "exclusiveMaximum": 60},
            "count": {"type": "integer", "exclusiveMinimum": -3},
            "below": {"type": ["integer", "null"], "maximum": -10},
            "tenth": {"type": "number", "minimum": 0.1, "maximum": 0.1},
            "quarter": {"type": "number", "multipleOf": 0.25, "minimum": 0, "maximum": 10},
            "even": {"type": "integer", "multipleOf": 2, "exclusiveMaximum": 9},
        },
        "required": ["rating", "score", "temp", "count", "below"],
        "additionalProperties": False,
    },
    "any_object": {"type": "object"},
    "anything": {},
    "number": {"type": "number"},
    "string": {"type": "string", "maxLength": 6},
}

ALL_TYPES = ["null", "boolean", "integer", "number", "string", "array", "object"]
CHARS = ["a", "b", "Z", " ", "é", "ü", "€", "😀", '"', "\\", "/", "\n", "\t", "\x01", "{", "]", ":", ","]


def resolve(s, root):
    while isinstance(s, dict) and ("$ref" in s or "allOf" in s):
        if "$ref" in s:
            node = root
            for part in s["$ref"][2:].split("/"):
                node = node[part]
            s = node
        else:
            s = s["allOf"][0]
    return s


def type_of(v):
    if v is None: return {"null"}
    if isinstance(v, bool): return {"boolean"}
    if isinstance(v, int): return {"integer", "number"}
    if isinstance(v, float): return {"number"} | ({"integer"} if v.is_integer() else set())
    if isinstance(v, str): return {"string"}
    if isinstance(v, list): return {"array"}
    return {"object"}


def text(rnd, lo, hi):
    return "".join(rnd.choice(CHARS) for _ in range(rnd.randint(lo, hi)))


def draw(s, root, rnd, depth):
    """A random document that s admits (within the matcher's subset: no undeclared keys where an
    object lists its properties and says nothing of others)."""
    s = resolve(s, root)
    if s is True or s == {}:
        s = {"type": ALL_TYPES if depth < 3 else ["null", "boolean", "integer", "string"]}
    alts = s.get("anyOf") or s.get("oneOf")
    if alts:
        return draw(rnd.choice(alts), root, rnd, depth)
    types = s.get("type", ALL_TYPES)
    types = [types] if isinstance(types, str) else types
    if "const" in s:
        return copy.deepcopy(s["const"])
    if "enum" in s:
        return copy.deepcopy(rnd.choice([v for v in s["enum"] if type_of(v) & set(types)]))
    if depth >= 3 and any(t not in ("object", "array") for t in types):
        types = [t for t in types if t not in ("object", "array")]
    t = rnd.choice(types)
    if t == "null": return None
    if t == "boolean": return rnd.random() < 0.5
    if t in ("integer", "number") and any(k in s for k in BOUNDS):
        return bounded_number(s, t, rnd)
    if t == "integer": return rnd.randint(-1000, 1000)
    if t == "number": return rnd.choice([rnd.randint(-50, 50), round(rnd.uniform(-1e3, 1e3), 3), rnd.uniform(-1e-4, 1e-4)])
    if t == "string":
        lo = s.get("minLength", 0)
        return text(rnd, lo, min(s.get("maxLength", lo + 8), lo + 8))
    if t == "array":
        prefix, items = s.get("prefixItems", []), s.get("items", True)
        lo, hi = s.get("minItems", 0), s.get("maxItems", 4)
        if items is False: hi = min(hi, len(prefix))
        if depth >= 2: hi = min(hi, max(lo, 1))
        n = rnd.randint(lo, max(lo, min(hi, lo + 3)))
        return [draw(prefix[i] if i < len(prefix) else items, root, rnd, depth + 1) for i in range(n)]
    props, required = s.get("properties", {}), s.get("required", [])
    names = [k for k in props if k in required or rnd.random() < (0.6 if depth < 2 else 0.2)]
    extra = s.get("additionalProperties", None if props else True)
    if extra is not None and extra is not False:
        # Beside declared keys, other keys are written without escapes (the matcher's subset).
        tail = (lambda: text(rnd, 0, 3)) if not props else (lambda: "".join(rnd.choice("xyzé€") for _ in range(2)))
        names += ["k" + str(i) + tail() for i in range(rnd.randint(0, 2))]
    rnd.shuffle(names)
    return {k: draw(props.get(k, extra), root, rnd, depth + 1) for k in names}


BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def bounded_number(s, t, rnd):
    """A value within the bounds, written as the matcher writes bounded numbers: no exponent, at
    most 9 fraction digits."""
    lo = max(s.get("minimum", -1e3), s.get("exclusiveMinimum", -1e3))
    hi = min(s.get("maximum", 1e3), s.get("exclusiveMaximum", 1e3))
    ok = lambda v: (v >= s.get("minimum", v) and v <= s.get("maximum", v) and v > s.get("exclusiveMinimum", v - 1)
                    and v < s.get("exclusiveMaximum", v + 1) and (not step or (v / step).is_integer()))
    step = s.get("multipleOf")
    for _ in range(1000):
        if step:
            v = rnd.randint(math.ceil(lo / step), math.floor(hi / step)) * step
        elif t == "integer":
            v = rnd.randint(math.ceil(lo), math.floor(hi))
        else:
            v = rnd.choice([lo, hi, round(rnd.uniform(lo, hi), rnd.choice([0, 1, 3, 9]))])
            if v != 0 and abs(v) < 1e-3: continue  # Python would write an exponent
        if ok(v):
            return v
    raise ValueError(f"no value for {s}")


def write(v, rnd, style):
    """style "compact": enum and const values are matched as written compactly; "raw": declared
    keys are matched in their shortest escaping, so non-ASCII ones are written raw."""
    if style == "compact":
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    indent = rnd.choice([None, None, 2])
    return json.dumps(v, ensure_ascii=style != "raw" and rnd.random() < 0.5, indent=indent,
                      separators=rnd.choice([(",", ":"), (", ", ": ")]) if indent is None else None)


def no_constants(c):
    raise ValueError(c)


def valid(validator, t):
    try:
        return validator.is_valid(json.loads(t, parse_constant=no_constants))
    except ValueError:
        return False


def paths(v, at=()):
    yield at
    if isinstance(v, dict):
        for k, x in v.items(): yield from paths(x, at + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v): yield from paths(x, at + (i,))


def near_misses(v, schema, rnd, validator, style, n):
    """Documents one change away from v that the schema refuses."""
    out = []
    base = write(v, rnd, style)
    for _ in range(20 * n):
        if len(out) >= n: break
        if rnd.random() < 0.5:  # a value replaced, a key dropped or added, an item added
            w = copy.deepcopy(v)
            path = rnd.choice(list(paths(w)))
            parent = w
            for p in path[:-1]: parent = parent[p]
            r = draw({}, schema, rnd, 2)
            choice = rnd.random()
            if not path:
                w = r
            elif choice < 0.5:
                parent[path[-1]] = r
            elif isinstance(parent, dict):
                if choice < 0.75: del parent[path[-1]]
                else: parent["zz" + str(path[-1])] = r
            else:
                parent.append(r)
            t = write(w, rnd, style)
        else:  # a byte changed, dropped or added
            i = rnd.randrange(len(base))
            c = rnd.choice('{}[]:,"\\ 0123456789.eE+-tfnlrusa\x01\n')
            t = [base[:i] + c + base[i + 1:], base[:i] + base[i + 1:], base[:i] + c + base[i:]][rnd.randrange(3)]
        if not valid(validator, t):
            out.append(t)
    return out


def generate(path):
    rnd = random.Random(7)
    cases = []
    for name, schema in SCHEMAS.items():
        validator = jsonschema.Draft202012Validator(schema)
        style = {"enums": "compact", "extra_keys": "raw"}.get(name, "any")
        docs, misses = [], []
        for _ in range(60):
            v = draw(schema, schema, rnd, 0)
            t = write(v, rnd, style)
            assert valid(validator, t), (name, t)
            docs.append(t)
            misses += near_misses(v, schema, rnd, validator, style, 2)
        cases.append({"name": name, "schema": schema, "valid": docs, "invalid": misses})
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"check": [sys.executable, __file__, "--check"], "cases": cases}, f, ensure_ascii=False)


def check(path):
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    bad = total = 0
    for case in cases:
        validator = jsonschema.Draft202012Validator(case["schema"])
        for t in case["outputs"]:
            total += 1
            if not valid(validator, t):
                bad += 1
                print(f"{case['name']}: not valid: {t!r}")
    print(f"jsonschema: {total - bad} of {total} matcher outputs valid")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    generate(sys.argv[1])
