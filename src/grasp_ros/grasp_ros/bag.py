"""ROS 2 bags (rosbag2, MCAP storage, CDR-serialised messages) that `ros2 bag play`, `ros2 bag info` and Foxglove open.

`BagWriter` writes a rosbag2 folder (`metadata.yaml` + one `.mcap`) with the `rosbags` library; the messages are
serialised by rclpy itself (`rclpy.serialization.serialize_message`: the same CDR bytes a publisher sends, or the raw
bytes a `raw=True` subscription receives). Each topic's schema is the `ros2msg` definition generated from the rclpy
message class (rosidl's introspection, nested types as `MSG:` sections, as rosbag2 writes them) with its RIHS01 type
hash from the package's installed type description (`share/<pkg>/<msg|srv>/<Type>.json`), so a reader needs neither
this workspace nor our message packages to decode it.

`read_bag` reads one back (with rosbags) as (topic, type name, log time, raw CDR); `bag_recorder` (a node) records
live topics into a bag.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path

from rclpy.serialization import serialize_message

# rosidl BasicType names -> .msg names
_BASIC = {"boolean": "bool", "octet": "byte", "char": "char", "float": "float32", "double": "float64",
          "long double": "float64", "int8": "int8", "uint8": "uint8", "int16": "int16", "uint16": "uint16",
          "int32": "int32", "uint32": "uint32", "int64": "int64", "uint64": "uint64"}


def type_name(msg_class) -> str:
    """'pkg/msg/Type' (or 'pkg/srv/Type_Event', ...) of an rclpy message class."""
    module = msg_class.__module__.split(".")  # pkg.msg._type or pkg.srv._service
    return f"{module[0]}/{module[1]}/{msg_class.__name__}"


def message_class(name: str):
    """The rclpy class of 'pkg/msg/Type', 'pkg/srv/Service_Request|_Response|_Event' (ValueError if unknown)."""
    parts = name.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3:
        raise ValueError(f"'{name}' is not a message type name (pkg/msg/Type)")
    package, namespace, base = parts
    try:
        module = importlib.import_module(f"{package}.{namespace}")
    except ImportError as e:
        raise ValueError(f"message type {name}: cannot import {package}.{namespace} ({e}); is the workspace "
                         "sourced?") from None
    if hasattr(module, base):
        return getattr(module, base)
    for suffix in ("Request", "Response", "Event", "Goal", "Result", "Feedback"):
        if base.endswith("_" + suffix) and hasattr(module, base[:-len(suffix) - 1]):
            return getattr(getattr(module, base[:-len(suffix) - 1]), suffix)
    raise ValueError(f"message type {name}: {package}.{namespace} has no {base}")


def _field_type(slot, dependencies: list) -> str:
    from rosidl_parser import definition as d  # noqa: PLC0415

    if isinstance(slot, d.BasicType):
        return _BASIC[slot.typename]
    if isinstance(slot, d.UnboundedString):
        return "string"
    if isinstance(slot, d.UnboundedWString):
        return "wstring"
    if isinstance(slot, d.BoundedString):
        return f"string<={slot.maximum_size}"
    if isinstance(slot, d.BoundedWString):
        return f"wstring<={slot.maximum_size}"
    if isinstance(slot, d.NamespacedType):
        full = "/".join([*slot.namespaces, slot.name])
        if full not in dependencies:
            dependencies.append(full)
        return f"{slot.namespaces[0]}/{slot.name}"
    if isinstance(slot, d.Array):
        return f"{_field_type(slot.value_type, dependencies)}[{slot.size}]"
    if isinstance(slot, d.BoundedSequence):
        return f"{_field_type(slot.value_type, dependencies)}[<={slot.maximum_size}]"
    if isinstance(slot, d.UnboundedSequence):
        return f"{_field_type(slot.value_type, dependencies)}[]"
    raise ValueError(f"unsupported field type {slot!r}")


def _fields(msg_class, dependencies: list) -> str:
    names = list(msg_class.get_fields_and_field_types())
    return "\n".join(f"{_field_type(slot, dependencies)} {name}" for name, slot in zip(names, msg_class.SLOT_TYPES))


def message_definition(msg_class) -> str:
    """The concatenated ros2msg definition of a message class and every type it uses (rosbag2's format)."""
    dependencies: list[str] = []
    parts = [_fields(msg_class, dependencies)]
    done = {type_name(msg_class)}
    i = 0
    while i < len(dependencies):
        name = dependencies[i]
        i += 1
        if name in done:
            continue
        done.add(name)
        package, _, base = name.split("/")
        parts.append("=" * 80 + f"\nMSG: {package}/{base}\n" + _fields(message_class(name), dependencies))
    return "\n".join(parts)


def type_hash(name: str) -> str:
    """RIHS01 hash of 'pkg/<msg|srv>/Type' from the package's installed type description (rosidl, Jazzy)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory  # noqa: PLC0415

    package, namespace, base = name.split("/")
    try:
        share = Path(get_package_share_directory(package))
    except PackageNotFoundError:
        raise ValueError(f"type {name}: package {package} is not in the ament index (source the workspace)") from None
    candidates = [share / namespace / f"{base}.json"]
    for suffix in ("_Request", "_Response", "_Event", "_Goal", "_Result", "_Feedback"):
        if base.endswith(suffix):
            candidates.append(share / namespace / f"{base[:-len(suffix)]}.json")
    for path in candidates:
        if path.is_file():
            for entry in json.loads(path.read_text())["type_hashes"]:
                if entry["type_name"] == name:
                    return entry["hash_string"]
    raise ValueError(f"type {name}: no type hash in {[str(c) for c in candidates]}")


class BagWriter:
    """Write rclpy messages (or their CDR bytes) into a new rosbag2 folder with MCAP storage."""

    def __init__(self, path, topics: dict[str, str | type]):
        """`path`: a folder that must not exist yet; `topics`: topic -> message type name or class."""
        from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: PLC0415

        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"bag {self.path} exists already: give a new folder (a bag is never overwritten)")
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections = {}
        self.counts: dict[str, int] = {}
        try:
            for topic, msg_type in topics.items():
                self.add_topic(topic, msg_type)
        except Exception:
            self.close()
            raise

    def add_topic(self, topic: str, msg_type) -> None:
        cls = message_class(msg_type) if isinstance(msg_type, str) else msg_type
        name = type_name(cls)
        self._connections[topic] = self._writer.add_connection(
            topic, name, msgdef=message_definition(cls), rihs01=type_hash(name))
        self.counts[topic] = 0

    def write(self, topic: str, message, stamp_ns: int) -> None:
        """`message`: an rclpy message, or its serialised CDR bytes; `stamp_ns`: log time, nanoseconds."""
        data = message if isinstance(message, (bytes, bytearray, memoryview)) else serialize_message(message)
        self._writer.write(self._connections[topic], int(stamp_ns), bytes(data))
        self.counts[topic] += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()  # writes metadata.yaml
            self._writer = None

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_bag(path):
    """Yield (topic, type name, log time ns, raw CDR bytes) of every message of a rosbag2 folder, in time order."""
    from rosbags.rosbag2 import Reader  # noqa: PLC0415

    with Reader(Path(path)) as reader:
        for connection, timestamp, raw in reader.messages():
            yield connection.topic, connection.msgtype, timestamp, bytes(raw)
