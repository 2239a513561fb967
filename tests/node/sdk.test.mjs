// The official `openai` Node SDK against a live Paddock server: a tool round trip forced with
// tool_choice "required", a streamed tool call assembled by the SDK's stream helper, `parse()`
// with a zod schema, and embeddings. PADDOCK_URL / PADDOCK_MODEL as for the Python tests.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { zodResponseFormat, zodFunction } from "openai/helpers/zod";
import { z } from "zod";

const root = (process.env.PADDOCK_URL ?? "").replace(/\/v1\/?$/, "").replace(/\/$/, "");
if (!root) throw new Error("PADDOCK_URL is not set (scripts/test.sh sets it)");
const model = process.env.PADDOCK_MODEL || "SmolLM2-135M-Instruct.Q4_1";
const client = new OpenAI({ baseURL: `${root}/v1`, apiKey: process.env.PADDOCK_API_KEY || "sk-none", maxRetries: 0 });

const Weather = z.object({ city: z.string() });
const ask = [{ role: "user", content: "What is the weather in Paris?" }];

test("tool round trip with tool_choice required", async () => {
  const tools = [zodFunction({ name: "get_weather", parameters: Weather, description: "Weather for a city." })];
  const first = await client.chat.completions.create({
    model, messages: ask, tools, tool_choice: "required", parallel_tool_calls: false, temperature: 0, max_tokens: 64,
  });
  const choice = first.choices[0];
  assert.equal(choice.finish_reason, "tool_calls");
  const call = choice.message.tool_calls[0];
  assert.equal(call.function.name, "get_weather");
  assert.equal(typeof JSON.parse(call.function.arguments).city, "string");

  const answer = await client.chat.completions.create({
    model, tools, tool_choice: "none", temperature: 0, max_tokens: 32,
    messages: [...ask, choice.message, { role: "tool", tool_call_id: call.id, content: "18C, sunny" }],
  });
  assert.ok(answer.choices[0].message.content.trim().length > 0);
  assert.equal(answer.choices[0].message.tool_calls ?? undefined, undefined);
});

test("streamed tool call is assembled by the stream helper", async () => {
  const stream = client.chat.completions.stream({
    model, messages: ask, temperature: 0, max_tokens: 64, parallel_tool_calls: false,
    tools: [zodFunction({ name: "get_weather", parameters: Weather })], tool_choice: "required",
  });
  const done = [];
  stream.on("tool_calls.function.arguments.done", (e) => done.push(e));
  const final = await stream.finalChatCompletion();
  assert.equal(done.length, 1);
  const call = final.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, "get_weather");
  assert.equal(typeof call.function.parsed_arguments.city, "string");
});

test("parse() with a zod schema returns a valid object", async () => {
  const Person = z.object({ name: z.string(), age: z.number().int() });
  const r = await client.chat.completions.parse({
    model, temperature: 0, max_tokens: 64,
    messages: [{ role: "user", content: "Invent a person." }],
    response_format: zodResponseFormat(Person, "person"),
  });
  const person = r.choices[0].message.parsed;
  assert.equal(typeof person.name, "string");
  assert.ok(Number.isInteger(person.age));
});

test("embeddings: similar sentences are closer, batch equals single", async () => {
  const texts = ["The cat sits on the mat.", "A cat is sitting on a mat.", "Quarks carry a colour charge."];
  const r = await client.embeddings.create({ model, input: texts });
  const [a, b, c] = r.data.map((d) => d.embedding);
  const dot = (x, y) => x.reduce((s, v, i) => s + v * y[i], 0);
  assert.ok(dot(a, b) > dot(a, c) && dot(a, b) > dot(b, c));
  const single = (await client.embeddings.create({ model, input: texts[1] })).data[0].embedding;
  assert.ok(single.every((v, i) => Math.abs(v - b[i]) < 1e-5));
});
