"""Parse every line a connector printed with airbyte-protocol-models' AirbyteMessage, strictly.

The models accept unknown fields (Extra.allow) and make every payload optional, so a plain parse would pass a
message whose payload key is misspelled: PyAirbyte would then drop it without a word. This check also requires the
payload named by `type` to be present and alone, and reports any field the protocol does not define (outside the
free-form parts: record data, JSON schemas, stream state blobs, configs).

Usage: python check_messages.py FILE...   Prints one JSON summary line; exits 1 if any line fails.
"""

import json
import sys

from airbyte_protocol.models import AirbyteMessage, AirbyteStateBlob
from pydantic import BaseModel

PAYLOAD = {
    "RECORD": "record",
    "STATE": "state",
    "LOG": "log",
    "SPEC": "spec",
    "CONNECTION_STATUS": "connectionStatus",
    "CATALOG": "catalog",
    "TRACE": "trace",
    "CONTROL": "control",
}


def unknown_fields(model, path):
    """Yield dotted paths of fields a model received that its class does not declare."""
    if isinstance(model, AirbyteStateBlob):
        return
    known = {f.alias for f in model.__fields__.values()} | set(model.__fields__)
    for name in model.__fields_set__:
        if name not in known:
            yield f"{path}.{name}"
    for name, field in model.__fields__.items():
        value = getattr(model, name, None)
        for child, sub in children(value, f"{path}.{field.alias}"):
            yield from unknown_fields(child, sub)


def children(value, path):
    if isinstance(value, BaseModel):
        yield value, path
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from children(v, f"{path}[{i}]")


def check_line(raw):
    problems = []
    obj = json.loads(raw)
    msg = AirbyteMessage.parse_obj(obj)
    kind = msg.type.value
    want = PAYLOAD.get(kind)
    if want is None:
        return kind, [f"a source never sends type {kind}"]
    present = [k for k in PAYLOAD.values() if obj.get(k) is not None]
    if present != [want]:
        problems.append(f"type {kind} needs exactly the payload {want!r}, found {present}")
    problems += [f"unknown field {p}" for p in unknown_fields(msg, "message")]
    if kind == "RECORD" and not isinstance(obj["record"].get("emitted_at"), int):
        problems.append("record.emitted_at must be an integer (milliseconds)")
    return kind, problems


def main(paths):
    lines, types, errors = 0, {}, []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for n, raw in enumerate(f, 1):
                if not raw.strip():
                    errors.append(f"{path}:{n}: empty line")
                    continue
                lines += 1
                try:
                    kind, problems = check_line(raw)
                except Exception as e:  # any parse failure is a finding, not a crash
                    errors.append(f"{path}:{n}: {type(e).__name__}: {e}"[:500])
                    continue
                types[kind] = types.get(kind, 0) + 1
                errors += [f"{path}:{n}: {p}" for p in problems]
    print(json.dumps({"lines": lines, "types": types, "errors": errors[:50], "error_count": len(errors)}))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
