"""The installed package: the published Python surface is there, and the type
stubs (shipped with py.typed) describe exactly what the extension has."""
import ast
import os

import tachyon

PKG_DIR = os.path.dirname(tachyon.__file__)


def stub_tree():
    with open(os.path.join(PKG_DIR, "__init__.pyi")) as f:
        return ast.parse(f.read())


def test_spec_section_4_names():
    for name in ("Bus", "TachyonError", "PeerDeadError", "make_type_id", "route_id", "msg_type"):
        assert hasattr(tachyon, name), name
    assert issubclass(tachyon.PeerDeadError, tachyon.TachyonError)
    for method in (
        "listen", "connect", "send", "send_zero_copy", "recv_zero_copy", "drain_batch",
        "flush", "set_polling_mode", "__iter__", "__enter__", "__exit__",
    ):
        assert hasattr(tachyon.Bus, method), method
    assert hasattr(tachyon.Bus, "_bus")


def test_py_typed_is_installed():
    assert os.path.exists(os.path.join(PKG_DIR, "py.typed"))


def test_stub_matches_the_extension():
    tree = stub_tree()
    top = {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            top[node.name] = node
        elif isinstance(node, ast.AnnAssign):
            top[node.target.id] = node
        elif isinstance(node, ast.Assign):  # an alias: Batch = RxBatchGuard
            for target in node.targets:
                top[target.id] = node
    public = set(tachyon.__all__)
    assert public <= set(top), public - set(top)
    for name, node in top.items():
        if name.startswith("_") and name != "__version__":
            continue
        assert hasattr(tachyon, name), "stub has %s, the module does not" % name
        if not isinstance(node, ast.ClassDef):
            continue
        cls = getattr(tachyon, name)
        members = {
            n.name if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) else n.target.id
            for n in node.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.AnnAssign))
        }
        for m in members - {"__buffer__", "__iter__", "__getitem__"}:
            assert hasattr(cls, m), "stub says %s.%s exists" % (name, m)
        actual = {m for m in vars(cls) if not m.startswith("_")}
        assert actual <= members, "not in the stub: %s.%s" % (name, actual - members)
