"""Every test in the suite checks something: an AST scan of tests/ fails on a test function with
no `assert`, no `pytest.raises` / `pytest.fail` and no call to one of the helpers below, which
assert on the test's behalf. A test that only runs code proves that it did not crash, and says
nothing about what it was meant to check.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# Helpers that assert (or fail) for the test that calls them, by name. Keep this list short: a
# new helper that checks something belongs here only if its name says what it asserts.
CHECKING_HELPERS = frozenset(
    {
        "assert_error",  # tests/services/gateway/test_api.py: an HTTP error's code, shape and field
        "assert_exact",  # tests/faults: exact counts, every image once
        "assert_no_tofu",  # tests/shared/render/test_tofu.py: no .notdef box drawn
        "finish_exactly",  # tests/faults/test_cluster.py: completed, exact counts, services up
        "publish_refused",  # tests/security/conftest.py: the server refused and said so
        "request_refused",
    }
)
PYTEST_CHECKS = frozenset({"raises", "fail"})


def checks(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether the function (or a function nested in it) asserts or calls something that does."""
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            called = node.func
            name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
            if name in CHECKING_HELPERS:
                return True
            if (
                isinstance(called, ast.Attribute)
                and isinstance(called.value, ast.Name)
                and called.value.id == "pytest"
                and name in PYTEST_CHECKS
            ):
                return True
    return False


def collected(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Module-level `test*` functions and `test*` methods of `Test*` classes."""
    found: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            found += [
                item
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test")
            ]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            found.append(node)
    return found


def unchecked(root: Path) -> list[str]:
    """`path:line name` of every test function under `root` that checks nothing."""
    problems = []
    for path in sorted(root.rglob("test_*.py")):
        if "node_modules" in path.parts:
            continue
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        problems += [
            f"{path.relative_to(root.parent)}:{function.lineno} {function.name}"
            for function in collected(tree)
            if not checks(function)
        ]
    return problems


def test_every_test_function_checks_something() -> None:
    problems = unchecked(TESTS)
    assert not problems, "test functions that assert nothing:\n" + "\n".join(problems)


def test_the_scan_sees_a_test_that_checks_nothing(tmp_path: Path) -> None:
    """The control: the scan flags what it is meant to, and accepts each kind of check."""
    suite = tmp_path / "tests"
    suite.mkdir()
    (suite / "test_sample.py").write_text(
        "import pytest\n"
        "def test_runs_only():\n    print('ran')\n"
        "def test_asserts():\n    assert 1\n"
        "def test_raises():\n    with pytest.raises(ValueError):\n        int('x')\n"
        "def test_helper(http):\n    assert_error(http, 400)\n"
        "def test_nested():\n    def inner():\n        assert 1\n    inner()\n"
        "class TestGroup:\n    def test_method_only(self):\n        pass\n"
        "def helper_not_a_test():\n    pass\n",
        "utf-8",
    )
    assert unchecked(suite) == [
        "tests/test_sample.py:2 test_runs_only",
        "tests/test_sample.py:16 test_method_only",
    ]
