"""engine/ never imports bpy, torch or training; addon/ never imports torch (DESIGN.md's boundaries);
no import cycle inside engine/ or training/."""
import re

from conftest import ROOT

IMPORT = r"^\s*(import|from)\s+{}\b"


def _offenders(folder, module):
    pat = re.compile(IMPORT.format(module), re.M)
    return [str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*.py") if pat.search(p.read_text())]


def test_engine_never_imports_bpy():
    assert (ROOT / "engine").is_dir()
    assert _offenders("engine", "bpy") == []


def test_addon_never_imports_torch():
    assert _offenders("addon", "torch") == []


def test_addon_pure_modules_import_without_bpy():
    """The add-on's numpy and file modules (scene.convert, scene.keyreduce and retarget's solve,
    presets, names) import, and read the shipped presets, with Blender's modules unavailable."""
    import subprocess
    import sys
    code = ("import sys; sys.path.insert(0, %r); sys.modules.update(bpy=None, mathutils=None, bpy_extras=None);"
            "import addon.scene.convert, addon.scene.keyreduce, addon.retarget.solve, addon.retarget.names;"
            "from addon.retarget.presets import load_preset; assert load_preset('smpl')['bones'];"
            "assert 'bpy' not in {k for k, v in sys.modules.items() if v is not None}")
    out = subprocess.run([sys.executable, "-c", code % str(ROOT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_the_check_would_catch_an_import(tmp_path):
    pat = re.compile(IMPORT.format("torch"), re.M)
    assert pat.search("import os\n    import torch.nn as nn\n")
    assert pat.search("from torch import nn")
    assert not pat.search("import torchvision_free_name\n# torch is not imported here")


def test_engine_never_imports_torch_or_training():
    assert _offenders("engine", "torch") == []
    assert _offenders("engine", "training") == []


def _import_graph(package):
    """{module: set of modules of the same top package it imports} from the source (static)."""
    import ast
    graph = {}
    for p in (ROOT / package).rglob("*.py"):
        rel = p.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        name = ".".join(parts)
        here = parts if is_pkg else parts[:-1]
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                mod = base + (node.module.split(".") if node.module else [])
                for a in node.names:                    # a submodule, or a name from the module
                    sub = ROOT.joinpath(*mod, a.name)
                    deps.add(".".join(mod + [a.name]) if sub.with_suffix(".py").exists() or sub.is_dir()
                             else ".".join(mod))
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = deps
    mods = set(graph)
    return {m: {d for d in deps if d in mods and d != m} for m, deps in graph.items()}


def _cycles(graph):
    """Modules on an import cycle (Tarjan's strongly connected components of size > 1)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_inside_engine_or_training():
    """A package's __init__ that re-exports its modules is not a cycle by itself; a module that
    imports its own package's __init__ (instead of the sibling module) would make one."""
    for pkg in ("engine", "training"):
        assert _cycles(_import_graph(pkg)) == [], pkg


ESTIMATORS = ("engine.estimate.baseline", "engine.estimate.temporal", "engine.estimate.refine")


def test_no_estimator_imports_another():
    """The estimators share engine.estimate's pieces (camera, ik, network_inputs, onnx_runtime),
    never each other's modules."""
    graph = _import_graph("engine")
    assert {m: sorted(graph[m] & set(ESTIMATORS)) for m in ESTIMATORS} == {m: [] for m in ESTIMATORS}


def test_the_cycle_check_would_catch_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
