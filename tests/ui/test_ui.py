"""The web UI against a real server and real models: each test does what a person would do in
the page and checks the result against the admin API (numbers byte for byte)."""

from __future__ import annotations

import json
import re
import urllib.error
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from conftest import ARTIFACTS, GEMMA_ID, HUB_REPO, LOAD_TIMEOUT_MS, SMOL_ID, Server, open_page, open_section, wait_ready

# Memory table cell -> the /api/budget figure it shows.
BUDGET_CELLS = {
    "budget-weights": lambda b: b["weights_gpu"] + b["weights_cpu"],
    "budget-kv": lambda b: b["kv_cache"],
    "budget-compute": lambda b: b["compute"],
    "budget-os": lambda b: b["os_reserve"],
    "budget-total": lambda b: b["total"],
    "budget-headroom": lambda b: b["headroom"],
    "budget-limit": lambda b: b["limit"],
}


def expect_budget_shown(page: Page, budget: dict) -> None:
    for testid, figure in BUDGET_CELLS.items():
        expect(page.get_by_test_id(testid)).to_have_attribute("data-bytes", str(figure(budget)))


def takes(model: dict) -> int:
    """What a loaded model takes as the page counts it: llama.cpp's measured weights, KV cache,
    recurrent state and compute when it reported them all, else the predicted ones."""
    m = model["measured"] or {}
    if all(m.get(k) is not None for k in ("weights", "kv_cache", "compute")):
        return m["weights"] + m["kv_cache"] + (m.get("recurrent_state") or 0) + m["compute"]
    p = model["predicted"]
    return p["weights_gpu"] + p["weights_cpu"] + p["kv_cache"] + (p.get("recurrent_state") or 0) + p["compute"]


def card(page: Page, model_id: str):
    return page.locator(f'[data-testid="model-card"][data-model-id="{model_id}"]')


def loaded_ids(server: Server) -> list[str]:
    return [m["id"] for m in server.api("GET", "/api/status")["models"]]


def test_loading_a_model_from_the_library_shows_its_budget(page: Page, server: Server):
    page.goto("/#models")
    wait_ready(page, SMOL_ID)
    gemma = page.locator(f'[data-testid="model-card"][data-model-id="{GEMMA_ID}"]')
    expect(gemma.get_by_test_id("fit-badge")).to_have_attribute("data-verdict", "fits")
    expect(gemma.get_by_test_id("loaded-badge")).to_be_hidden()

    # Note every value the card's progress bar takes. Events may arrive in one burst, so the
    # observer reads each change's old value rather than the bar's state when it runs.
    # The list may be rebuilt mid-load (the catalog is refetched), so watch the whole list.
    page.evaluate("""(id) => {
        window.progressSeen = [];
        window.progressShown = false;
        new MutationObserver((records) => {
            for (const r of records) {
                if (r.target.getAttribute('role') !== 'progressbar' || r.target.closest('[data-model-id]').dataset.modelId !== id) continue;
                if (r.attributeName === 'aria-valuenow' && r.oldValue !== null) window.progressSeen.push(Number(r.oldValue));
                if (r.attributeName === 'hidden' && r.oldValue === null) window.progressShown = true;
            }
        }).observe(document.getElementById('model-list'), {subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['aria-valuenow', 'hidden']});
    }""", GEMMA_ID)
    gemma.get_by_role("button", name="Load").click()
    wait_ready(page, GEMMA_ID)
    assert page.evaluate("window.progressShown"), "the progress bar never showed"
    progress = page.evaluate("window.progressSeen")
    assert progress and max(progress) > 0, f"the progress bar never moved: {progress}"
    expect(gemma.get_by_test_id("loaded-badge")).to_be_visible()
    # Loaded beside SmolLM2, which stays loaded; Gemma is the most recently used.
    smol = page.locator(f'[data-testid="model-card"][data-model-id="{SMOL_ID}"]')
    expect(smol.get_by_test_id("loaded-badge")).to_be_visible()
    status = server.api("GET", "/api/status")
    assert status["state"] == "idle"
    assert status["model"]["id"] == GEMMA_ID
    assert [m["id"] for m in status["models"]] == [SMOL_ID, GEMMA_ID]

    open_section(page, "memory")
    expect(page.get_by_test_id("whatif-model")).to_have_value(GEMMA_ID)
    answer = server.api("GET", f"/api/budget?model={GEMMA_ID}")
    expect_budget_shown(page, answer["budget"])
    largest = answer["largest_context"]
    expect(page.get_by_test_id("budget-largest-context")).to_have_attribute("data-value", str(largest or ""))

    # The server measures what it can (weights at least); each measured cell shows exactly what
    # it measured for Gemma (not SmolLM2, loaded too).
    entry = next(m for m in server.api("GET", "/api/status")["models"] if m["id"] == GEMMA_ID)
    measured = entry["measured"] or {}
    assert measured.get("weights"), entry
    for testid, field in (("measured-weights", "weights"), ("measured-kv", "kv_cache"), ("measured-compute", "compute")):
        if measured.get(field) is not None:
            expect(page.get_by_test_id(testid)).to_have_attribute("data-bytes", str(measured[field]))


def send_chat(page: Page, text: str, max_tokens: int) -> str:
    """Sends one message from the open Chat section; returns the reply once it has ended."""
    replies = page.get_by_test_id("chat-assistant")
    count = replies.count()
    page.get_by_test_id("chat-max-tokens").fill(str(max_tokens))
    page.get_by_test_id("chat-input").fill(text)
    page.get_by_test_id("chat-send").click()
    expect(replies).to_have_count(count + 1)
    reply = replies.last
    expect(reply).to_have_attribute("data-state", "done", timeout=LOAD_TIMEOUT_MS)
    expect(page.get_by_test_id("chat-tps")).to_contain_text("tok/s")
    return reply.text_content()


def test_two_models_side_by_side_then_one_unloaded(page: Page, server: Server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    sent = []  # the model each chat request names
    page.on("request", lambda r: r.url.endswith("/v1/chat/completions")
            and sent.append(json.loads(r.post_data).get("model")))
    page.goto("/#models")
    wait_ready(page, SMOL_ID)
    smol, gemma = card(page, SMOL_ID), card(page, GEMMA_ID)
    expect(page.get_by_test_id("header-more")).to_be_hidden()
    gemma.get_by_test_id("load").click()
    wait_ready(page, GEMMA_ID)

    # Both loaded, each with its own Unload; SmolLM2 was not unloaded for Gemma.
    for c in (smol, gemma):
        expect(c.get_by_test_id("loaded-badge")).to_be_visible()
        expect(c.get_by_test_id("unload")).to_be_enabled()
        expect(c.get_by_test_id("load")).to_be_hidden()
    status = server.api("GET", "/api/status")
    models = status["models"]
    assert [m["id"] for m in models] == [SMOL_ID, GEMMA_ID]
    assert status["model"]["id"] == GEMMA_ID
    for m, c in zip(models, (smol, gemma)):
        expect(c.get_by_test_id("model-usage")).to_have_attribute("data-bytes", str(takes(m)))

    # The header names the last used model and counts the other; its memory is their sum.
    expect(page.get_by_test_id("header-more")).to_have_text("+1")
    together = sum(takes(m) for m in models)
    header = page.get_by_test_id("header-memory")
    expect(header).to_have_attribute("data-bytes", str(together))
    assert SMOL_ID in header.get_attribute("title") and GEMMA_ID in header.get_attribute("title")
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=str(ARTIFACTS / f"models-two-loaded-{scheme}.png"), full_page=True)

    # The memory view draws both: one segment each, in load order, then the OS reserve once and
    # what is left of the limit; the table lists each model's prediction and measurement.
    open_section(page, "memory")
    expect(page.get_by_test_id("together-card")).to_be_visible()
    segments = page.get_by_test_id("together-segment")
    expect(segments).to_have_count(2)
    assert [segments.nth(i).get_attribute("data-model-id") for i in range(2)] == [SMOL_ID, GEMMA_ID]
    for i, m in enumerate(models):
        expect(segments.nth(i)).to_have_attribute("data-bytes", str(takes(m)))
        row = page.locator(f'[data-testid="together-row"][data-model-id="{m["id"]}"]')
        p = m["predicted"]
        predicted = p["weights_gpu"] + p["weights_cpu"] + p["kv_cache"] + p["recurrent_state"] + p["compute"]
        expect(row.get_by_test_id("together-predicted")).to_have_attribute("data-bytes", str(predicted))
        if m["measured"]["kv_cache"] is not None and m["measured"]["compute"] is not None:
            expect(row.get_by_test_id("together-measured")).to_have_attribute("data-bytes", str(takes(m)))
    budget = models[0]["predicted"]
    os_reserve, limit = budget["os_reserve"], budget["limit"]
    expect(page.get_by_test_id("together-models")).to_have_attribute("data-bytes", str(together))
    expect(page.get_by_test_id("together-total")).to_have_attribute("data-bytes", str(together + os_reserve))
    expect(page.get_by_test_id("together-limit")).to_have_attribute("data-bytes", str(limit))
    expect(page.get_by_test_id("together-headroom")).to_have_attribute("data-bytes", str(limit - together - os_reserve))
    expect(page.get_by_test_id("together-seg-os")).to_have_attribute("data-bytes", str(os_reserve))
    # Drawn to scale: the larger model has the wider segment.
    widths = [segments.nth(i).bounding_box()["width"] for i in range(2)]
    assert (widths[0] < widths[1]) == (takes(models[0]) < takes(models[1])), widths
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=str(ARTIFACTS / f"memory-two-models-{scheme}.png"), full_page=True)

    # Chat: the picker offers both (the last used first); the request names the one picked.
    open_section(page, "chat")
    picker = page.get_by_test_id("chat-model-select")
    expect(picker.locator("option")).to_have_count(2)
    expect(picker).to_have_value(GEMMA_ID)
    picker.select_option(SMOL_ID)
    expect(page.get_by_test_id("chat-model")).to_have_text(f"Talking to {SMOL_ID}")
    assert send_chat(page, "Say hello.", 16).strip(), "SmolLM2's reply ended empty"
    assert sent == [SMOL_ID], sent

    # Unloading SmolLM2 with its own button leaves Gemma loaded, and the chat goes on with it.
    open_section(page, "models")
    smol.get_by_test_id("unload").click()
    expect(smol.get_by_test_id("loaded-badge")).to_be_hidden()
    expect(smol.get_by_test_id("load")).to_be_enabled()
    expect(gemma.get_by_test_id("loaded-badge")).to_be_visible()
    expect(page.get_by_test_id("header-more")).to_be_hidden()
    assert loaded_ids(server) == [GEMMA_ID]
    expect(page.get_by_test_id("header-memory")).to_have_attribute("data-bytes", str(takes(models[1])))
    open_section(page, "memory")
    expect(segments).to_have_count(1)
    expect(segments).to_have_attribute("data-model-id", GEMMA_ID)

    open_section(page, "chat")
    expect(picker.locator("option")).to_have_count(1)
    expect(picker).to_have_value(GEMMA_ID)
    assert send_chat(page, "Say hello.", 16).strip(), "Gemma's reply ended empty"
    assert sent == [SMOL_ID, GEMMA_ID], sent
    status = server.api("GET", "/api/status")
    assert [m["id"] for m in status["models"]] == [GEMMA_ID]
    assert status["model"]["id"] == GEMMA_ID and status["model"]["last_tps"], status["model"]


def test_a_model_that_does_not_fit_beside_a_pinned_one_is_refused_with_the_reason(browser, tmp_path, request):
    srv = Server(tmp_path)
    # What each model takes as the server adds them up (GPU and CPU sides of its budget).
    srv.start()
    try:
        need = {}
        for model in (SMOL_ID, GEMMA_ID):
            budget = srv.api("GET", f"/api/budget?model={model}")["budget"]
            need[model] = budget["on_gpu"] + budget["on_cpu"]
    finally:
        srv.stop()
    # A cap that holds either model alone but not both, and SmolLM2 pinned: loading Gemma
    # cannot make room, so it is refused.
    cap_mib = -(-(max(need.values()) + min(need.values()) // 2) // 2**20)
    assert max(need.values()) <= cap_mib << 20 < sum(need.values()), (need, cap_mib)
    srv.config.write_text(f'[server]\nmemory_limit_mib = {cap_mib}\n\n[models."{SMOL_ID}"]\npin = true\n')
    srv.start()
    request.addfinalizer(srv.stop)
    page = open_page(browser, srv.url, request)
    page.goto("/#models")
    wait_ready(page, SMOL_ID)
    smol, gemma = card(page, SMOL_ID), card(page, GEMMA_ID)
    expect(smol.get_by_test_id("pinned-badge")).to_be_visible()
    expect(gemma.get_by_test_id("pinned-badge")).to_be_hidden()

    gemma.get_by_test_id("load").click()
    error = gemma.get_by_test_id("model-error")
    expect(error).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    with pytest.raises(urllib.error.HTTPError) as answer:
        srv.api("POST", "/api/models/load", {"model": GEMMA_ID})
    assert answer.value.code == 503
    body = json.loads(answer.value.read())["error"]
    assert body["code"] == "model_does_not_fit", body
    expect(error).to_contain_text(body["message"])
    expect(error).to_contain_text("does not fit")
    expect(error).to_contain_text("GiB more memory is needed")
    # Nothing changed: SmolLM2 still loaded, Gemma not, and it can be tried again.
    expect(smol.get_by_test_id("loaded-badge")).to_be_visible()
    expect(gemma.get_by_test_id("loaded-badge")).to_be_hidden()
    expect(gemma.get_by_test_id("load")).to_be_enabled()
    assert loaded_ids(srv) == [SMOL_ID]
    gemma.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "models-does-not-fit.png"), full_page=True)

    # The memory view shows the cap as the limit: the headroom is what the cap leaves.
    open_section(page, "memory")
    smol_takes = takes(srv.api("GET", "/api/status")["models"][0])
    expect(page.get_by_test_id("together-models")).to_have_attribute("data-bytes", str(smol_takes))
    os_reserve = int(page.get_by_test_id("together-seg-os").get_attribute("data-bytes"))
    expect(page.get_by_test_id("together-limit")).to_have_attribute("data-bytes", str((cap_mib << 20) + os_reserve))


def test_what_if_controls_ask_the_budget_live(page: Page, server: Server):
    page.goto("/#memory")
    wait_ready(page, SMOL_ID)
    default = server.api("GET", f"/api/budget?model={SMOL_ID}")
    expect_budget_shown(page, default["budget"])
    ctx = default["settings"]["n_ctx"]
    expect(page.get_by_test_id("whatif-ctx")).to_have_value(str(ctx))

    bigger = ctx * 2
    page.get_by_test_id("whatif-ctx").fill(str(bigger))
    wider = server.api("GET", f"/api/budget?{urlencode({'model': SMOL_ID, 'ctx_size': bigger})}")
    assert wider["budget"]["kv_cache"] > default["budget"]["kv_cache"]
    expect_budget_shown(page, wider["budget"])

    # A quantized K cache takes less than f16 at the same context.
    page.get_by_test_id("whatif-ctk").select_option("q8_0")
    query = urlencode({"model": SMOL_ID, "ctx_size": bigger, "cache_type_k": "q8_0"})
    smaller = server.api("GET", f"/api/budget?{query}")
    assert smaller["budget"]["kv_cache"] < wider["budget"]["kv_cache"]
    expect_budget_shown(page, smaller["budget"])


def test_chat_streams_a_reply(page: Page, server: Server):
    page.goto("/#chat")
    wait_ready(page, SMOL_ID)
    expect(page.get_by_test_id("chat-send")).to_be_enabled()
    page.get_by_test_id("chat-max-tokens").fill("48")
    # Record every text the reply bubble shows, in the page, so the test does not race the model.
    page.evaluate("""() => {
        window.replyTexts = [];
        new MutationObserver(() => {
            const replies = document.querySelectorAll('[data-testid="chat-assistant"]');
            const text = replies.length ? replies[replies.length - 1].textContent : '';
            if (text && text !== window.replyTexts.at(-1)) window.replyTexts.push(text);
        }).observe(document.getElementById('chat-log'), {childList: true, subtree: true, characterData: true});
    }""")

    page.get_by_test_id("chat-input").fill("Tell me a short story about a horse in a paddock.")
    page.get_by_test_id("chat-send").click()
    expect(page.get_by_test_id("chat-stop")).to_be_enabled()
    expect(page.get_by_test_id("chat-tps")).to_contain_text("tok/s", timeout=LOAD_TIMEOUT_MS)
    expect(page.get_by_test_id("chat-stop")).to_be_disabled()

    final = page.get_by_test_id("chat-assistant").last.text_content()
    texts = page.evaluate("window.replyTexts")
    assert final.strip(), "the reply ended empty"
    assert len(texts) >= 2, f"the reply did not grow while streaming: {texts}"
    for shorter, longer in zip(texts, texts[1:]):
        assert longer.startswith(shorter) and len(longer) > len(shorter), (shorter, longer)
    assert texts[-1] == final
    assert re.search(r"\d+(\.\d+)? tok/s", page.get_by_test_id("chat-tps").text_content())


def chat_once(page: Page, text: str, max_tokens: int) -> None:
    """Sends one chat message from the Chat section and waits for the reply's speed line."""
    page.goto("/#chat")
    wait_ready(page, SMOL_ID)
    page.get_by_test_id("chat-max-tokens").fill(str(max_tokens))
    page.get_by_test_id("chat-input").fill(text)
    page.get_by_test_id("chat-send").click()
    expect(page.get_by_test_id("chat-tps")).to_contain_text("tok/s", timeout=LOAD_TIMEOUT_MS)


def test_speculation_and_its_acceptance_are_shown(page: Page, server: Server):
    # A reply that repeats itself: the n-gram lookup guesses much of it. The chat samples at
    # the model's temperature, so a reply may come out short, with nothing to guess from (CI
    # saw three short ones in a row): up to six tries.
    for _ in range(6):
        chat_once(page, "Repeat the word hello twenty times.", 96)
        line = page.get_by_test_id("chat-tps").text_content()
        shown = re.search(r"(\d+)% of (\d+) drafted accepted", line)
        if shown:
            break
    assert shown, line
    status = server.api("GET", "/api/status")
    assert status["model"]["speculation"] == {"ngram": True, "draft_model": None, "mtp": False, "draft_max": 16}
    assert int(shown.group(1)) == int(status["last_acceptance"] * 100 + 0.5)  # JS Math.round

    open_section(page, "server")
    expect(page.get_by_test_id("status-speculation")).to_have_text("n-gram lookup, up to 16 tokens")
    expect(page.get_by_test_id("status-acceptance")).to_have_text(f"{shown.group(1)}% (last request)")


def test_settings_persist_across_restart(page: Page, server: Server):
    page.goto("/#server")
    before = server.api("GET", "/api/settings")["settings"]
    expect(page.get_by_test_id("settings-ctx")).to_have_value(str(before["ctx_size"]))
    ctx = 3072 if before["ctx_size"] != 3072 else 2048
    parallel = 3 if before["parallel"] != 3 else 1

    page.get_by_test_id("settings-ctx").fill(str(ctx))
    page.get_by_test_id("settings-parallel").fill(str(parallel))
    # Speculative decoding: the lookup off, the model as its own draft, 8 guesses at most.
    expect(page.get_by_test_id("settings-ngram")).to_be_checked()
    page.get_by_test_id("settings-ngram").uncheck()
    page.get_by_test_id("settings-draft-model").select_option(SMOL_ID)
    page.get_by_test_id("settings-draft-max").fill("8")
    page.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("settings-message")).to_contain_text("Saved")
    saved = server.api("GET", "/api/settings")["settings"]
    assert (saved["ctx_size"], saved["parallel"]) == (ctx, parallel)
    assert (saved["spec_ngram"], saved["model_draft"], saved["draft_max"]) == (False, SMOL_ID, 8)

    server.stop()
    server.start()
    page.goto("/#server")
    expect(page.get_by_test_id("settings-ctx")).to_have_value(str(ctx))
    expect(page.get_by_test_id("settings-parallel")).to_have_value(str(parallel))
    expect(page.get_by_test_id("settings-ngram")).not_to_be_checked()
    expect(page.get_by_test_id("settings-draft-model")).to_have_value(SMOL_ID)
    expect(page.get_by_test_id("settings-draft-max")).to_have_value("8")
    after = server.api("GET", "/api/settings")["settings"]
    assert (after["ctx_size"], after["parallel"]) == (ctx, parallel)
    # The model loaded at start guesses as saved, and the status line says so.
    expect(page.get_by_test_id("status-speculation")).to_have_text(f"draft model {SMOL_ID}, up to 8 tokens")

    page.get_by_test_id("settings-ngram").check()
    page.get_by_test_id("settings-draft-model").select_option("")
    page.get_by_test_id("settings-draft-max").fill("16")
    page.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("settings-message")).to_contain_text("Saved")
    restored = server.api("GET", "/api/settings")["settings"]
    assert (restored["spec_ngram"], restored["model_draft"], restored["draft_max"]) == (True, None, 16)


def test_lan_toggle_shows_key_and_provider_config(page: Page, server: Server):
    page.goto("/#server")
    wait_ready(page, SMOL_ID)
    expect(page.get_by_test_id("lan-card")).to_be_hidden()
    expect(page.get_by_test_id("settings-lan")).not_to_be_checked()

    page.get_by_test_id("settings-lan").check()
    page.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("lan-card")).to_be_visible()
    expect(page.get_by_test_id("lan-api-key")).to_have_text(re.compile(r"^pk-[0-9a-f]{32}$"))
    key = page.get_by_test_id("lan-api-key").text_content()
    server.api_key = key  # the server may ask for it from now on
    assert server.api("GET", "/api/settings")["settings"]["api_key"] == key

    config = json.loads(page.get_by_test_id("provider-config").text_content())
    provider = config["provider"]["paddock"]
    assert provider["npm"] == "@ai-sdk/openai-compatible"
    assert provider["options"]["apiKey"] == key
    assert provider["options"]["baseURL"].endswith("/v1")
    status = server.api("GET", "/api/status")
    assert SMOL_ID in provider["models"]
    assert provider["models"][SMOL_ID]["limit"]["context"] == status["model"]["n_ctx"]
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=str(ARTIFACTS / f"server-lan-{scheme}.png"), full_page=True)


def test_key_prompt_when_the_server_asks_for_one(keyed_page: Page, keyed_server: Server):
    keyed_page.goto("/#models")
    dialog = keyed_page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    keyed_page.get_by_test_id("key-input").fill(keyed_server.api_key)
    keyed_page.get_by_test_id("key-save").click()
    expect(dialog).to_be_hidden()
    wait_ready(keyed_page, SMOL_ID)
    expect(keyed_page.locator('[data-testid="model-card"]')).to_have_count(2)
    assert keyed_page.evaluate("localStorage.getItem('paddock.apiKey')") == keyed_server.api_key


def test_download_from_hugging_face_then_load(hub_page: Page, hub_server: Server):
    page = hub_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto("/#models")
    wait_ready(page, GEMMA_ID)
    expect(page.locator(f'[data-testid="model-card"][data-model-id="{SMOL_ID}"]')).to_have_count(0)

    page.get_by_test_id("hub-repo").fill(HUB_REPO)
    page.get_by_test_id("hub-find").click()
    listed = hub_server.api("GET", f"/api/hub?{urlencode({'repo': HUB_REPO})}")
    assert [m["id"] for m in listed["models"]] == [SMOL_ID], listed
    found = page.locator(f'[data-testid="hub-model"][data-hub-model="{SMOL_ID}"]')
    expect(found).to_be_visible()
    expect(found.get_by_test_id("hub-model-size")).to_have_text("94 MiB")  # 98,362,432 bytes

    # Note every value the download's bar takes, in the page: ticks come ten times a second and
    # may arrive in bursts, so the observer keeps each change's old value (as the load test does).
    page.evaluate("""() => {
        window.downloadSeen = [];
        new MutationObserver((records) => {
            for (const r of records) {
                if (r.target.getAttribute('role') === 'progressbar' && r.oldValue !== null) window.downloadSeen.push(Number(r.oldValue));
            }
        }).observe(document.getElementById('download-list'), {subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['aria-valuenow']});
    }""")
    found.get_by_test_id("hub-download").click()
    download = page.get_by_test_id("download")
    expect(download).to_have_count(1)
    expect(download).to_have_attribute("data-state", "running")
    bar = download.get_by_test_id("download-progress")
    # Mid-way: the bar, the figures and Cancel, as a person sees them while it runs.
    page.wait_for_function("""() => {
        const v = Number(document.querySelector('[data-testid="download-progress"]')?.getAttribute('aria-valuenow'));
        return v > 0 && v < 100;
    }""", timeout=LOAD_TIMEOUT_MS)
    expect(download.get_by_test_id("download-figures")).to_contain_text("of 94 MiB")
    expect(download.get_by_test_id("download-cancel")).to_be_visible()
    expect(found.get_by_test_id("hub-download")).to_be_disabled()
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.get_by_test_id("hub-card").screenshot(path=str(ARTIFACTS / f"download-running-{scheme}.png"))

    expect(download).to_have_attribute("data-state", "done", timeout=LOAD_TIMEOUT_MS)
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(download.get_by_test_id("download-figures")).to_have_text("100% · 94 MiB of 94 MiB")
    expect(download.get_by_test_id("download-cancel")).to_be_hidden()
    seen = page.evaluate("window.downloadSeen") + [int(bar.get_attribute("aria-valuenow"))]
    assert any(0 < v < 100 for v in seen), f"the bar never showed a value between 0 and 100: {seen}"
    assert seen[-1] == 100, f"the bar did not end at 100: {seen}"

    # The finished download is a model of the library (the catalog was refetched), Paddock's own.
    smol = page.locator(f'[data-testid="model-card"][data-model-id="{SMOL_ID}"]')
    expect(smol).to_be_visible()
    expect(smol.get_by_test_id("source-badge")).to_have_text("Paddock")
    expect(smol.get_by_test_id("fit-badge")).to_be_visible()
    expect(found.get_by_test_id("in-library")).to_be_visible()
    entry = next(m for m in hub_server.api("GET", "/api/models")["models"] if m["id"] == SMOL_ID)
    assert entry["source"] in ("paddock", {"kind": "paddock"}), entry["source"]
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.get_by_test_id("hub-card").screenshot(path=str(ARTIFACTS / f"download-done-{scheme}.png"))

    smol.get_by_role("button", name="Load").click()
    wait_ready(page, SMOL_ID)
    expect(smol.get_by_test_id("loaded-badge")).to_be_visible()
    status = hub_server.api("GET", "/api/status")
    assert status["state"] == "idle" and status["model"]["id"] == SMOL_ID, status
    assert status["model"]["path"].startswith(str(hub_server.own_models)), status["model"]["path"]
    assert [m["id"] for m in status["models"]] == [GEMMA_ID, SMOL_ID], status["models"]

    # Only downloaded models can be deleted, and not while loaded: SmolLM2 is unloaded first
    # (Gemma, loaded beside it, stays).
    gemma = page.locator(f'[data-testid="model-card"][data-model-id="{GEMMA_ID}"]')
    expect(gemma.get_by_test_id("loaded-badge")).to_be_visible()
    expect(gemma.get_by_test_id("delete")).to_have_count(0)
    expect(smol.get_by_test_id("delete")).to_be_hidden()
    smol.get_by_test_id("unload").click()
    expect(smol.get_by_test_id("loaded-badge")).to_be_hidden()
    expect(smol.get_by_test_id("delete")).to_be_visible()
    expect(gemma.get_by_test_id("loaded-badge")).to_be_visible()
    assert loaded_ids(hub_server) == [GEMMA_ID]
    page.once("dialog", lambda dialog: dialog.accept())
    smol.get_by_test_id("delete").click()
    expect(smol).to_have_count(0)
    assert not any(m["id"] == SMOL_ID for m in hub_server.api("GET", "/api/models")["models"])
    assert not list(hub_server.own_models.rglob("*.gguf"))


def test_unknown_repo_says_so(hub_page: Page, hub_server: Server):
    page = hub_page
    page.goto("/#models")
    repo = "paddock-test/no-such-model-GGUF"
    page.get_by_test_id("hub-repo").fill(repo)
    page.get_by_test_id("hub-repo").press("Enter")
    error = page.get_by_test_id("hub-error")
    expect(error).to_be_visible()
    with pytest.raises(urllib.error.HTTPError) as answer:
        hub_server.api("GET", f"/api/hub?{urlencode({'repo': repo})}")
    assert answer.value.code == 404
    message = json.loads(answer.value.read())["error"]["message"]
    expect(error).to_contain_text("no repository")
    expect(error).to_contain_text(message)
    expect(page.get_by_test_id("hub-models")).to_be_hidden()


def test_screenshots_of_every_section(page: Page, server: Server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # A short exchange, so the chat screenshot shows a conversation.
    chat_once(page, "Say hello.", 24)
    ready = {
        "models": lambda: expect(page.locator('[data-testid="model-card"]')).to_have_count(2),
        "memory": lambda: expect(page.get_by_test_id("budget-total")).to_have_attribute("data-bytes", re.compile(r"\d")),
        "chat": lambda: expect(page.get_by_test_id("chat-assistant")).to_have_count(1),
        "server": lambda: expect(page.get_by_test_id("status-model")).to_have_text(SMOL_ID),
        "benchmarks": lambda: expect(page.get_by_test_id("benchmarks-placeholder")).to_be_visible(),
    }
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for section, wait in ready.items():
            open_section(page, section)
            wait()
            page.screenshot(path=str(ARTIFACTS / f"{section}-{scheme}.png"), full_page=True)
