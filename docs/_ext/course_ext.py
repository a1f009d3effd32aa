"""Small Sphinx helpers for the course and the derivation chapters.

``solution``
    A folded block (HTML ``<details>``): ``:::{solution} Title`` ... ``:::`` in MyST. The content
    is ordinary markup, so a solution can ``literalinclude`` the tested code it describes.

``equation-code``
    ``.. equation-code:: literate_tx.numpy_backend.attention`` lists, for every numbered equation
    of the module's docstring, the source lines that cite it (``eq. (attn-qkv)``), read from the
    source file at build time: the code is included, never copied.

Equation numbers
    A labelled equation is shown, and referenced, by its label — ``(attn-qkv)`` — the name the
    code's comments cite, instead of a running number.

Notebook downloads
    Every MyST notebook page (a ``.md`` source with a ``kernelspec``) is also written as a
    Jupyter notebook, ``_notebooks/<page>.ipynb`` in the output, and linked under its title.
"""

from __future__ import annotations

import html
import importlib
import inspect
import os
import re
import textwrap
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective


# -- folded solutions ----------------------------------------------------------------------------
class details(nodes.General, nodes.Element):
    """A ``<details>`` element; ``summary`` holds the visible title."""


def _visit_details(self, node):
    kind = "ltx-code" if node.get("ltx_eq_label") else "ltx-solution"
    summary = html.escape(node["summary"])
    self.body.append(f'<details class="{kind}"><summary>{summary}</summary>\n')


def _depart_details(self, node):
    self.body.append("</details>\n")


def _skip(self, node):  # non-HTML builders: show the content unfolded
    pass


class SolutionDirective(SphinxDirective):
    optional_arguments = 1
    final_argument_whitespace = True
    has_content = True

    def run(self):
        title = self.arguments[0] if self.arguments else "Solution"
        node = details(summary=title)
        self.state.nested_parse(self.content, self.content_offset, node)
        return [node]


# -- equation to code ----------------------------------------------------------------------------
_LABEL = re.compile(r":label:\s*([\w-]+)")


class EquationCodeDirective(SphinxDirective):
    required_arguments = 1
    option_spec = {"context": directives.nonnegative_int}

    def run(self):
        module = importlib.import_module(self.arguments[0])
        path = inspect.getsourcefile(module)
        self.env.note_dependency(path)
        lines = inspect.getsource(module).splitlines()
        labels = _LABEL.findall(module.__doc__ or "")
        result = []
        if not labels:
            return result
        table = nodes.bullet_list()
        for label in labels:
            cite = re.compile(rf"\beqs?\.\s*\((?:[\w-]+\s*(?:to|,|-)\s*)?{re.escape(label)}\)")
            hits = [i for i, line in enumerate(lines) if cite.search(line)
                    and not line.lstrip().startswith((":label:", "r\"\"\"", "\"\"\""))
                    and "#" in line]
            item = nodes.list_item()
            para = nodes.paragraph()
            para += nodes.strong(text=f"({label})")
            if not hits:
                para += nodes.Text(" — cited by no code line (prose only, or used by another "
                                   "module).")
                item += para
                table += item
                continue
            where = f"{len(hits)} line{'s' if len(hits) > 1 else ''} of " \
                f"{self.arguments[0].rsplit('.', 1)[-1]}.py"
            para += nodes.Text(f" — {where}:")
            item += para
            # The same code, folded, to be moved right under its equation (_place_code).
            near = details(summary=f"The code of ({label}): {where}")
            near["ltx_eq_label"] = label
            for i in hits:
                func = _enclosing_def(lines, i)
                start, stop = _context(lines, i, self.options.get("context", 3))
                text = textwrap.dedent("\n".join(lines[start:stop]))
                for parent in (item, near):
                    block = nodes.literal_block(text, text, language="python")
                    block["highlight_args"] = {"hl_lines": [i - start + 1]}
                    caption = nodes.paragraph()
                    caption += nodes.emphasis(
                        text=f"lines {start + 1}-{stop}" + (f", in {func}" if func else "")
                        + f" (line {i + 1} cites it)")
                    parent += caption
                    parent += block
            table += item
            result.append(near)
        result.insert(0, table)
        return result


def _place_code(app, doctree):
    """Move each equation's folded code right under the equation; drop it if the equation is
    not on this page (the list in *Equations in the code* still has it)."""
    equations = {node["label"]: node for node in doctree.findall(nodes.math_block)
                 if node.get("label")}
    for near in list(doctree.findall(details)):
        label = near.get("ltx_eq_label")
        if label is None:
            continue
        near.parent.remove(near)
        target = equations.get(label)
        if target is not None:
            target.parent.insert(target.parent.index(target) + 1, near)


def _context(lines, index, before):
    """The cited line, up to ``before`` code lines above it in the same function body (never
    its docstring), and the lines that finish its statement (open brackets)."""
    start = index
    while start > 0 and index - start < before:
        prev = lines[start - 1]
        if (not prev.strip() or prev.strip().endswith('"""') or prev.lstrip().startswith("def ")
                or prev.lstrip().startswith("@")):
            break
        start -= 1
    stop, depth = index + 1, 0
    for line in lines[start:index + 1]:
        code = line.split("#", 1)[0]
        depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
    while depth > 0 and stop < len(lines):
        code = lines[stop].split("#", 1)[0]
        depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
        stop += 1
    return start, stop


def _enclosing_def(lines, index):
    for j in range(index, -1, -1):
        m = re.match(r"\s*def (\w+)", lines[j])
        if m:
            return f"{m.group(1)}()"
        if re.match(r"class (\w+)", lines[j]):
            return None
    return None


# -- equations shown by their labels -------------------------------------------------------------
def _label_numbers(app, doctree, docname):
    """Show each labelled display equation as ``(label)`` rather than ``(n)``."""
    for node in doctree.findall(nodes.math_block):
        if node.get("label") and node.get("number") is not None:
            node["number"] = node["label"]


def _patch_math_domain(app):
    from sphinx.domains.math import MathDomain

    if getattr(MathDomain.resolve_xref, "_by_label", False):
        return
    original = MathDomain.resolve_xref

    def resolve_xref(self, env, fromdocname, builder, typ, target, node, contnode):
        ref = original(self, env, fromdocname, builder, typ, target, node, contnode)
        if ref is not None:
            ref.children = [nodes.Text(f"({target})")]
        return ref

    resolve_xref._by_label = True
    MathDomain.resolve_xref = resolve_xref


# -- one block's backward pass, traced by the pure-Python backend ---------------------------------
#: For each backward step of a pre-norm block (as the pure-Python trace names it): the rule.
_BACKWARD_RULES = {
    "d block output": "the gradient arriving from the block above (or the final norm)",
    "d mlp output": "residual sum: copied unchanged into the MLP branch, eq. (residual)",
    "d mlp activation": "through W_down: dh = dy W_down^T, eq. (linear-backward)",
    "d mlp up pre-activation": "times the activation's derivative, eq. (activations)",
    "d residual stream after attention": "MLP branch (through mlp_norm, eq. (ln-backward)) "
                                         "+ the residual copy",
    "d attention output": "residual sum: copied into the attention branch, eq. (residual)",
    "d heads merged": "through W_o, then split into heads, eq. (attn-backward)",
    "d attention weights": "da = dy v^T, eq. (attn-backward)",
    "d attention scores": "softmax backward, eq. (softmax-backward), times 1/sqrt(D)",
    "d queries": "dq = ds k, eq. (attn-backward)",
    "d keys": "dk = ds^T q, eq. (attn-backward)",
    "d values": "dv = a^T dy, eq. (attn-backward)",
    "d block input": "q, k, v projections back (eq. (linear-backward)), attn_norm "
                     "(eq. (ln-backward)), + the residual copy",
}


class BackwardTraceDirective(SphinxDirective):
    """A literal table: one pre-norm block's backward pass, step by step, from the trace."""

    def run(self):
        import numpy as np

        import literate_tx as ltx
        from literate_tx.python_backend.trace import Trace

        cfg = ltx.ModelConfig(vocab_size=16, d_model=8, n_layers=1, n_heads=2, d_ff=16,
                              max_seq_len=8)
        trace = Trace()
        model = ltx.create_model(cfg, backend="python", seed=0, dtype="float64", trace=trace)
        model.loss_and_grads(np.array([[1, 5, 2, 7]]), np.array([[5, 2, 7, 3]]))
        rows = [r for r in trace.records if r.phase == "backward" and r.where == "block 0"]
        lines = [f"{'step':<35}{'shape':<25}{'std':>9}   rule", "-" * 110]
        for r in rows:
            rule = _BACKWARD_RULES.get(r.step, "")
            lines.append(f"{r.step:<35}{r.shape_text():<25}{r.std:>9.2e}   {rule}")
        text = "\n".join(lines)
        block = nodes.literal_block(text, text)
        block["language"] = "none"
        return [block]


# -- the gallery in learning order ---------------------------------------------------------------
class GalleryOrder:
    """sphinx-gallery sort key: the examples in the order a learner should read them.

    Scripts not listed here (new ones) come after the listed ones, alphabetically; the
    benchmark, reference material rather than a lesson, comes last.
    """

    ORDER = (
        "plot_hand_built_attention.py",
        "plot_python_trace.py",
        "plot_positions.py",
        "plot_attention_and_statistics.py",
        "plot_architecture_ablation.py",
        "plot_train_digits.py",
        "plot_char_lm.py",
        "plot_huggingface.py",
    )
    LAST = ("plot_backend_benchmark.py",)

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = os.path.basename(filename)
        if name in self.ORDER:
            return (0, self.ORDER.index(name), name)
        return (2 if name in self.LAST else 1, 0, name)

    def __repr__(self):
        return "GalleryOrder()"


# -- notebook downloads --------------------------------------------------------------------------
def _is_notebook(env, docname):
    path = Path(env.doc2path(docname))
    if path.suffix != ".md":
        return False
    head = path.read_text(encoding="utf-8")[:600]
    return head.startswith("---") and "kernelspec:" in head


def _download_link(app, doctree):
    env = app.env
    if not _is_notebook(env, env.docname):
        return
    depth = env.docname.count("/")
    href = "../" * depth + f"_notebooks/{env.docname}.ipynb"
    name = env.docname.rsplit("/", 1)[-1] + ".ipynb"
    html = (f'<p class="ltx-download">Download this page as a Jupyter notebook: '
            f'<a href="{href}" download><code>{name}</code></a></p>')
    for section in doctree.findall(nodes.section):
        title = next(iter(section.findall(nodes.title)), None)
        if title is not None:
            section.insert(section.index(title) + 1, nodes.raw("", html, format="html"))
        break


def _write_notebooks(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    import nbformat
    from myst_nb.core.read import read_myst_markdown_notebook

    for docname in sorted(app.env.found_docs):
        if not _is_notebook(app.env, docname):
            continue
        text = Path(app.env.doc2path(docname)).read_text(encoding="utf-8")
        notebook = read_myst_markdown_notebook(text)
        target = Path(app.outdir) / "_notebooks" / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".ipynb.tmp")
        nbformat.write(notebook, os.fspath(tmp))
        tmp.replace(target)


def setup(app):
    app.add_node(details, html=(_visit_details, _depart_details),
                 latex=(_skip, _skip), text=(_skip, _skip), man=(_skip, _skip),
                 texinfo=(_skip, _skip))
    app.add_directive("solution", SolutionDirective)
    app.add_directive("equation-code", EquationCodeDirective)
    app.add_directive("backward-trace", BackwardTraceDirective)
    app.connect("doctree-resolved", _label_numbers)
    app.connect("builder-inited", _patch_math_domain)
    app.connect("doctree-read", _download_link)
    app.connect("doctree-read", _place_code)
    app.connect("build-finished", _write_notebooks)
    app.add_css_file("course.css")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


