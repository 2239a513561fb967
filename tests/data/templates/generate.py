#!/usr/bin/env python3
"""Regenerates the chat-template goldens with Python jinja2, the way Hugging Face transformers
renders `apply_chat_template` (transformers/utils/chat_template_utils.py), so that the goldens do
not depend on Paddock's Rust renderer.

    pip install jinja2 gguf
    python3 tests/data/templates/generate.py [--extract-smollm2 SmolLM2-135M-Instruct.Q4_1.gguf]

For every family in families.json and every case in cases/*.json it writes <family>/<case>.txt
(the exact render) or, when the template fails, <family>/<case>.err: the raise_exception message,
or an empty file for any other error (the Rust side then only has to fail too).

The one step that is Paddock's and not HF's: OpenAI content arrays of {type:"text"} parts are
flattened to one string, parts joined with "\n", before rendering (as src/chat/template.rs does).
"""
import json
import sys
from datetime import datetime
from pathlib import Path

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parent


class TemplateError(Exception):
    pass


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # Same as transformers: no HTML escaping, key order kept.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def compile_template(source):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def flatten(message):
    content = message.get("content")
    if isinstance(content, list):
        message = dict(message)
        message["content"] = "\n".join(part["text"] for part in content)
    return message


def extract_smollm2(gguf_path):
    import gguf

    reader = gguf.GGUFReader(gguf_path)
    source = reader.fields["tokenizer.chat_template"].contents()
    (ROOT / "smollm2" / "template.jinja").write_text(source, encoding="utf-8")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--extract-smollm2":
        extract_smollm2(sys.argv[2])
    families = json.loads((ROOT / "families.json").read_text(encoding="utf-8"))
    cases = sorted((ROOT / "cases").glob("*.json"))
    for family, tokens in families.items():
        source = (ROOT / family / "template.jinja").read_text(encoding="utf-8")
        template = compile_template(source)
        for case_path in cases:
            case = json.loads(case_path.read_text(encoding="utf-8"))
            for stale in (ROOT / family).glob(case_path.stem + ".*"):
                stale.unlink()
            try:
                out = template.render(
                    messages=[flatten(m) for m in case["messages"]],
                    tools=case["tools"],
                    add_generation_prompt=case["add_generation_prompt"],
                    bos_token=tokens["bos_token"],
                    eos_token=tokens["eos_token"],
                )
                (ROOT / family / f"{case_path.stem}.txt").write_bytes(out.encode("utf-8"))
                print(f"{family}/{case_path.stem}.txt")
            except TemplateError as e:
                (ROOT / family / f"{case_path.stem}.err").write_text(str(e), encoding="utf-8")
                print(f"{family}/{case_path.stem}.err: {e}")
            except Exception as e:  # e.g. str + None inside the template
                (ROOT / family / f"{case_path.stem}.err").write_text("", encoding="utf-8")
                print(f"{family}/{case_path.stem}.err (other error: {type(e).__name__}: {e})")


if __name__ == "__main__":
    main()
