// tool_choice "auto" through the official `openai` npm client, against forge serve on a random
// model with a real tokenizer and chat template: Qwen 3's (Hermes <tool_call> tags) or Llama 3's
// with the Llama 3.1 template (a bare {"name", "parameters"} object as the whole reply). A random
// model rarely opens a call by itself, so logit_bias pushes the token that opens one (<tool_call>,
// or "{"); from there the server holds the call to the functions' schemas, so it must parse and
// validate.
// usage: node openai_tool_auto.mjs NODE_MODULES BASE_URL MODEL OPENING_TOKEN_ID [hermes|llama3_json]
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import path from "node:path";

const [nodeModules, baseURL, model, toolCallId, format = "hermes"] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(nodeModules), "noop.js"));
const OpenAI = require("openai");
const client = new OpenAI({ baseURL, apiKey: "none", maxRetries: 0, timeout: 60000 });
let checks = 0;
const ok = (cond, msg) => { assert.ok(cond, msg); checks++; };

const tools = [
  { type: "function", function: { name: "get_weather", description: "Weather in a city", parameters: {
    type: "object", properties: { city: { enum: ["Paris", "Rome"] }, days: { type: "integer" } },
    required: ["city"], additionalProperties: false } } },
  { type: "function", function: { name: "now", description: "The time" } }];
const messages = [{ role: "user", content: "Weather in Paris?" }];
const open = { [toolCallId]: 40 };  // the model opens a call at once

// A call each, held to its function's parameters (no tool_choice: "auto" is the default with tools).
function valid(call) {
  const args = JSON.parse(call.function.arguments);
  if (call.function.name === "now") return Object.keys(args).length === 0;
  return call.function.name === "get_weather" && ["Paris", "Rome"].includes(args.city) &&
    (args.days === undefined || Number.isInteger(args.days)) && Object.keys(args).every((k) => ["city", "days"].includes(k));
}
const replies = await Promise.all([1, 2, 3, 4, 5, 6].map((seed) => client.chat.completions.create({
  model, messages, tools, max_tokens: 400, temperature: 1, seed, logit_bias: open, parallel_tool_calls: false })));
for (const r of replies) {
  const m = r.choices[0].message;
  ok(r.choices[0].finish_reason === "tool_calls" && m.content === null && m.tool_calls.length === 1 &&
     m.tool_calls[0].type === "function" && m.tool_calls[0].id.startsWith("call_") && valid(m.tool_calls[0]),
     `auto tool call: ${JSON.stringify(r.choices[0])}`);
}

// Streamed with the same seed: the same call, its name first and then its arguments in pieces as
// they are written (as OpenAI streams calls), and no content.
const whole = replies[0].choices[0].message.tool_calls[0];
const stream = await client.chat.completions.create({ model, messages, tools, max_tokens: 400, temperature: 1, seed: 1,
  logit_bias: open, parallel_tool_calls: false, stream: true });
let name = "", args = "", content = "", finish = null, indices = new Set(), pieces = 0, ids = 0;
for await (const chunk of stream) {
  const d = chunk.choices[0]?.delta ?? {};
  content += d.content ?? "";
  for (const tc of d.tool_calls ?? []) {
    indices.add(tc.index);
    pieces++;
    ids += tc.id ? 1 : 0;
    if (pieces === 1) ok(tc.id?.startsWith("call_") && tc.function?.name, `first piece names the call: ${JSON.stringify(tc)}`);
    name += tc.function?.name ?? "";
    args += tc.function?.arguments ?? "";
  }
  finish = chunk.choices[0]?.finish_reason ?? finish;
}
ok(name === whole.function.name && args === whole.function.arguments && content === "" && finish === "tool_calls" &&
   [...indices].join() === "0" && ids === 1 && pieces > 3,
   `streamed auto call ${name}(${args}) in ${pieces} pieces equals the whole one ${JSON.stringify(whole)}`);

// Without the push the model answers in words: content, no tool_calls, and the text is the one
// tool_choice "none" gives for the same seed (nothing is masked while no call is open).
const words = await client.chat.completions.create({ model, messages, tools, max_tokens: 12, temperature: 0 });
const none = await client.chat.completions.create({ model, messages, tools, max_tokens: 12, temperature: 0, tool_choice: "none" });
ok(words.choices[0].message.tool_calls === undefined && words.choices[0].finish_reason === "length" &&
   words.choices[0].message.content === none.choices[0].message.content,
   `a reply in words: ${JSON.stringify(words.choices[0])}`);

// Parallel calls: a Hermes model may open several, each whole and valid; Llama 3's template shows
// one call per turn, so its reply ends after one even with parallel_tool_calls left on.
const many = await client.chat.completions.create({ model, messages, tools, max_tokens: 400, temperature: 1, seed: 9,
  logit_bias: { [toolCallId]: format === "hermes" ? 8 : 40 } });
const calls = many.choices[0].message.tool_calls ?? [];
ok(calls.length >= 1 && calls.every(valid) && (format === "hermes" || calls.length === 1),
   `parallel auto calls: ${JSON.stringify(many.choices[0])}`);

// The calls and their results go back in through Qwen's template.
const back = await client.chat.completions.create({ model, tools, max_tokens: 4, messages: [...messages,
  { role: "assistant", content: null, tool_calls: [whole] },
  { role: "tool", tool_call_id: whole.id, content: "{\"temp\": 21}" }] });
ok(typeof back.choices[0].message.content === "string" || back.choices[0].message.tool_calls, "tool results go back in");
console.log(`openai tool auto (${format}): ${checks} checks passed`);
