"""Every Python block of the documentation runs as written.

The pages are `README.md`, every Markdown page under `docs/` and the files
they pull in with an `{include}` directive. Their Python blocks (```` ```python
````, ```` ```pycon ```` and MyST's ```` ```{code-block} python ````) run in
order, in one namespace per page, in an empty temporary working folder, on
the backend the suite runs on. A block whose first line starts with ``>>>``
is a doctest: its printed output is checked too.

Two conventions, both invisible on the site and on GitHub:

* ``<!-- snippet-needs: tensorflow -->`` (or ``jax``, ``torch``, several
  names, or ``network``) on the line before a block: the block runs only on
  those backends, or only where the internet is reachable; elsewhere it is
  left out and the test says so.
* A page may read ``mnist.npz`` from the working folder (a Keras-format MNIST
  file, as the README's example does): the test links
  ``../shared/data/mnist-subset.npz`` there (a copy) when that file exists.
"""

from __future__ import annotations

import doctest
import functools
import os
import re
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO_ROOT.parent / "shared" / "data" / "mnist-subset.npz"
#: Files a page may read from its working folder, and where the test gets them.
LOCAL_FILES = {"mnist.npz": SHARED_MNIST}
PYTHON_LANGUAGES = {"python", "py", "python3", "pycon"}
BACKENDS = {"tensorflow", "jax", "torch"}

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
INCLUDE = re.compile(r"^```\{include\}\s+(\S+)", re.M)
NEEDS = re.compile(r"^<!--\s*snippet-needs:\s*(?P<needs>[\w ,-]+?)\s*-->$")


@dataclass(frozen=True)
class Block:
    """One Python block: its page, the line of its first code line, its code
    and what it needs (backends and/or "network")."""

    page: Path
    line: int
    code: str
    needs: frozenset[str]

    @property
    def where(self) -> str:
        page = self.page
        if page.is_relative_to(REPO_ROOT):
            page = page.relative_to(REPO_ROOT)
        return f"{page}:{self.line}"


def language(info: str) -> str:
    info = info.strip()
    directive = re.match(r"\{code-block\}\s*(\S+)", info)
    if directive:
        return directive.group(1).lower()
    return info.split()[0].lower() if info else ""


def python_blocks(page: Path) -> list[Block]:
    """The Python blocks of a Markdown page, in order."""
    lines = page.read_text().splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence = opening.group("fence")
        end = i + 1
        while end < len(lines) and not re.match(
            rf"^ {{0,3}}{fence[0]}{{{len(fence)},}}\s*$", lines[end]
        ):
            end += 1
        if language(opening.group("info")) in PYTHON_LANGUAGES:
            body = lines[i + 1 : end]
            first = i + 2  # 1-based line number of the first code line
            if opening.group("info").strip().startswith("{code-block}"):
                while body and body[0].startswith(":"):  # directive options
                    body, first = body[1:], first + 1
            previous = lines[i - 1].strip() if i else ""
            needs = NEEDS.match(previous)
            names = re.split(r"[\s,]+", needs.group("needs")) if needs else []
            blocks.append(Block(page, first, "\n".join(body), frozenset(names)))
        i = end + 1
    return blocks


def documentation_pages() -> list[Path]:
    """README.md, the pages under docs/ and the files they include."""
    pages = [REPO_ROOT / "README.md"]
    for page in sorted((REPO_ROOT / "docs").rglob("*.md")):
        if "_build" in page.relative_to(REPO_ROOT / "docs").parts:
            continue
        pages.append(page)
        for target in INCLUDE.findall(page.read_text()):
            pages.append((page.parent / target).resolve())
    return list(dict.fromkeys(pages))


@functools.cache
def network_available() -> bool:
    """Whether the host of Keras's dataset downloads answers."""
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=3).close()
    except OSError:
        return False
    return True


def missing_need(block: Block) -> str | None:
    """Why the block cannot run here, or None."""
    unknown = block.needs - BACKENDS - {"network"}
    if unknown:
        raise ValueError(f"{block.where}: unknown snippet-needs {sorted(unknown)}")
    backends = block.needs & BACKENDS
    if backends and keras.backend.backend() not in backends:
        return f"{block.where} runs on {', '.join(sorted(backends))} only"
    if "network" in block.needs and not network_available():
        return f"{block.where} needs the internet, which is not reachable"
    return None


def run_block(block: Block, namespace: dict) -> None:
    """Executes one block in ``namespace``; fails naming the page and line."""
    if block.code.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(
            block.code, namespace, block.where, str(block.page), block.line - 1
        )
        report: list[str] = []
        runner = doctest.DocTestRunner(
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        )
        result = runner.run(test, out=report.append, clear_globs=False)
        assert result.failed == 0, f"{block.where}: doctest failed\n" + "".join(report)
        return
    # Blank lines in front, so that a traceback gives the page's line numbers.
    source = "\n" * (block.line - 1) + block.code
    try:
        exec(compile(source, str(block.page), "exec"), namespace)
    except Exception as err:
        raise AssertionError(
            f"the Python block at {block.where} does not run: "
            f"{type(err).__name__}: {err}\n\n{block.code}"
        ) from err


def run_page(blocks: list[Block]) -> list[str]:
    """Runs a page's blocks in order in one namespace; returns the reasons
    for the blocks left out."""
    namespace: dict = {"__name__": "__main__"}
    left_out = []
    for block in blocks:
        reason = missing_need(block)
        if reason:
            left_out.append(reason)
        else:
            run_block(block, namespace)
    return left_out


def mnist_unavailable(blocks: list[Block]) -> str | None:
    """Why a page that loads MNIST cannot get it here, or None."""
    code = "\n".join(block.code for block in blocks)
    if "keras.datasets.mnist.load_data" not in code and "mnist.npz" not in code:
        return None
    keras_home = os.environ.get("KERAS_HOME", Path.home() / ".keras")
    keras_cache = Path(keras_home) / "datasets" / "mnist.npz"
    if SHARED_MNIST.exists() or (
        "keras.datasets.mnist.load_data" in code
        and (keras_cache.exists() or network_available())
    ):
        return None
    return (
        f"no MNIST: {SHARED_MNIST} is absent, and neither the Keras cache "
        f"{keras_cache} nor the internet is there to load it from"
    )


PAGES = [page for page in documentation_pages() if python_blocks(page)]


@pytest.fixture
def working_folder(tmp_path, monkeypatch):
    """An empty working folder with the files pages may read, and no figures
    left open afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for name, source in LOCAL_FILES.items():
        if source.exists():
            shutil.copyfile(source, tmp_path / name)
    yield tmp_path
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    if keras.backend.backend() == "jax":
        keras.distribution.set_distribution(None)


@pytest.mark.parametrize(
    "page", PAGES, ids=[str(p.relative_to(REPO_ROOT)) for p in PAGES]
)
def test_every_python_block_of_the_page_runs(page, working_folder):
    blocks = python_blocks(page)
    reason = mnist_unavailable(blocks)
    if reason:
        pytest.skip(reason)
    start = time.perf_counter()
    left_out = run_page(blocks)
    print(f"{len(blocks)} blocks in {time.perf_counter() - start:.1f} s")
    if len(left_out) == len(blocks):
        pytest.skip("; ".join(left_out))
    for reason in left_out:
        print(f"left out: {reason}")


def test_the_pages_with_code_are_collected():
    names = {str(page.relative_to(REPO_ROOT)) for page in PAGES}
    assert {"README.md", "docs/getting_started.md", "docs/optimizers.md"} <= names
    assert all(python_blocks(page) for page in PAGES)


# The runner itself, on pages written here.


def write_page(folder: Path, text: str) -> Path:
    page = folder / "page.md"
    page.write_text(text)
    return page


def test_a_block_that_does_not_run_fails_naming_page_and_line(tmp_path):
    page = write_page(
        tmp_path,
        "# Title\n\n```python\nx = 1\n```\n\nText.\n\n```python\ny = x + z\n```\n",
    )
    blocks = python_blocks(page)
    assert [block.line for block in blocks] == [4, 10]
    with pytest.raises(AssertionError, match=r"page\.md:10.*NameError.*'z'"):
        run_page(blocks)


def test_blocks_of_a_page_share_one_namespace_in_order(tmp_path):
    page = write_page(
        tmp_path,
        "```python\nx = 2\n```\n\n```bash\nexit 1\n```\n\n"
        "```{code-block} python\n:caption: a directive option\nassert x == 2\n```\n",
    )
    blocks = python_blocks(page)
    assert [block.code for block in blocks] == ["x = 2", "assert x == 2"]
    assert run_page(blocks) == []


def test_doctest_blocks_check_their_output(tmp_path):
    good = write_page(tmp_path, "```pycon\n>>> 1 + 1\n2\n```\n")
    assert run_page(python_blocks(good)) == []
    wrong = write_page(tmp_path, "```python\n>>> 1 + 1\n3\n```\n")
    with pytest.raises(AssertionError, match="doctest failed"):
        run_page(python_blocks(wrong))


def test_needs_marker_leaves_a_block_out_elsewhere(tmp_path):
    other = sorted(BACKENDS - {keras.backend.backend()})[0]
    page = write_page(
        tmp_path,
        f"<!-- snippet-needs: {other} -->\n```python\nraise SystemExit\n```\n\n"
        f"<!-- snippet-needs: {keras.backend.backend()} -->\n```python\nx = 1\n```\n",
    )
    (left_out,) = run_page(python_blocks(page))
    assert f"runs on {other} only" in left_out
    unknown = write_page(tmp_path, "<!-- snippet-needs: gpu -->\n```python\n```\n")
    with pytest.raises(ValueError, match="unknown snippet-needs.*gpu"):
        run_page(python_blocks(unknown))
