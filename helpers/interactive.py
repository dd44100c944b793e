"""Interactive figures that work in the built book's static HTML: offline, with no kernel.

A chapter keeps its static matplotlib figure as the numbered, captioned one, and may add one
plotly figure next to it that the reader can drive: a slider or a menu over values the chapter
has already computed, with hover text naming the model pair or run. :func:`show` writes the
figure as a ``text/html`` output whose data is embedded in the page and whose JavaScript
(``plotly.min.js`` from the installed ``plotly`` package) is served from the site's own
``_static`` folder, so nothing is fetched from the internet. The book's Sphinx extension
(``helpers.book_site``, listed in ``_config.yml``) copies that file into the built site.

Example (a chapter cell; the figure above it stays the captioned fallback)::

    # %% tags=["hide-input"]
    from helpers import interactive

    frames = {
        f"k = {k}": [go.Heatmap(z=scores[k], x=names, y=names, zmin=0, zmax=1,
                                hovertemplate="%{y} vs %{x}: %{z:.2f}<extra></extra>")]
        for k in ks
    }
    fig = interactive.slider_figure(frames, slider_label="neighbours k",
                                    title="Mutual-kNN alignment of every model pair")
    interactive.show(fig, "fig-knn-interactive")

Outside the book the same output works in Jupyter and Colab: JupyterLab and VS Code draw the
plotly JSON the output also carries; classic notebooks and Colab load ``plotly.min.js`` from
plotly's CDN (they have internet; the built site never does this). The browser check in
``tests/test_book.py`` finds every ``div.book-interactive``, moves its first control and fails
unless what is drawn changes.
"""
from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go
import plotly.io as pio

from helpers.plotting import NULL_COLOR, PALETTE

PLOTLY_JS = "plotly.min.js"
"""The file name under the built site's ``_static/`` that pages load plotly.js from."""

CSS_CLASS = "book-interactive"
"""Class of the ``<div>`` wrapping each interactive figure (the browser check looks for it)."""

MAX_FIGURE_BYTES = 250_000
"""Largest embedded figure :func:`show` accepts: every page must stay under 1 MB of HTML."""

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

# A small template instead of plotly's default one (which embeds ~10 kB per figure):
# the book's palette, a white background and light grid lines, as in helpers.plotting.
_TEMPLATE = go.layout.Template(
    layout=dict(
        colorway=PALETTE,
        font=dict(family="sans-serif", size=13, color="#222222"),
        paper_bgcolor="white",
        plot_bgcolor="white",
        xaxis=dict(showgrid=True, gridcolor="#eeeeee", zeroline=False, linecolor=NULL_COLOR),
        yaxis=dict(showgrid=True, gridcolor="#eeeeee", zeroline=False, linecolor=NULL_COLOR),
        hoverlabel=dict(font=dict(size=12)),
        margin=dict(l=60, r=30, t=50, b=50),
    )
)


def plotly_js_path() -> Path:
    """The ``plotly.min.js`` of the installed ``plotly`` package (the file the site serves)."""
    path = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall plotly (requirements.txt pins it)")
    return path


def slider_figure(
    frames: Mapping[str, Sequence[go.BaseTraceType]],
    *,
    slider_label: str,
    title: str = "",
    start: str | None = None,
    layout: Mapping[str, Any] | None = None,
) -> go.Figure:
    """A figure with one slider stepping through precomputed frames (no kernel needed).

    Args:
        frames: ordered mapping from the step's label (e.g. ``"k = 10"``) to the traces drawn at
            that step. Every step must have the same number of traces, in the same order and of
            the same types (step ``i``'s trace ``j`` replaces trace ``j``).
        slider_label: what the slider sets, with units (shown before the current step's label).
        title: the figure's title.
        start: label of the step shown first (default: the first one).
        layout: extra ``go.Layout`` settings (axis titles, height, ...).

    Returns:
        A ``go.Figure`` with one ``go.Frame`` per step and a slider that shows each frame at once
        (no transition), ready for :func:`show`.
    """
    if not frames:
        raise ValueError("frames is empty: pass at least one {label: [traces]} step")
    labels = list(frames)
    shapes = [[type(t).__name__ for t in frames[label]] for label in labels]
    if not shapes[0]:
        raise ValueError(f"frames[{labels[0]!r}] has no traces: each step needs at least one "
                         "trace")
    for label, shape in zip(labels, shapes):
        if shape != shapes[0]:
            raise ValueError(
                f"frames[{label!r}] has traces {shape} but frames[{labels[0]!r}] has {shapes[0]}: "
                "every step must draw the same traces in the same order"
            )
    if start is None:
        start = labels[0]
    if start not in frames:
        raise ValueError(f"start={start!r} is not a frame label; labels are {labels}")
    steps = [
        dict(
            label=label,
            method="animate",
            args=[[label], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                transition=dict(duration=0))],
        )
        for label in labels
    ]
    fig = go.Figure(
        data=list(frames[start]),
        frames=[go.Frame(name=label, data=list(frames[label])) for label in labels],
    )
    fig.update_layout(
        title=title or None,
        sliders=[dict(active=labels.index(start), steps=steps, pad=dict(t=50),
                      currentvalue=dict(prefix=f"{slider_label}: "))],
    )
    if layout:
        fig.update_layout(**dict(layout))
    return fig


def figure_html(fig: go.Figure, name: str) -> str:
    """The self-contained HTML of ``fig`` for a page: a div, its data, and a small loader.

    The loader waits until the figure comes near the screen (plotly.js is 4.8 MB), then draws
    with ``window.Plotly`` when the page already has it, else loads ``_static/plotly.min.js``
    from the built site (found from the page's ``data-content_root``), else (a live notebook,
    never the site) plotly's CDN.

    Args:
        fig: the figure (its frames, sliders and menus are kept).
        name: a unique name on the page, used as the div's id (letters, digits, ``-``, ``_``).

    Returns:
        An HTML fragment.
    """
    if not isinstance(fig, go.Figure):
        raise ValueError(f"fig must be a plotly.graph_objects.Figure, got {type(fig).__name__}")
    if not _NAME.match(name or ""):
        raise ValueError(
            f"name={name!r} must start with a letter and hold only letters, digits, - and _"
        )
    fig = go.Figure(fig)
    if fig.layout.template is None or fig.layout.template == pio.templates[pio.templates.default]:
        fig.update_layout(template=_TEMPLATE)
    payload = pio.to_json(fig, validate=True, pretty=False, remove_uids=True)
    if len(payload) > MAX_FIGURE_BYTES:
        raise ValueError(
            f"figure {name!r} embeds {len(payload) / 1e3:.0f} kB of data, over the "
            f"{MAX_FIGURE_BYTES / 1e3:.0f} kB limit that keeps pages under 1 MB: use fewer "
            "frames, coarser grids or float32 arrays"
        )
    # '</' inside the JSON would end the <script> element early.
    payload = payload.replace("</", "<\\/")
    cdn = f"https://cdn.plot.ly/plotly-{plotly.offline.get_plotlyjs_version()}.min.js"
    div_id = html.escape(name)
    return f"""<div class="{CSS_CLASS}" data-name="{div_id}">
<div id="{div_id}" class="{CSS_CLASS}-plot" style="width:100%;min-height:420px"></div>
<noscript>The interactive version of this figure needs JavaScript; the static figure above
shows the same data.</noscript>
<script type="application/json" id="{div_id}-data">{payload}</script>
<script>
(function () {{
  var el = document.getElementById("{div_id}");
  var fig = JSON.parse(document.getElementById("{div_id}-data").textContent);
  function draw() {{
    Plotly.newPlot(el, fig.data, fig.layout, {{responsive: true, displaylogo: false}})
      .then(function () {{ return fig.frames ? Plotly.addFrames(el, fig.frames) : null; }})
      .then(function () {{ el.setAttribute("data-ready", "1"); }});
  }}
  function start() {{
    if (window.Plotly) {{ draw(); return; }}
    var root = document.documentElement.getAttribute("data-content_root");
    var src = root !== null ? root + "_static/{PLOTLY_JS}" : "{cdn}";
    window.__bookPlotly = window.__bookPlotly || new Promise(function (resolve, reject) {{
      var s = document.createElement("script");
      s.src = src; s.onload = resolve; s.onerror = reject;
      document.head.appendChild(s);
    }});
    window.__bookPlotly.then(draw);
  }}
  // plotly.js is 4.8 MB: fetch it only when a figure comes near the screen
  if (!("IntersectionObserver" in window)) {{ start(); return; }}
  var near = new IntersectionObserver(function (entries) {{
    if (entries.some(function (e) {{ return e.isIntersecting; }})) {{
      near.disconnect(); start();
    }}
  }}, {{rootMargin: "600px"}});
  near.observe(el);
}})();
</script>
</div>"""


def show(fig: go.Figure, name: str) -> None:
    """Display ``fig`` as an interactive figure that works in the static book and in notebooks.

    Args:
        fig: a plotly figure, e.g. from :func:`slider_figure`, or any figure with
            ``updatemenus`` (a dropdown) over precomputed traces; give traces ``hovertemplate``
            or ``hovertext`` that name the model pair or run.
        name: a name unique on the page (e.g. ``"fig-knn-interactive"``); letters, digits, ``-``
            and ``_``.

    Returns:
        None. The cell's output carries ``text/html`` (what the book renders) and plotly's own
        JSON mimetype (what JupyterLab and VS Code draw).
    """
    from IPython.display import display

    bundle = {
        "text/html": figure_html(fig, name),
        "application/vnd.plotly.v1+json": json.loads(pio.to_json(fig, validate=False)),
    }
    display(bundle, raw=True)


def live_control(update: Callable[..., Any], **controls: Any) -> Any:
    """In a live notebook, ipywidgets controls that re-run ``update`` with the values chosen.

    For a cheap recomputation next to an interactive figure. Put the call in a cell tagged
    ``remove-cell``: the built book (no kernel) drops it, Jupyter, Binder and Colab show it.

    Args:
        update: called as ``update(**values)`` whenever a control is released; it prints or
            displays its result.
        **controls: one ipywidgets abbreviation per argument of ``update``: ``(min, max)`` or
            ``(min, max, step)`` for a slider, a list for a menu, a bool for a checkbox.

    Returns:
        The ``ipywidgets.interactive`` widget (already displayed), or None where ipywidgets is not
        installed (then a line says how to get it).
    """
    if not controls:
        raise ValueError("live_control needs at least one control, e.g. k=(1, 100)")
    try:
        import ipywidgets
    except ImportError:
        print("This control needs ipywidgets: `pip install ipywidgets`, then re-run this cell.")
        return None
    from IPython.display import display

    widget = ipywidgets.interactive(update, **controls)
    for child in widget.children:
        if hasattr(child, "continuous_update"):
            child.continuous_update = False  # re-run on release, not on every pixel of a drag
    display(widget)
    return widget


def copy_plotly_js(static_dir: Path) -> Path:
    """Copy the installed ``plotly.min.js`` into ``static_dir`` (the built site's ``_static``)."""
    static_dir.mkdir(parents=True, exist_ok=True)
    target = static_dir / PLOTLY_JS
    shutil.copyfile(plotly_js_path(), target)
    return target
