// forge serve driven by the official `openai` npm client: chat, completions, streaming, usage,
// stop strings, seeds, logprobs, n, LoRA by model name, error bodies, and a bounded load.
// usage: node openai_client.mjs NODE_MODULES BASE_URL API_KEY MODEL LORA EXPECT_FILE
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const [nodeModules, baseURL, apiKey, model, lora, expectFile] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(nodeModules), "noop.js"));
const OpenAI = require("openai");
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });
const expected = JSON.parse(fs.readFileSync(expectFile, "utf8"));  // greedy texts from `forge generate`
let checks = 0;
const ok = (cond, msg) => { assert.ok(cond, msg); checks++; };

async function expectError(status, fn, param) {
  try {
    await fn();
  } catch (e) {
    ok(e instanceof OpenAI.APIError, `expected an APIError, got ${e}`);
    assert.equal(e.status, status, `status for ${param}: ${e.message}`);
    ok(typeof e.error?.message === "string" && e.error.message.length > 0, "error.message");
    ok("type" in e.error && "param" in e.error && "code" in e.error, "error has type, param, code");
    if (param) assert.equal(e.error.param, param);
    return;
  }
  assert.fail(`expected HTTP ${status} for ${param}`);
}

// Models.
const models = await client.models.list();
const ids = models.data.map((m) => m.id);
assert.deepEqual(ids, [model, lora]);
checks++;

// Completions, greedy: equal to `forge generate` on the same model.
const prompt = expected.prompt;
const c = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0, ignore_eos: true });
assert.equal(c.object, "text_completion");
assert.equal(c.choices[0].text, expected.base);
assert.equal(c.choices[0].finish_reason, "length");
assert.equal(c.usage.completion_tokens, 12);
assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + 12);
checks += 5;

// LoRA by model name: equal to `forge generate` on the merged model, and different from the base.
const l = await client.completions.create({ model: lora, prompt, max_tokens: 12, temperature: 0, ignore_eos: true });
assert.equal(l.choices[0].text, expected.lora);
assert.equal(l.model, lora);
ok(l.choices[0].text !== c.choices[0].text, "the adapter changes the output");
checks += 2;

// Streaming completions: the chunks join to the non-streamed text; usage in the last chunk.
let streamed = "", usage = null, finish = null;
const s = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0, ignore_eos: true,
  stream: true, stream_options: { include_usage: true } });
for await (const ch of s) {
  if (ch.usage) usage = ch.usage;
  for (const choice of ch.choices) { streamed += choice.text; if (choice.finish_reason) finish = choice.finish_reason; }
}
assert.equal(streamed, expected.base);
assert.equal(finish, "length");
assert.equal(usage.completion_tokens, 12);
checks += 3;

// Chat, non-streaming and streaming agree.
const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Name a colour." }];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 10, temperature: 0 });
assert.equal(chat.object, "chat.completion");
assert.equal(chat.choices[0].message.role, "assistant");
ok(["stop", "length"].includes(chat.choices[0].finish_reason), "chat finish_reason");
let chatStreamed = "", roleSeen = false;
const cs = await client.chat.completions.create({ model, messages, max_tokens: 10, temperature: 0, stream: true });
for await (const ch of cs) {
  const d = ch.choices[0]?.delta ?? {};
  if (d.role === "assistant") roleSeen = true;
  chatStreamed += d.content ?? "";
}
ok(roleSeen, "the first chunk carries the role");
assert.equal(chatStreamed, chat.choices[0].message.content);
checks += 3;

// Stop strings: the text ends right before the first stop string, which is not emitted.
const base = expected.base;
const stop = base.slice(4, 7);
const st = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0, ignore_eos: true, stop: [stop] });
assert.equal(st.choices[0].text, base.slice(0, base.indexOf(stop)));
assert.equal(st.choices[0].finish_reason, "stop");
checks += 2;

// Seeds: same seed, same text; sampled n choices with a seed are reproducible too.
const seeded = (seed) => client.completions.create({ model, prompt, max_tokens: 16, temperature: 1.0, top_p: 0.95, seed, n: 2 });
const [a1, a2, b1] = await Promise.all([seeded(7), seeded(7), seeded(8)]);
assert.equal(a1.choices.length, 2);
assert.deepEqual(a1.choices.map((x) => x.text), a2.choices.map((x) => x.text));
ok(a1.choices.map((x) => x.text).join() !== b1.choices.map((x) => x.text).join(), "another seed draws differently");
checks += 2;

// Logprobs: chat top_logprobs and completions logprobs.
const lp = await client.chat.completions.create({ model, messages, max_tokens: 3, temperature: 0, logprobs: true, top_logprobs: 2 });
const content = lp.choices[0].logprobs.content;
assert.equal(content.length, lp.usage.completion_tokens);
ok(content.every((t) => t.logprob <= 0 && t.top_logprobs.length === 2), "chat logprobs");
ok(content.every((t) => Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-5), "greedy token is the top one");
const clp = await client.completions.create({ model, prompt, max_tokens: 3, temperature: 0, logprobs: 3, ignore_eos: true });
assert.equal(clp.choices[0].logprobs.tokens.length, 3);
assert.equal(Object.keys(clp.choices[0].logprobs.top_logprobs[0]).length > 0, true);
checks += 3;

// logit_bias (+100 makes one token win every draw, a different token for another id) and min_tokens.
const biased = async (id) => (await client.completions.create({ model, prompt, max_tokens: 4, temperature: 0, logprobs: 0,
  ignore_eos: true, logit_bias: { [id]: 100 } })).choices[0].logprobs.tokens;
const [t5, t9] = await Promise.all([biased(5), biased(9)]);
ok(t5.length === 4 && t5.every((t) => t === t5[0]), "logit_bias +100 repeats one token");
ok(t9[0] !== t5[0], "another biased id gives another token");
// Token 5 is forced and is a stop token: one token, unless min_tokens holds it back.
const stopAt5 = (min_tokens) => client.completions.create({ model, prompt, max_tokens: 6, temperature: 0,
  logit_bias: { 5: 100 }, stop_token_ids: [5], min_tokens });
const [quick, held] = await Promise.all([stopAt5(0), stopAt5(6)]);
ok(quick.usage.completion_tokens === 1 && quick.choices[0].finish_reason === "stop", "forced stop token ends at once");
ok(held.usage.completion_tokens === 6 && held.choices[0].finish_reason === "length", "min_tokens holds it back");

// JSON mode: the output is an object's prefix, and a finished one parses (nudged toward closing,
// as a random model rarely would).
// The served model sits beside the expected-output file (test_serve.sh's $dir/tiny).
const vocab = JSON.parse(fs.readFileSync(path.join(path.dirname(expectFile), "tiny", "tokenizer.json"), "utf8")).model.vocab;
const tokenId = (text) => vocab[text];
const jsonChat = (seed) => client.chat.completions.create({ model, messages: [{ role: "user", content: "JSON please" }],
  max_tokens: 96, temperature: 1, seed, response_format: { type: "json_object" },
  logit_bias: Object.fromEntries(["}", "\"", ":"].map((c) => [tokenId(c), 4])) });
const jsonOut = await Promise.all([1, 2, 3, 4].map(jsonChat));
const closedJson = jsonOut.filter((r) => r.choices[0].finish_reason === "stop");
ok(closedJson.length >= 2, `JSON mode: ${closedJson.length} of 4 objects closed`);
for (const r of closedJson) {
  const parsed = JSON.parse(r.choices[0].message.content);
  ok(typeof parsed === "object" && !Array.isArray(parsed), "JSON mode gives an object");
}

// Structured outputs through the SDK's parse() helper: every output parses and follows the schema,
// numeric bounds included (bounded, so a random model finishes within max_tokens).
const weather = { type: "object", properties: {
  city: { type: "string", enum: ["Paris", "Rome", "Oslo"] }, rain: { type: "boolean" },
  temps: { type: "array", items: { type: "integer", enum: [10, 20, 30] }, maxItems: 3 },
  note: { anyOf: [{ type: "string", maxLength: 8 }, { type: "null" }] }, uv: { type: "integer", minimum: 0, maximum: 11 } },
  required: ["city", "rain", "temps", "note", "uv"], additionalProperties: false };
const structured = await Promise.all([1, 2, 3, 4].map((seed) => client.beta.chat.completions.parse({ model,
  messages: [{ role: "user", content: "Weather?" }], max_tokens: 230, temperature: 1, seed,
  response_format: { type: "json_schema", json_schema: { name: "weather", schema: weather, strict: true } },
  logit_bias: Object.fromEntries(["}", "\"", ","].map((c) => [tokenId(c), 4])) })));
for (const r of structured) {
  const p = r.choices[0].message.parsed;
  ok(r.choices[0].finish_reason === "stop" && Object.keys(p).length === 5 && ["Paris", "Rome", "Oslo"].includes(p.city) &&
     Number.isInteger(p.uv) && p.uv >= 0 && p.uv <= 11 &&
     typeof p.rain === "boolean" && Array.isArray(p.temps) && p.temps.length <= 3 &&
     p.temps.every((t) => [10, 20, 30].includes(t)) && (p.note === null || [...p.note].length <= 8),
     `structured output follows its schema: ${r.choices[0].message.content}`);
}
// Function calling: a named function or "required" holds the output to the parameters, and the
// reply carries tool_calls (a named function's arguments stream in fragments); a conversation with the calls and their results
// goes back in; "auto" (the default with tools) and unknown functions are refused.
const tools = [
  { type: "function", function: { name: "get_weather", description: "Weather in a city", parameters: {
    type: "object", properties: { city: { enum: ["Paris", "Rome"] }, unit: { enum: ["C", "F"] } },
    required: ["city", "unit"], additionalProperties: false } } },
  { type: "function", function: { name: "now", description: "The time" } }];
const toolBias = Object.fromEntries(["}", "]", "\"", ","].map((c) => [tokenId(c), 4]));
const named = await client.chat.completions.create({ model, messages: [{ role: "user", content: "Weather?" }],
  max_tokens: 200, temperature: 1, seed: 3, tools, logit_bias: toolBias,
  tool_choice: { type: "function", function: { name: "get_weather" } } });
const call = named.choices[0].message.tool_calls?.[0];
const args = call && JSON.parse(call.function.arguments);
ok(named.choices[0].finish_reason === "stop" && named.choices[0].message.content === null &&
   call.type === "function" && call.function.name === "get_weather" && call.id.startsWith("call") &&
   ["Paris", "Rome"].includes(args.city) && ["C", "F"].includes(args.unit) && Object.keys(args).length === 2,
   `named tool call: ${JSON.stringify(named.choices[0].message)}`);
const required = await client.chat.completions.create({ model, messages: [{ role: "user", content: "Act" }],
  max_tokens: 230, temperature: 1, seed: 4, tools, tool_choice: "required", logit_bias: toolBias });
const calls = required.choices[0].message.tool_calls ?? [];
ok(required.choices[0].finish_reason === "tool_calls" && calls.length >= 1 &&
   calls.every((c) => ["get_weather", "now"].includes(c.function.name) && typeof JSON.parse(c.function.arguments) === "object"),
   `required tool calls: ${JSON.stringify(required.choices[0].message)}`);
const single = await client.chat.completions.create({ model, messages: [{ role: "user", content: "Act" }],
  max_tokens: 230, temperature: 1, seed: 4, tools, tool_choice: "required", parallel_tool_calls: false, logit_bias: toolBias });
ok((single.choices[0].message.tool_calls ?? []).length === 1, "parallel_tool_calls false: one call");
const toolStream = await client.chat.completions.create({ model, messages: [{ role: "user", content: "Weather?" }],
  max_tokens: 200, temperature: 1, seed: 3, tools, logit_bias: toolBias, stream: true,
  tool_choice: { type: "function", function: { name: "get_weather" } } });
let streamedArgs = "", streamedName = "", streamedFinish = null, fragments = 0, callIds = new Set();
for await (const chunk of toolStream) {
  const d = chunk.choices[0]?.delta ?? {};
  for (const tc of d.tool_calls ?? []) {
    streamedName += tc.function?.name ?? "";
    streamedArgs += tc.function?.arguments ?? "";
    fragments += tc.function?.arguments ? 1 : 0;
    if (tc.id) callIds.add(tc.id);
  }
  streamedFinish = chunk.choices[0]?.finish_reason ?? streamedFinish;
}
ok(streamedName === "get_weather" && streamedArgs === call.function.arguments && streamedFinish === "stop" &&
   callIds.size === 1, "streamed tool call equals the whole one (same seed)");
ok(fragments > 3, `a named function's arguments stream as they are written (${fragments} fragments)`);
const roundTrip = await client.chat.completions.create({ model, max_tokens: 4, tools, tool_choice: "none", messages: [
  { role: "user", content: "Weather?" }, { role: "assistant", content: null, tool_calls: [call] },
  { role: "tool", tool_call_id: call.id, content: "{\"temp\": 21}" }] });
ok(typeof roundTrip.choices[0].message.content === "string", "tool results go back in");
await expectError(400, () => client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }], tools }),
  "tool_choice");
await expectError(400, () => client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }], tools,
  tool_choice: { type: "function", function: { name: "nope" } } }), "tool_choice");

// A schema the server cannot hold is refused, not ignored.
await expectError(400, () => client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }],
  response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "string", pattern: "^a" } } } }),
  "response_format.json_schema");

// Errors in OpenAI's shape.
await expectError(404, () => client.completions.create({ model: "no-such-model", prompt: "x" }), "model");
await expectError(400, () => client.completions.create({ model, prompt: "x", temperature: 9 }), "temperature");
await expectError(400, () => client.completions.create({ model, prompt: "x", max_tokens: 100000 }), "max_tokens");
await expectError(400, () => client.chat.completions.create({ model, messages: [] }), "messages");
await expectError(400, () => client.completions.create({ model, prompt: "x", frobnicate: 1 }), "frobnicate");
const bad = new OpenAI({ baseURL, apiKey: "wrong-key", maxRetries: 0 });
await expectError(401, () => bad.models.list());

// Bounded load: 500 requests, 32 at a time, zero failures.
let failures = 0, done = 0, next = 0;
const t0 = Date.now();
async function worker() {
  while (next < 500) {
    const i = next++;
    try {
      const r = await client.completions.create({ model: i % 5 === 0 ? lora : model, prompt: `load ${i}`, max_tokens: 4, temperature: 0 });
      if (!r.choices[0] || typeof r.choices[0].text !== "string") failures++;
    } catch (e) {
      failures++;
      console.error(`load request ${i}: ${e.message}`);
    }
    done++;
  }
}
await Promise.all(Array.from({ length: 32 }, worker));
assert.equal(failures, 0);
assert.equal(done, 500);
checks += 2;
console.log(`openai client: ${checks} checks passed; load: 500 requests, 32 concurrent, 0 failures in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
