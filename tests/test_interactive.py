"""helpers.interactive: slider figures over precomputed frames, their page HTML, live controls."""
from __future__ import annotations

import json
import re
import sys
import types

import numpy as np
import plotly.graph_objects as go
import pytest

from helpers import interactive


def _frames(n_steps: int = 3) -> dict[str, list[go.Scatter]]:
    return {
        f"{k}": [go.Scatter(x=[1, 2, 3], y=[k, k + 1, k + 2], hovertext=[f"run {k}"] * 3)]
        for k in range(n_steps)
    }


def _embedded_figure(page_html: str, name: str) -> dict:
    match = re.search(rf'<script type="application/json" id="{name}-data">(.*?)</script>',
                      page_html, re.S)
    assert match, "no embedded figure data"
    return json.loads(match.group(1))


def test_slider_figure_has_one_frame_and_one_step_per_label():
    fig = interactive.slider_figure(_frames(), slider_label="k", title="t", start="1")
    assert [f.name for f in fig.frames] == ["0", "1", "2"]
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["0", "1", "2"]
    assert [list(s.args[0]) for s in steps] == [["0"], ["1"], ["2"]]
    assert fig.layout.sliders[0].active == 1
    assert list(fig.data[0].y) == [1, 2, 3]  # the start frame is what is drawn first


def test_slider_figure_rejects_bad_frames():
    with pytest.raises(ValueError, match="frames is empty"):
        interactive.slider_figure({}, slider_label="k")
    uneven = {"a": [go.Scatter(y=[1])], "b": [go.Scatter(y=[1]), go.Scatter(y=[2])]}
    with pytest.raises(ValueError, match="same traces"):
        interactive.slider_figure(uneven, slider_label="k")
    mixed = {"a": [go.Scatter(y=[1])], "b": [go.Bar(y=[1])]}
    with pytest.raises(ValueError, match="same traces"):
        interactive.slider_figure(mixed, slider_label="k")
    with pytest.raises(ValueError, match="start='z'"):
        interactive.slider_figure(_frames(), slider_label="k", start="z")


def test_figure_html_embeds_data_and_frames_without_a_cdn_in_the_site_path():
    fig = interactive.slider_figure(_frames(), slider_label="k")
    page = interactive.figure_html(fig, "fig-test")
    assert f'class="{interactive.CSS_CLASS}"' in page and 'id="fig-test"' in page
    embedded = _embedded_figure(page, "fig-test")
    assert [f["name"] for f in embedded["frames"]] == ["0", "1", "2"]
    assert embedded["layout"]["sliders"][0]["steps"][2]["label"] == "2"
    # the site path: _static/plotly.min.js relative to the page's content root
    assert f'root + "_static/{interactive.PLOTLY_JS}"' in page
    # the small house template, not plotly's ~10 kB default one
    assert len(page) < 8_000
    assert embedded["layout"]["template"]["layout"]["colorway"][0] == interactive.PALETTE[0]


def test_figure_html_keeps_script_end_tags_out_of_the_data():
    fig = go.Figure(go.Scatter(y=[1], hovertext=["</script><b>x</b>"]))
    page = interactive.figure_html(fig, "f1")
    data = page.split('id="f1-data">', 1)[1].split("</script>", 1)[0]
    assert "</" not in data
    assert _embedded_figure(page, "f1")["data"][0]["hovertext"] == ["</script><b>x</b>"]


def test_figure_html_rejects_bad_names_figures_and_oversized_data():
    fig = go.Figure(go.Scatter(y=[1]))
    for name in ["", "1abc", "has space", 'x"y']:
        with pytest.raises(ValueError, match="name="):
            interactive.figure_html(fig, name)
    with pytest.raises(ValueError, match="plotly.graph_objects.Figure"):
        interactive.figure_html({"data": []}, "f")
    big = go.Figure(go.Heatmap(z=np.random.default_rng(0).random((200, 200))))
    with pytest.raises(ValueError, match="kB limit"):
        interactive.figure_html(big, "f")


def test_show_displays_html_and_plotly_json(monkeypatch):
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display",
                        lambda obj, raw=False: shown.append((obj, raw)))
    fig = go.Figure(go.Scatter(y=[3, 1, 2]))
    interactive.show(fig, "fig-x")
    (bundle, raw), = shown
    assert raw is True
    assert 'id="fig-x"' in bundle["text/html"]
    assert list(bundle["application/vnd.plotly.v1+json"]["data"][0]["y"]) == [3, 1, 2]


def test_live_control_without_ipywidgets_says_how_to_get_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import raises ImportError
    assert interactive.live_control(lambda k: None, k=(1, 10)) is None
    assert "pip install ipywidgets" in capsys.readouterr().out
    with pytest.raises(ValueError, match="at least one control"):
        interactive.live_control(lambda: None)


def test_live_control_builds_an_interactive_that_runs_on_release(monkeypatch):
    calls = {}

    class Slider:
        continuous_update = True

    class Interactive:
        def __init__(self, update, **controls):
            calls["controls"] = controls
            self.children = [Slider(), object()]

    fake = types.SimpleNamespace(interactive=Interactive)
    monkeypatch.setitem(sys.modules, "ipywidgets", fake)
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj: calls.setdefault("shown", obj))
    widget = interactive.live_control(lambda k, noise: None, k=(1, 10), noise=(0.0, 8.0, 0.5))
    assert calls["controls"] == {"k": (1, 10), "noise": (0.0, 8.0, 0.5)}
    assert calls["shown"] is widget
    assert widget.children[0].continuous_update is False


def test_copy_plotly_js_copies_the_installed_bundle(tmp_path):
    target = interactive.copy_plotly_js(tmp_path / "_static")
    assert target.name == interactive.PLOTLY_JS
    assert target.stat().st_size == interactive.plotly_js_path().stat().st_size > 1_000_000
