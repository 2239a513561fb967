"""The Benchmarks page against a real server and a real model: a tiny sweep on SmolLM2 (pp64,
pp128, tg16, one repetition) run from the form, its live progress, then the charts, the table and
the exports checked against /api/bench/runs; cancelling a run; bad input refused in the page."""

from __future__ import annotations

import json
import re
import struct
import urllib.request
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from conftest import ARTIFACTS, GEMMA_ID, LOAD_TIMEOUT_MS, SMOL_ID, Server, open_section, wait_ready

# A benchmark unloads the served models, measures, and loads them again: minutes on a slow machine.
BENCH_TIMEOUT_MS = 300_000


def fetch(server: Server, path: str) -> tuple[str, bytes]:
    """GET as the page's links do: content type and body."""
    req = urllib.request.Request(server.url + path, headers={"Origin": server.url})
    with urllib.request.urlopen(req, timeout=30) as res:
        return res.headers.get("content-type", ""), res.read()


def watch_progress(page: Page) -> None:
    """Records, in the page, every state and text the progress card shows (ticks may be quick)."""
    page.evaluate("""() => {
        window.benchSeen = [];
        const card = document.getElementById('bench-progress');
        const note = () => {
            if (card.hidden) return;
            const seen = `${card.dataset.state}|${document.getElementById('bench-progress-text').textContent}`;
            if (window.benchSeen.at(-1) !== seen) window.benchSeen.push(seen);
        };
        new MutationObserver(note).observe(card, {subtree: true, attributes: true, childList: true, characterData: true});
    }""")


def expect_rate(cell: Locator, ts: float, test: str) -> None:
    """A tokens/s cell shows `ts` as the page formats it (3,320 or 99.1) and names its test."""
    expect(cell).to_have_attribute("data-test", test)
    assert float(cell.get_attribute("data-ts")) == ts
    shown = re.match(r"[\d,]+(\.\d)?", cell.text_content().strip())
    assert shown, cell.text_content()
    if ts >= 100:
        assert "." not in shown.group(0) and abs(float(shown.group(0).replace(",", "")) - ts) <= 0.5, (shown.group(0), ts)
    else:
        assert abs(float(shown.group(0)) - ts) <= 0.05 + 1e-9, (shown.group(0), ts)


def polyline_points(line: Locator) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in line.get_attribute("points").split()]


def y_to_value(chart: Locator):
    """The chart's y scale, read back from its grid lines (each carries its value)."""
    grid = chart.locator("line.grid").evaluate_all(
        "els => els.map((e) => [Number(e.dataset.value), Number(e.getAttribute('y1'))])")
    (v0, y0), (v1, y1) = grid[0], grid[-1]
    assert v1 > v0 and y1 < y0, grid  # values grow upwards
    return (lambda y: v0 + (y - y0) * (v1 - v0) / (y1 - y0)), v1


def test_benchmark_runs_live_and_its_results_are_drawn(page: Page, server: Server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto("/#benchmarks")
    wait_ready(page, SMOL_ID)
    assert server.api("GET", "/api/bench/runs")["runs"] == []
    expect(page.get_by_test_id("benchmarks-placeholder")).to_be_visible()
    expect(page.get_by_test_id("bench-table")).to_be_hidden()

    # The form starts from the server's defaults, prompt sizes capped at the trained context.
    page.get_by_test_id("bench-model-select").select_option(SMOL_ID)
    entry = next(m for m in server.api("GET", "/api/models")["models"] if m["id"] == SMOL_ID)
    trained = entry["facts"]["n_ctx_train"]
    defaults = [int(n) for n in page.get_by_test_id("bench-pp").input_value().split(",")]
    assert defaults[0] == 512 and max(defaults) <= trained, (defaults, trained)
    assert [int(n) for n in page.get_by_test_id("bench-tg").input_value().split(",")] == [128, 256, 512, 1024]
    expect(page.get_by_test_id("bench-reps")).to_have_value("3")

    page.get_by_test_id("bench-pp").fill("64, 128")
    page.get_by_test_id("bench-tg").fill("16")
    page.get_by_test_id("bench-reps").fill("1")
    expect(page.get_by_test_id("bench-hint")).to_contain_text("3 tests, each run 1 time")
    watch_progress(page)
    page.get_by_test_id("bench-run").click()

    progress = page.get_by_test_id("bench-progress")
    expect(progress).to_be_visible()
    expect(page.get_by_test_id("bench-bar")).to_be_visible()
    expect(progress).to_have_attribute("data-state", "done", timeout=BENCH_TIMEOUT_MS)
    expect(page.get_by_test_id("bench-bar")).to_have_attribute("aria-valuenow", "100")
    expect(page.get_by_test_id("bench-run")).to_be_enabled()
    expect(page.get_by_test_id("bench-cancel")).to_be_disabled()
    expect(page.get_by_test_id("bench-failure")).to_be_hidden()
    seen = page.evaluate("window.benchSeen")
    running = [s for s in seen if s.startswith("running|")]
    assert running, f"the progress card never showed a running benchmark: {seen}"
    # "pp64 · 1/3": the test being measured and the count, once the server has planned them.
    assert all(re.fullmatch(r"running\|(Preparing…|.+ · \d+/\d+)", s) for s in running), running

    runs = server.api("GET", "/api/bench/runs")["runs"]
    assert len(runs) == 1, runs
    run = runs[0]
    assert run["model"]["id"] == SMOL_ID
    results = {r["test"]: r for r in run["results"]}
    assert {"pp64", "pp128", "tg16"} <= set(results), list(results)
    bench = server.api("GET", "/api/status")["bench"]
    assert bench["state"] == "done" and bench["run_id"] == run["id"], bench
    # The served model is loaded again afterwards.
    wait_ready(page, SMOL_ID, timeout=BENCH_TIMEOUT_MS)

    row = page.locator(f'[data-testid="bench-row"][data-run-id="{run["id"]}"]')
    expect(row).to_have_count(1)
    expect(page.get_by_test_id("benchmarks-placeholder")).to_be_hidden()
    expect(row.get_by_test_id("bench-show")).to_be_checked()  # the newest run of its model

    # pp chart: the run's line has two points, pp64 then pp128, where their t/s put them.
    pp64, pp128 = results["pp64"]["avg_ts"], results["pp128"]["avg_ts"]
    chart = page.get_by_test_id("chart-pp")
    expect(chart).to_have_attribute("role", "img")
    line = chart.locator(f'polyline[data-series="{run["id"]}"]')
    expect(line).to_have_count(1)
    points = polyline_points(line)
    assert len(points) == 2, points
    (x64, y64), (x128, y128) = points
    assert x64 < x128
    if pp64 != pp128:  # the faster test is drawn higher on screen (smaller y)
        assert (y64 < y128) == (pp64 > pp128), (points, pp64, pp128)
    value_at, top = y_to_value(chart)
    for y, want in ((y64, pp64), (y128, pp128)):
        assert abs(value_at(y) - want) <= top * 0.005, (value_at(y), want)
    dots = chart.locator(f'circle.point[data-series="{run["id"]}"]')
    assert [float(v) for v in dots.evaluate_all("els => els.map((e) => e.dataset.value)")] == [pp64, pp128]
    assert chart.locator("title").first.text_content() and chart.locator("desc").first.text_content()

    # tg chart: one point, tg16.
    tg16 = results["tg16"]["avg_ts"]
    tg_chart = page.get_by_test_id("chart-tg")
    tg_dots = tg_chart.locator(f'circle.point[data-series="{run["id"]}"]')
    expect(tg_dots).to_have_count(1)
    assert float(tg_dots.get_attribute("data-value")) == tg16
    tg_value_at, tg_top = y_to_value(tg_chart)
    assert abs(tg_value_at(float(tg_dots.get_attribute("cy"))) - tg16) <= tg_top * 0.005

    # Retention and ceiling charts and cells say what the server derived, or that it could not.
    derived = run["derived"]
    retention = derived.get("retention")
    bar = page.get_by_test_id("chart-retention").locator(f'[data-series="{run["id"]}"] rect.bar')
    if retention:
        assert float(bar.get_attribute("data-value")) == retention["ratio"]
        expect(row.get_by_test_id("bench-retention")).to_contain_text(f"{round(retention['ratio'] * 100)}%")
    else:
        expect(bar).to_have_count(0)
        expect(row.get_by_test_id("bench-retention")).to_have_text("—")
    pct = derived.get("tg_ceiling_pct")
    expect(row.get_by_test_id("bench-ceiling")).to_have_text(f"{round(pct)}%" if pct is not None else "—")
    if derived.get("tg_ceiling_ts"):
        marker = page.get_by_test_id("chart-ceiling").locator(f'[data-series="{run["id"]}"] line.marker')
        assert float(marker.get_attribute("data-value")) == derived["tg_ceiling_ts"]

    # The table: the same numbers as the API, formatted; the short sweep has no pp512 or tg128,
    # so those columns show pp64 and tg16 and say so.
    expect(row.get_by_test_id("bench-model")).to_have_text(SMOL_ID)
    expect_rate(row.get_by_test_id("bench-pp512"), pp64, "pp64")
    expect_rate(row.get_by_test_id("bench-pp-largest"), pp128, "pp128")
    expect_rate(row.get_by_test_id("bench-tg128"), tg16, "tg16")

    # Exports: the server's Markdown and CSV through the links, the page's PNG of the charts.
    md = row.get_by_test_id("bench-export-md")
    assert md.get_attribute("href") == f"/api/bench/runs/{run['id']}?format=md"
    content_type, body = fetch(server, md.get_attribute("href"))
    assert content_type.startswith("text/markdown") and "pp64" in body.decode(), (content_type, body[:300])
    with page.expect_download() as download:
        md.click()
    text = Path(download.value.path()).read_text()
    assert "pp64" in text and "pp128" in text and "tg16" in text, text
    assert download.value.suggested_filename.endswith(".md")
    with page.expect_download() as download:
        row.get_by_test_id("bench-export-csv").click()
    assert "pp128" in Path(download.value.path()).read_text()
    content_type, body = fetch(server, row.get_by_test_id("bench-export-json").get_attribute("href"))
    assert json.loads(body)["id"] == run["id"]
    with page.expect_download() as download:
        page.get_by_test_id("bench-export-png").click()
    png = Path(download.value.path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n", png[:16]
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 900 and height >= 500, (width, height)
    expect(page.get_by_test_id("bench-error")).to_be_hidden()

    page.evaluate("window.scrollTo(0, 0)")
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=str(ARTIFACTS / f"benchmarks-results-{scheme}.png"), full_page=True)

    # Unticked, the run leaves the charts; ticked again, it is back.
    row.get_by_test_id("bench-show").uncheck()
    expect(line).to_have_count(0)
    row.get_by_test_id("bench-show").check()
    expect(line).to_have_count(1)

    # Delete takes it out of the history and the page.
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_test_id("bench-delete").click()
    expect(row).to_have_count(0)
    assert server.api("GET", "/api/bench/runs")["runs"] == []
    expect(page.get_by_test_id("benchmarks-placeholder")).to_be_visible()


def test_bad_input_is_refused_and_a_running_benchmark_cancels(page: Page, server: Server):
    page.goto("/#benchmarks")
    wait_ready(page, SMOL_ID)
    # Two models loaded: the picker marks both, and the benchmark gives both back afterwards.
    server.api("POST", "/api/models/load", {"model": GEMMA_ID})
    wait_ready(page, GEMMA_ID)
    options = page.get_by_test_id("bench-model-select").locator("option")
    expect(options).to_have_text([f"{SMOL_ID} (loaded)", f"{GEMMA_ID} (loaded)"], use_inner_text=True)
    page.get_by_test_id("bench-model-select").select_option(SMOL_ID)

    # A word among the sizes: the page says which, and asks the server nothing.
    page.get_by_test_id("bench-pp").fill("64, lots")
    page.get_by_test_id("bench-run").click()
    expect(page.get_by_test_id("bench-error")).to_contain_text("lots")
    expect(page.get_by_test_id("bench-progress")).to_be_hidden()
    assert server.api("GET", "/api/status").get("bench") is None

    # Long enough to be cancelled mid-way: the largest prompt, three times, then long generations.
    trained = next(m for m in server.api("GET", "/api/models")["models"] if m["id"] == SMOL_ID)["facts"]["n_ctx_train"]
    page.get_by_test_id("bench-pp").fill(f"{min(trained, 8192)}")
    page.get_by_test_id("bench-tg").fill("512, 1024")
    page.get_by_test_id("bench-reps").fill("3")
    page.get_by_test_id("bench-run").click()
    expect(page.get_by_test_id("bench-error")).to_be_hidden()
    progress = page.get_by_test_id("bench-progress")
    expect(progress).to_have_attribute("data-state", "running", timeout=LOAD_TIMEOUT_MS)
    expect(page.get_by_test_id("bench-run")).to_be_disabled()
    cancel = page.get_by_test_id("bench-cancel")
    expect(cancel).to_be_enabled()
    cancel.click()
    expect(progress).to_have_attribute("data-state", "cancelled", timeout=BENCH_TIMEOUT_MS)
    expect(page.get_by_test_id("bench-progress-text")).to_contain_text("Cancelled")
    expect(page.get_by_test_id("bench-run")).to_be_enabled()
    expect(cancel).to_be_disabled()
    assert server.api("GET", "/api/status")["bench"]["state"] == "cancelled"
    # Both models come back, in the order they were loaded (Gemma last, so the header's).
    wait_ready(page, GEMMA_ID, timeout=BENCH_TIMEOUT_MS)
    expect(page.get_by_test_id("header-more")).to_have_text("+1", timeout=BENCH_TIMEOUT_MS)
    assert [m["id"] for m in server.api("GET", "/api/status")["models"]] == [SMOL_ID, GEMMA_ID]
    # Whatever the server kept of a cancelled run, the table lists the same runs.
    runs = server.api("GET", "/api/bench/runs")["runs"]
    expect(page.get_by_test_id("bench-row")).to_have_count(len(runs))
