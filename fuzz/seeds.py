#!/usr/bin/env python3
"""Writes the seed corpus in fuzz/corpus/<target>/: real request bodies, tiny GGUF headers made
with the `gguf` package (no bytes of any real model), the families' chat templates with a
conversation, and model outputs in each tool-call format. Run from the repository root:
    python3 fuzz/seeds.py
Rerunning rewrites the same files; libFuzzer's own finds stay out of these folders."""

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import gguf

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
TEMPLATES = ROOT / "tests" / "data" / "templates"


def put(target: str, name: str, data: bytes | str) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data.encode() if isinstance(data, str) else data)


# --- gguf_header -------------------------------------------------------------------------------
# Named .bin: git ignores *.gguf (models).

def gguf_bytes(build) -> bytes:
    """A whole GGUF file written by `gguf.GGUFWriter`; tensors are a few bytes each."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "seed.gguf")
        writer = gguf.GGUFWriter(path, arch="llama")
        build(writer)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return Path(path).read_bytes()


def tiny_llama(w: gguf.GGUFWriter) -> None:
    w.add_name("tiny")
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)
    w.add_tokenizer_model("gpt2")
    tokens = ["<s>", "</s>", "a", "b", "c", "ab", "bc", "abc"]
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 1, 1, 1, 1, 1, 1])
    w.add_token_merges(["a b", "b c", "ab c"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    w.add_chat_template((TEMPLATES / "smollm2" / "template.jinja").read_text())
    f32 = np.float32
    w.add_tensor("token_embd.weight", np.zeros((8, 8), dtype=f32))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(8, dtype=f32))
    w.add_tensor("blk.0.attn_q.weight", np.zeros((8, 8), dtype=f32))
    w.add_tensor("blk.0.attn_k.weight", np.zeros((4, 8), dtype=f32))
    w.add_tensor("blk.0.attn_v.weight", np.zeros((4, 8), dtype=f32))
    w.add_tensor("blk.0.ffn_up.weight", np.zeros((16, 8), dtype=np.float16))
    w.add_tensor("output_norm.weight", np.ones(8, dtype=f32))


def every_value_type(w: gguf.GGUFWriter) -> None:
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -3)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -300)
    w.add_uint32("t.u32", 4_000_000_000)
    w.add_int32("t.i32", -70000)
    w.add_float32("t.f32", 0.5)
    w.add_bool("t.bool", True)
    w.add_string("t.string", "héllo")
    w.add_uint64("t.u64", 2**63)
    w.add_int64("t.i64", -(2**40))
    w.add_float64("t.f64", 1e300)
    w.add_array("t.array", [1, 2, 3])
    w.add_array("t.strings", ["x", "", "yz"])
    w.add_array("t.nested", [[1, 2], [3]])
    w.add_uint32("general.alignment", 64)
    w.add_tensor("t", np.zeros(4, dtype=np.float32))


def moe(w: gguf.GGUFWriter) -> None:
    tiny_llama(w)
    w.add_expert_count(4)
    w.add_expert_used_count(2)
    w.add_sliding_window(16)


gguf_seeds = {
    "tiny_llama.bin": gguf_bytes(tiny_llama),
    "every_value_type.bin": gguf_bytes(every_value_type),
    "moe.bin": gguf_bytes(moe),
}
for name, data in gguf_seeds.items():
    put("gguf_header", name, data)
llama = gguf_seeds["tiny_llama.bin"]
# Version 2 has the same little-endian layout; a header cut short mid-metadata.
put("gguf_header", "tiny_llama_v2.bin", llama[:4] + (2).to_bytes(4, "little") + llama[8:])
put("gguf_header", "truncated.bin", llama[: len(llama) // 3])
put("gguf_header", "empty_v3.bin", b"GGUF" + (3).to_bytes(4, "little") + bytes(16))

# --- chat_request ------------------------------------------------------------------------------

weather_tool = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city"],
        },
    },
}
requests = {
    "openai_chat.json": {
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        ],
        "temperature": 0.7, "top_p": 0.9, "max_tokens": 16, "stop": ["\n\n"], "seed": 1,
        "stream": True, "stream_options": {"include_usage": True},
        "logprobs": True, "top_logprobs": 2, "logit_bias": {"42": -100},
    },
    "openai_tools.json": {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "system", "content": "Late system message."},
        ],
        "tools": [weather_tool], "tool_choice": "required", "parallel_tool_calls": False,
        "chat_template_kwargs": {"enable_thinking": False}, "reasoning_format": "none",
    },
    "openai_named_tool.json": {
        "messages": [{"role": "developer", "content": "x"}, {"role": "user", "content": "go"}],
        "tools": [weather_tool],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    },
    "openai_json_schema.json": {
        "messages": [{"role": "user", "content": "A person"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": {
            "type": "object",
            "properties": {"name": {"type": "string", "maxLength": 8},
                           "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "maxItems": 3},
                           "age": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
            "$defs": {"tag": {"enum": ["a", "b"]}},
            "required": ["name"], "additionalProperties": False}}},
        "prediction": {"type": "content", "content": "{\"name\": \"Ann\"}"},
    },
    "openai_grammar.json": {
        "messages": [{"role": "user", "content": "yes or no"}],
        "grammar": "root ::= \"yes\" | \"no\"", "n": 1, "speculative.n_max": 4,
    },
    "completions.json": {"prompt": ["Once upon"], "max_tokens": 8, "echo": True, "logprobs": 1,
                         "suffix": "end"},
    "completions_tokens.json": {"prompt": [[1, 2, 3]], "max_tokens": 4},
    "embeddings.json": {"input": ["a", "b"], "encoding_format": "float"},
    "tokenize.json": {"content": "Hello", "add_special": True, "with_pieces": True},
    "detokenize.json": {"tokens": [1, 2, 3]},
    "anthropic.json": {
        "model": "claude", "max_tokens": 64,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "messages": [
            {"role": "user", "content": "List files"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Use ls.", "signature": "x"},
                {"type": "text", "text": "Listing."},
                {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"cmd": "ls"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt", "is_error": False},
                {"type": "text", "text": "and?"}]},
        ],
        "tools": [{"name": "bash", "description": "Run", "input_schema": {
            "type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "stop_sequences": ["END"], "stream": True, "temperature": 0.2, "top_k": 40,
    },
    "anthropic_output_format.json": {
        "max_tokens": 32, "messages": [{"role": "user", "content": "JSON please"}],
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
    },
    "responses.json": {
        "model": "gpt-5-codex", "instructions": "Be terse.", "store": False, "stream": True,
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Run tests"}]},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Need cargo."}]},
            {"type": "function_call", "call_id": "c1", "name": "shell",
             "arguments": "{\"argv\":[\"cargo\",\"test\"]}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            {"role": "developer", "content": "Keep going."},
        ],
        "tools": [{"type": "function", "name": "shell", "parameters": {
            "type": "object", "properties": {"argv": {"type": "array", "items": {"type": "string"}}}}}],
        "tool_choice": "auto", "parallel_tool_calls": True, "max_output_tokens": 100,
        "text": {"format": {"type": "json_schema", "name": "o", "schema": {"type": "object"}}},
    },
    "responses_text.json": {"input": "Hello", "reasoning": {"effort": "low"}},
}
for name, body in requests.items():
    put("chat_request", name, json.dumps(body, ensure_ascii=False))

# --- chat_template -----------------------------------------------------------------------------

def case(name: str) -> dict:
    return json.loads((TEMPLATES / "cases" / f"{name}.json").read_text())


for family, case_name in [("smollm2", "multi_turn"), ("gemma3", "content_parts"),
                          ("llama31", "tools"), ("qwen25", "tool_call_roundtrip"),
                          ("mistral", "alternation_error"), ("chatml", "system_user_gen")]:
    source = (TEMPLATES / family / "template.jinja").read_text()
    put("chat_template", f"{family}.txt", source + "\0" + json.dumps(case(case_name)))
thinking = case("system_user_gen") | {"kwargs": {"enable_thinking": True}}
put("chat_template", "python_flavour.txt",
    "{{ bos_token }}{% for m in messages %}{{ m.role | upper }}: {{ m.content | trim }}"
    "{{ m | tojson(indent=2, sort_keys=true) }}{% endfor %}{{ tools | tojson(separators=(',', ':')) }}"
    "{{ 'a,b'.split(',') }}{{ {'k': none}.get('k') }}{{ strftime_now('%Y-%m-%d') }}"
    "{% if enable_thinking %}<think>{% endif %}{{ raise_exception('done') if messages | length > 9 }}"
    "\0" + json.dumps(thinking))

# --- tool_calls --------------------------------------------------------------------------------

# First byte: format index (bits 0-2, the order of FORMATS in the target), bit 3 set = tools off,
# bit 4 set = reasoning stays in content, bit 5 = the prompt opened a think block.
HERMES, QWEN3_CODER, LLAMA3, MISTRAL, HARMONY, DEEPSEEK, GEMMA, GENERIC = range(8)
outputs = {
    "hermes_think.txt": (HERMES, "<think>\nThe user wants the weather.\n</think>\n\n<tool_call>\n"
                         "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}\n</tool_call>"),
    "hermes_two.txt": (HERMES, "Let me check both.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n"
                       "<tool_call>\n{\"name\":\"b\",\"arguments\":\"{\\\"x\\\": 1}\"}\n</tool_call>\n"),
    "qwen3_coder.txt": (QWEN3_CODER, "I'll write it.\n\n<tool_call>\n<function=write_file>\n<parameter=path>\n"
                        "src/main.rs\n</parameter>\n<parameter=n>\n3\n</parameter>\n</function>\n</tool_call>"),
    "llama3.txt": (LLAMA3, "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"x\": 1}}"),
    "mistral.txt": (MISTRAL, "[THINK]Need it.[/THINK]Checking.[TOOL_CALLS]get_weather[CALL_ID]a1B2c3D4e[ARGS]{\"city\":\"Paris\"}"),
    "mistral_list.txt": (MISTRAL, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": 1}}, {\"name\": \"g\", \"arguments\": {}}]"),
    "harmony.txt": (HARMONY, "<|channel|>analysis<|message|>Weather in Paris.<|end|><|start|>assistant<|channel|>"
                    "commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>"),
    "harmony_final.txt": (HARMONY | 0x10, "<|channel|>analysis<|message|>Greeting.<|end|><|start|>assistant"
                          "<|channel|>final<|message|>Hello! <b>Hi</b><|return|>"),
    "deepseek.txt": (DEEPSEEK | 0x20, "I need the weather.\n</think>\n\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function"
                     "<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"北京\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"),
    "gemma.txt": (GEMMA, "```tool_code\nprint(default_api.search(query='rust \"serde\"', tags=['a', \"b\"], "
                  "opts={'limit': 2.5, 'x': None}))\nget_time()\n```"),
    "generic.txt": (GENERIC, "{\"name\": \"get_time\", \"arguments\": {}}"),
    "no_tools.txt": (HERMES | 0x08 | 0xc0, "Plain <tool_call> text stays content.  "),
}
for name, (options, text) in outputs.items():
    put("tool_calls", name, bytes([options]) + text.encode())

total = sum(f.stat().st_size for f in CORPUS.rglob("*") if f.is_file())
print(f"seed corpus: {sum(1 for f in CORPUS.rglob('*') if f.is_file())} files, {total} bytes",
      file=sys.stderr)
