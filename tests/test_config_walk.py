"""tools/config_walk.py: how far the config travels from the train entry point.

Small packages written here show what the walk counts; the last test is this package's
figure, which docs/architecture.md states."""

import re
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import config_walk  # noqa: E402

GROUPS = {"", "model", "loss", "eval"}


def _package(tmp_path, name, modules):
    """Writes package `name` with {module: source} and returns its checkout root."""
    for module, source in {"__init__": "", **modules}.items():
        path = tmp_path / name / f"{module.replace('.', '/')}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(textwrap.dedent(source))
    return tmp_path


def _walk(root, name, entry="top:run"):
    module, _, function = entry.partition(":")
    return config_walk.walk(f"{name}.{module}:{function}", root, groups=GROUPS)


def test_groups_are_followed_and_leaves_are_not(tmp_path):
    root = _package(
        tmp_path,
        "pkg_a",
        {
            "top": """
                from pkg_a import low, mid
                def run(config):
                    helper(config)
                    mid.build(config.model)
                    low.use(config.loss.weight)   # a leaf: a plain value
                def helper(config):
                    return config.seed
            """,
            "mid": """
                from pkg_a import low
                def build(model_config):
                    low.shape(model_config)
            """,
            "low": """
                def shape(model_config):
                    return model_config.width
                def use(weight):
                    return weight
            """,
        },
    )
    walk = _walk(root, "pkg_a")
    assert walk.modules == ["pkg_a.top", "pkg_a.mid", "pkg_a.low"]
    assert (walk.moves, walk.stays, walk.climbs, walk.unresolved) == (2, 1, [], [])


def test_a_callback_holding_the_config_is_a_climb_and_one_holding_values_is_not(tmp_path):
    root = _package(
        tmp_path,
        "pkg_b",
        {
            "top": """
                from pkg_b import low
                def make_fn(config):
                    def fn(x):
                        return x * config.eval.size
                    return fn
                def run(config):
                    low.loop(make_fn(config))          # called back up into top
                    size = config.eval.size
                    low.loop(lambda x: x * size)       # holds a value: no config
            """,
            "low": """
                def loop(fn):
                    return fn(1)
            """,
        },
    )
    walk = _walk(root, "pkg_b")
    assert walk.climbs == [("pkg_b.low", "pkg_b.top")]
    assert walk.modules == ["pkg_b.top"]  # the callback goes down, the config stays up


def test_objects_that_keep_the_config_take_it_into_their_methods(tmp_path):
    root = _package(
        tmp_path,
        "pkg_c",
        {
            "top": """
                from pkg_c import evals
                def run(config):
                    return evals.build(config)
            """,
            "evals": """
                from pkg_c import scoring
                REGISTRY = {}
                def register(name):
                    def add(cls):
                        REGISTRY[name] = cls
                        return cls
                    return add
                class Base:
                    def __init__(self, config):
                        self.config = config
                @register("a")
                class A(Base):
                    def run(self):
                        return scoring.score(self.config.eval)
                def build(config):
                    return [REGISTRY[name](config) for name in REGISTRY]
            """,
            "scoring": """
                def score(eval_config):
                    return eval_config.size
            """,
        },
    )
    walk = _walk(root, "pkg_c")
    assert walk.modules == ["pkg_c.top", "pkg_c.evals", "pkg_c.scoring"]
    assert walk.climbs == [] and walk.unresolved == []


def test_registry_builders_and_sections_picked_by_name_are_followed(tmp_path):
    root = _package(
        tmp_path,
        "pkg_e",
        {
            "top": """
                from pkg_e import builders, evals
                def run(config):
                    builders.build(config.model)
                    names = ("a",)
                    evals.build({s: config[s] for s in evals.sections(names)})
            """,
            "builders": """
                from pkg_e import parts
                def _entry(registry, name):
                    return registry[name]
                def factory(cls):
                    def build(model_config):
                        return parts.width(model_config)
                    return build
                BUILDERS = {"x": lambda model_config: parts.depth(model_config), "y": factory(int)}
                def build(model_config):
                    return _entry(BUILDERS, model_config.kind)(model_config)
            """,
            "parts": """
                def width(model_config):
                    return model_config.width
                def depth(model_config):
                    return model_config.depth
            """,
            "evals": """
                from pkg_e import scoring
                import dataclasses
                REGISTRY = {}
                def register(name):
                    def add(cls):
                        REGISTRY[name] = cls
                        return cls
                    return add
                @dataclasses.dataclass(frozen=True)
                class Result:
                    value: float
                @register("a")
                class A:
                    section = "eval"
                    def __init__(self, config):
                        self.config = config
                    def run(self):
                        return scoring.score(self.config)
                def sections(names):
                    return tuple(REGISTRY[n].section for n in names)
                def build(sections):
                    return [REGISTRY[n](sections[REGISTRY[n].section]) for n in REGISTRY]
            """,
            "scoring": """
                def score(eval_config):
                    return eval_config.size
            """,
        },
    )
    walk = _walk(root, "pkg_e")
    assert walk.modules == [
        "pkg_e.top",
        "pkg_e.builders",
        "pkg_e.parts",
        "pkg_e.evals",
        "pkg_e.scoring",
    ]
    assert walk.unresolved == [] and walk.climbs == []
    assert ("pkg_e.evals:build", "pkg_e.evals:A") in walk.edges
    assert not any(callee == "pkg_e.evals:Result" for _, callee in walk.edges)
    # The whole config alone: sections are groups, not followed.
    whole = config_walk.walk("pkg_e.top:run", root, groups={""})
    assert whole.modules == ["pkg_e.top"]


def test_a_hand_over_the_walk_cannot_name_is_listed(tmp_path):
    root = _package(
        tmp_path,
        "pkg_d",
        {
            "top": """
                def run(config, hooks):
                    for hook in hooks:
                        hook(config)
            """
        },
    )
    walk = _walk(root, "pkg_d")
    assert walk.unresolved == ["pkg_d.top:run: hook"]


def test_the_train_entry_figure_is_the_one_in_the_docs():
    """docs/architecture.md states the walk of this package; a change that moves it
    updates the docs (run `python tools/config_walk.py --verbose`)."""
    whole = config_walk.walk(groups={""})
    with_groups = config_walk.walk()
    assert whole.climbs == [] and with_groups.climbs == []
    docs = (ROOT / "docs" / "architecture.md").read_text()
    stated = re.search(r"<!-- config-walk: (\d+) modules whole, (\d+) with groups -->", docs)
    if stated is None:
        pytest.fail("docs/architecture.md has no <!-- config-walk: ... --> figure")
    assert (int(stated[1]), int(stated[2])) == (len(whole.modules), len(with_groups.modules)), (
        f"the walk is {len(whole.modules)} / {len(with_groups.modules)} modules: update "
        "docs/architecture.md"
    )
