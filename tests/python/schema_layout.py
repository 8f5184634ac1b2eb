#!/usr/bin/env python3
"""Check that a Cap'n Proto schema keeps the wire layout recorded for it.

The layout lists every type (with the id of each interface), struct field
(ordinal, slot offset and type, or group), union discriminant, enumerant
and interface method (ordinal and the layout of its parameters and results)
by its dotted name. A schema keeps
compatibility when every recorded entry is still there unchanged, so that
clients built against the record still work. New entries are allowed and
listed, and `--update` records them.

Usage:
  schema_layout.py --schema schema/calendar.capnp --layout tests/python/calendar.layout.json
  schema_layout.py ... --update

Exit status: 0 when compatible, 1 when a recorded entry changed or is
missing, 3 without pycapnp.
"""

import argparse
import json
import os
import sys

EXIT_INCOMPATIBLE = 1
EXIT_MISSING_PYCAPNP = 3

try:
    import capnp
except ImportError as import_error:
    print(
        f"error: the Python module 'capnp' is not installed ({import_error}); "
        "install it with `python3 -m pip install pycapnp`",
        file=sys.stderr,
    )
    sys.exit(EXIT_MISSING_PYCAPNP)

# pycapnp ships capnp/stream.capnp, which streaming methods import, inside
# its package directory.
CAPNP_IMPORT_PATH = os.path.dirname(os.path.dirname(os.path.abspath(capnp.__file__)))


def type_name(type_dict, names):
    """Name a schema.capnp Type: a primitive, a list, or the node a type id refers to."""
    (kind, detail), = type_dict.items()
    if kind == "list":
        return f"List({type_name(detail['elementType'], names)})"
    if kind in ("struct", "enum", "interface"):
        type_id = detail["typeId"]
        return names.get(type_id, f"{kind} @0x{type_id:016x}")
    if kind == "anyPointer":
        return "AnyPointer"
    return kind


class Layout:
    """Collector of the layout entries of one schema file, keyed by dotted name."""

    def __init__(self):
        self.entries = {}
        self.names = {}

    def add(self, path, description):
        if path in self.entries:
            raise ValueError(f"two layout entries are named {path}")
        self.entries[path] = description

    def name_nodes(self, parsed, prefix):
        """Map the id of every node under `parsed` to its dotted name."""
        for nested in parsed.node.nestedNodes:
            child = parsed.get_nested(nested.name)
            path = f"{prefix}{nested.name}"
            self.names[nested.id] = path
            self.name_nodes(child, f"{path}.")

    def walk(self, parsed, prefix):
        for nested in parsed.node.nestedNodes:
            child = parsed.get_nested(nested.name)
            path = f"{prefix}{nested.name}"
            kind = child.node.which()
            # An interface's id is on the wire in every call, so it must not
            # change. Struct and enum ids are not.
            if kind == "interface":
                self.add(path, f"interface @0x{child.node.id:016x}")
            else:
                self.add(path, kind)
            if kind == "struct":
                self.struct(child.as_struct(), path)
            elif kind == "enum":
                self.enum(child.node, path)
            elif kind == "interface":
                self.interface(child.as_interface(), path)
            self.walk(child, f"{path}.")

    def struct(self, schema, path):
        node = schema.node.struct
        if node.discriminantCount:
            self.add(f"{path}.(union)", f"discriminant offset {node.discriminantOffset}")
        for field in schema.fields_list:
            self.field(field, f"{path}.{field.proto.name}")

    def field(self, field, path):
        proto = field.proto
        parts = []
        if proto.ordinal.which() == "explicit":
            parts.append(f"@{proto.ordinal.explicit}")
        if proto.discriminantValue != 0xFFFF:
            parts.append(f"union branch {proto.discriminantValue}")
        if proto.which() == "group":
            parts.append("group")
            self.add(path, " ".join(parts))
            self.struct(field.schema, path)
            return
        slot = proto.slot
        parts.append(f"{type_name(slot.type.to_dict(), self.names)} at slot {slot.offset}")
        if slot.hadExplicitDefault:
            parts.append(f"default {slot.defaultValue.to_dict()}")
        self.add(path, " ".join(parts))

    def enum(self, node, path):
        for ordinal, enumerant in enumerate(node.enum.enumerants):
            self.add(f"{path}.{enumerant.name}", f"@{ordinal}")

    def interface(self, schema, path):
        for ordinal, method in enumerate(schema.node.interface.methods):
            method_path = f"{path}.{method.name}"
            self.add(method_path, f"@{ordinal}")
            signature = schema.methods[method.name]
            self.parameters(signature.param_type, f"{method_path}(params)")
            self.parameters(signature.result_type, f"{method_path}(results)")

    def parameters(self, schema, path):
        # The compiler makes an unnamed struct, without a scope, for a
        # parameter or result list, so its fields are listed under the method.
        # A named struct, such as StreamResult for a streaming method, is
        # listed by its name only.
        node = schema.node
        if node.scopeId == 0:
            self.struct(schema.as_struct(), path)
            return
        self.add(path, self.names.get(node.id, node.displayName))


def describe(schema_path):
    """Return the layout of a schema file as a dict from dotted name to entry."""
    parsed = capnp.load(schema_path, imports=[CAPNP_IMPORT_PATH])
    layout = Layout()
    layout.name_nodes(parsed.schema, "")
    layout.walk(parsed.schema, "")
    return layout.entries


def compare(recorded, current):
    """Return (problems, additions): recorded entries that changed or are
    missing, and entries that are new."""
    problems = []
    for path, before in recorded.items():
        now = current.get(path)
        if now is None:
            problems.append(f"{path} ({before}) is missing: it was removed or renamed")
        elif now != before:
            problems.append(f"{path} changed from {before!r} to {now!r}")
    additions = [f"{path} ({entry})" for path, entry in current.items() if path not in recorded]
    return problems, additions


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", required=True, help="the .capnp file to check")
    parser.add_argument("--layout", required=True, help="the JSON file with the recorded layout")
    parser.add_argument(
        "--update",
        action="store_true",
        help="record the schema's layout after checking that it is compatible",
    )
    return parser.parse_args()


def main():
    args = parse_args()
    current = describe(args.schema)
    try:
        with open(args.layout, encoding="utf-8") as file:
            recorded = json.load(file)
    except FileNotFoundError:
        recorded = {}
        if not args.update:
            message = f"error: no layout recorded at {args.layout}; run with --update"
            print(message, file=sys.stderr)
            return EXIT_INCOMPATIBLE

    problems, additions = compare(recorded, current)
    for addition in additions:
        print(f"new: {addition}")
    if problems:
        print(f"error: {args.schema} breaks {len(problems)} recorded entries:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print(
            "add a new field or method with the next free ordinal instead of changing one",
            file=sys.stderr,
        )
        return EXIT_INCOMPATIBLE

    if args.update:
        with open(args.layout, "w", encoding="utf-8") as file:
            json.dump(current, file, indent=1, sort_keys=True)
            file.write("\n")
        print(f"recorded {len(current)} entries in {args.layout}")
    else:
        print(f"{args.schema} keeps all {len(recorded)} recorded entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
