"""engine/ never imports bpy; addon/ never imports torch (DESIGN.md's two boundaries)."""
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


def test_the_check_would_catch_an_import(tmp_path):
    pat = re.compile(IMPORT.format("torch"), re.M)
    assert pat.search("import os\n    import torch.nn as nn\n")
    assert pat.search("from torch import nn")
    assert not pat.search("import torchvision_free_name\n# torch is not imported here")
