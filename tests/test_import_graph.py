"""The import graph of src/bibcrop: no cycles, function-level imports included."""

from __future__ import annotations

import textwrap

from bibcrop.import_graph import closure, find_cycles, import_graph


def _package(root, files: dict[str, str]):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_bibcrop_has_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles in src/bibcrop:\n" + "\n".join(
        " <-> ".join(group) for group in cycles
    )


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    root = _package(
        tmp_path / "bibcrop",
        {
            "__init__.py": "",
            "a.py": "from bibcrop.b import g\n",
            "b.py": "def g():\n    from bibcrop import a\n    return a\n",
            "c.py": "import bibcrop.a\n",
        },
    )
    graph = import_graph(root)
    assert graph["bibcrop.b"] == {"bibcrop.a"}  # the import inside g() counts
    assert find_cycles(graph) == [["bibcrop.a", "bibcrop.b"]]


def test_relative_and_lazy_package_imports_are_followed(tmp_path):
    root = _package(
        tmp_path / "bibcrop",
        {
            "__init__.py": "",
            "pkg/__init__.py": '_EXPORTS = {"thing": "impl"}\n',
            "pkg/impl.py": "from . import helper\n",
            "pkg/helper.py": "",
            "user.py": "def f():\n    from bibcrop.pkg import thing\n",
        },
    )
    graph = import_graph(root)
    assert graph["bibcrop.user"] == {"bibcrop.pkg.impl"}
    assert graph["bibcrop.pkg.impl"] == {"bibcrop.pkg.helper"}
    assert find_cycles(graph) == []
    assert closure(graph, ["bibcrop.user"]) == {
        "bibcrop",
        "bibcrop.user",
        "bibcrop.pkg",
        "bibcrop.pkg.impl",
        "bibcrop.pkg.helper",
    }


# What each library package may import from bibcrop: docs/ARCHITECTURE.md's table.
FOUNDATION = {
    "bibcrop.project", "bibcrop.atomic", "bibcrop.layout", "bibcrop.import_graph",
    "bibcrop.imaging", "bibcrop.progress",
}  # fmt: skip
ALLOWED = {
    **{name: set() for name in FOUNDATION},
    "bibcrop.quiet": {"bibcrop.progress"},  # the MLflow download bar follows the progress mode
    "bibcrop.overrides": set(),  # Hydra's override grammar: what it refuses, the quoted form
    "bibcrop.config": {"bibcrop.project", "bibcrop.atomic"},
    "bibcrop.tracking": {"bibcrop.atomic", "bibcrop.project"},
    "bibcrop.data": {
        "bibcrop.atomic",
        "bibcrop.imaging",
        "bibcrop.progress",
        "bibcrop.project",
        "bibcrop.quiet",  # tfrecords' workers import TensorFlow as the stage does
        "bibcrop.tracking",
    },
    "bibcrop.model": set(),
    "bibcrop.training": FOUNDATION | {"bibcrop.data", "bibcrop.model", "bibcrop.tracking"},
    "bibcrop.inference": {
        "bibcrop.atomic",
        "bibcrop.data",
        "bibcrop.imaging",
        "bibcrop.model",
        "bibcrop.quiet",  # LiteRT's XNNPACK line
        "bibcrop.tracking",
    },
    "bibcrop.evaluation": {
        "bibcrop.atomic",
        "bibcrop.progress",
        "bibcrop.data",
        "bibcrop.inference",
        "bibcrop.layout",
    },
    "bibcrop.export": {
        "bibcrop.atomic",
        "bibcrop.progress",
        "bibcrop.crop",  # the crop service, registered beside the segmenter
        "bibcrop.inference",
        "bibcrop.layout",
        "bibcrop.tracking",
    },
    "bibcrop.crop": {
        "bibcrop.atomic",
        "bibcrop.data",
        "bibcrop.imaging",
        "bibcrop.progress",
        "bibcrop.inference",  # the crop service (segmenter + crop settings as one pyfunc)
        "bibcrop.project",
        "bibcrop.engine",  # crop.engine=ray: the Ray actor pool
    },
    "bibcrop.engine": {"bibcrop.progress"},
    "bibcrop.read": {
        "bibcrop.atomic",
        "bibcrop.crop",  # photo decoding and the crop stage's records (its parse)
        "bibcrop.engine",  # read.engine=ray
        "bibcrop.progress",
        "bibcrop.project",
    },
    "bibcrop.summary": {"bibcrop.config", "bibcrop.layout", "bibcrop.project", "bibcrop.read"},
    "bibcrop.checks": {
        "bibcrop.project",
        "bibcrop.data",
        "bibcrop.crop",
        "bibcrop.inference",
        "bibcrop.read",
        "bibcrop.training",
    },
    "bibcrop.cli": {
        "bibcrop.config",
        "bibcrop.checks",
        "bibcrop.overrides",
        "bibcrop.project",
        "bibcrop.quiet",
        "bibcrop.read",  # `bibcrop find`: the event index
        "bibcrop.summary",
        "bibcrop.tracking",
    },
}


def _layer(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_library_packages_import_only_the_layers_below_them():
    graph = import_graph()
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if _layer(module) in ALLOWED
        and _layer(target) != _layer(module)
        and _layer(target) not in ALLOWED[_layer(module)]
    )
    assert not wrong, "see docs/ARCHITECTURE.md:\n" + "\n".join(wrong)
    unlisted = {_layer(m) for m in graph} - set(ALLOWED) - {"bibcrop", "bibcrop.stages"}
    assert not unlisted, f"add {sorted(unlisted)} to docs/ARCHITECTURE.md and ALLOWED"
