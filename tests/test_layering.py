"""Imports point down (base -> formats -> system -> ops -> commands -> cli), no
import cycles, typer only in cli/: the rule in tests/layering.py, on the real
tree, and the checker itself on trees with a planted fault."""
import os
import shutil

import layering

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_package_imports_point_down():
    assert layering.check(ROOT) == []


def test_every_module_has_a_layer():
    names = layering.modules(ROOT)
    assert "crashkeep.formats.ramoops" in names and "crashkeep.cli.app" in names
    for name in names:
        top = name.split(".")[1] if "." in name else ""
        if top in layering.LAYERS[1:]:
            assert layering.layer_of(name) == layering.LAYERS.index(top), name


def _tree(tmp_path):
    shutil.copytree(os.path.join(ROOT, "crashkeep"), str(tmp_path / "crashkeep"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"))
    assert layering.check(str(tmp_path)) == []
    return tmp_path


def _plant(tmp_path, rel, text):
    with open(str(tmp_path / "crashkeep" / rel), "a") as f:
        f.write(text)


def test_checker_fails_on_a_planted_upward_import(tmp_path):
    t = _tree(tmp_path)
    _plant(t, "formats/ramoops.py", "\n\ndef _late():\n    from crashkeep.commands import board\n"
                                    "    return board\n")
    problems = layering.check(str(t))
    assert any(p.startswith("crashkeep/formats/ramoops.py:") and
               "crashkeep.formats.ramoops (formats) imports crashkeep.commands.board (commands): "
               "upward" in p for p in problems), problems
    # and nothing but what the planted line brought (it also closes a cycle through board)
    assert all("crashkeep.formats.ramoops" in p for p in problems), problems


def test_checker_fails_on_an_upward_import_by_name(tmp_path):
    t = _tree(tmp_path)
    _plant(t, "system/keeparea.py", '\n_SECTIONS = ["crashkeep.ops.bootstate"]\n')
    problems = layering.check(str(t))
    assert any("imports crashkeep.ops.bootstate (ops): upward" in p for p in problems), problems


def test_checker_fails_on_a_cycle_in_one_layer(tmp_path):
    t = _tree(tmp_path)
    _plant(t, "system/mtd.py", "\n\ndef _late():\n    from crashkeep.system import keeparea\n"
                               "    return keeparea\n")
    problems = layering.check(str(t))
    assert any(p.startswith("import cycle:") and "crashkeep.system.keeparea" in p
               and "crashkeep.system.mtd" in p for p in problems), problems


def test_checker_fails_on_typer_outside_cli(tmp_path):
    t = _tree(tmp_path)
    _plant(t, "commands/save.py", "\nimport typer  # noqa\n")
    problems = layering.check(str(t))
    assert any(p.startswith("crashkeep/commands/save.py:") and "imports typer outside" in p
               for p in problems), problems
