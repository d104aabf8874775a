"""Hundreds of malformed or hostile requests against a running `forge serve`: each must get a 4xx
with an OpenAI-style error body, and the server must still answer a normal request afterwards.
Also: slow clients time out with 408, and a client that disconnects mid-generation is cancelled.
usage: hostile_requests.py PORT API_KEY MODEL"""
import json
import socket
import sys
import threading
import time

PORT, KEY, MODEL = int(sys.argv[1]), sys.argv[2], sys.argv[3]
AUTH = f"Authorization: Bearer {KEY}\r\n"


def raw(data, read_timeout=20.0):
    """Sends bytes on a fresh connection and returns (status, body) of the response."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=read_timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (413) before the whole body is sent
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if sep:
                length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
                if length and len(rest) >= length[0]:
                    break
    finally:
        s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.") else 0
    return status, body


def post(path, body, headers="Content-Type: application/json\r\n" + AUTH, length=None):
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    n = len(body) if length is None else length
    return raw(f"POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {n}\r\nConnection: close\r\n\r\n".encode() + body)


failures = []
count = 0


def expect_4xx(name, status_body, want=None):
    global count
    count += 1
    status, body = status_body
    try:
        err = json.loads(body)["error"]
        good = isinstance(err["message"], str) and err["message"] and {"type", "param", "code"} <= set(err)
    except Exception:
        good = False
    if not (400 <= status < 500) or (want and status != want) or not good:
        failures.append(f"{name}: HTTP {status} {body[:200]!r}")


valid = {"model": MODEL, "prompt": "hello", "max_tokens": 2}
valid_text = json.dumps(valid)
chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}

# 1. Broken JSON: every prefix of a valid body, plus assorted garbage.
for cut in range(0, len(valid_text) - 1, 1):
    expect_4xx(f"prefix {cut}", post("/v1/completions", valid_text[:cut]), 400)
for junk in ["{", "}", "[]", "null", "42", '"str"', "{'model': 1}", '{"model": "x",}', "{\"a\":1}{", "\x00\x01",
             '{"model": NaN}', '{"model": "' + MODEL + '", "prompt": "x", "max_tokens": 1e999}']:
    expect_4xx(f"junk {junk!r}", post("/v1/completions", junk))

# 2. Wrong types, out-of-range and huge values, field by field.
bad_values = {
    "model": [1, None, [], {}, True],
    "prompt": [None, 5, {}, [], [[]], [1.5], [-1], [10 ** 9], [True], [{"a": 1}]],
    "max_tokens": ["10", -1, 0, 10 ** 12, 1.5, True, [], {}],
    "temperature": ["hot", -0.1, 2.5, 1e308, [], True],
    "top_p": [0, -1, 1.1, "x", {}],
    "top_k": [-2, 1.5, "5", []],
    "min_p": [-0.5, 2, "a"],
    "n": [0, -3, 17, 10 ** 6, "2", 1.5],
    "stream": ["yes", 1, [], {}],
    "stream_options": ["x", 1, {"include_usage": "yes"}, {"foo": True}],
    "stop": [5, [1, 2], {"a": "b"}, ["x"] * 17, ["y" * 2000]],
    "seed": ["1", 1.5, [], 2 ** 70],
    "presence_penalty": [3, -3, "x"],
    "frequency_penalty": [2.5, -2.5, []],
    "repetition_penalty": [0, -1, 1000, "x"],
    "logprobs": [-1, 21, "3", 1.5],
    "ignore_eos": ["true", 1],
    "stop_token_ids": ["x", [-1], [1.5], [10 ** 9]],
    "echo": ["no", 2],
    "user": [5, []],
    "logit_bias": ["x", [1], {"abc": 1}, {"-1": 1}, {"1.5": 1}, {"999999999": 1}, {"5": 101}, {"5": "1"},
                   {str(i): 1 for i in range(1025)}],
    "min_tokens": [-1, "2", 1.5, 10 ** 6],
    "response_format": ["json", {}, {"type": 1}, {"type": "xml"}, {"type": "json_schema", "json_schema": {}},
                        {"type": "json_object", "schema": {}}, {"type": "json_schema"},
                        {"type": "json_schema", "json_schema": {"schema": {"type": "integer", "multipleOf": 0}}},
                        {"type": "json_schema", "json_schema": {"schema": {"type": "integer", "minimum": 2, "maximum": 1}}},
                        {"type": "json_schema", "json_schema": {"schema": {"type": "nope"}}},
                        {"type": "json_schema", "json_schema": {"schema": {"$ref": "#/x"}}},
                        {"type": "json_schema", "json_schema": {"schema": {"$ref": "#"}}},
                        {"type": "json_schema", "json_schema": {"schema": False}},
                        {"type": "json_schema", "json_schema": {"schema": 5}},
                        {"type": "json_schema", "json_schema": {"name": 3, "schema": {}}},
                        {"type": "json_schema", "json_schema": {"schema": {}, "strict": "yes"}},
                        {"type": "json_schema", "json_schema": {"schema": {}, "extra": 1}},
                        {"type": "json_schema", "json_schema": {"schema": {"enum": []}}},
                        {"type": "json_schema", "json_schema": {"schema": {"minLength": -1}}},
                        {"type": "json_schema", "json_schema": {"schema": {"properties": {"a": {}}, "required": ["b"]}}},
                        {"type": "json_schema", "json_schema": {"schema": {"items": {"items": {"items": 7}}}}}],
}
for field, values in bad_values.items():
    for v in values:
        body = dict(valid)
        body[field] = v
        expect_4xx(f"{field}={v!r}"[:80], post("/v1/completions", json.dumps(body)))
chat_bad = {
    "messages": [None, "hi", [], [1], [{}], [{"role": "user"}], [{"role": "wizard", "content": "x"}],
                 [{"role": "user", "content": 5}], [{"role": "user", "content": [{"type": "image_url"}]}],
                 [{"role": "user", "content": "x", "extra": 1}], [{"role": 7, "content": "x"}]],
    "top_logprobs": [-1, 21, "2"],
    "max_completion_tokens": [0, -5, "7"],
    "logprobs": ["yes", 3],
    "tools": ["x", {}, [1], [{}], [{"type": "function"}], [{"type": "retrieval", "function": {"name": "f"}}],
              [{"type": "function", "function": {}}], [{"type": "function", "function": {"name": "a b"}}],
              [{"type": "function", "function": {"name": "f" * 65}}],
              [{"type": "function", "function": {"name": "f", "parameters": "x"}}],
              [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "minProperties": 1}}}],
              [{"type": "function", "function": {"name": "f", "extra": 1}}],
              [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}],
              [{"type": "function", "function": {"name": "f"}}] * 129],
    "tool_choice": ["required", "auto", 5, {"type": "function"}, {"type": "function", "function": {"name": 1}}],
    "parallel_tool_calls": ["no"],
    "chat_template_kwargs": ["x", 5, [1], {"messages": []}, {"add_generation_prompt": False}, {"tools": 1}],
    "continue_final_message": ["yes", 1], "add_generation_prompt": ["no", 0],
}
for field, values in chat_bad.items():
    for v in values:
        body = dict(chat)
        body[field] = v
        expect_4xx(f"chat {field}={v!r}"[:80], post("/v1/chat/completions", json.dumps(body)))
f_tool = [{"type": "function", "function": {"name": "f"}}]
for choice in [None, "auto", "bogus", {"type": "function", "function": {"name": "g"}}]:
    expect_4xx(f"tool_choice {choice!r} with tools", post("/v1/chat/completions", json.dumps(
        {**chat, "tools": f_tool, **({} if choice is None else {"tool_choice": choice})})), 400)
expect_4xx("tool_choice with response_format", post("/v1/chat/completions", json.dumps(
    {**chat, "tools": f_tool, "tool_choice": "required", "response_format": {"type": "json_object"}})), 400)
expect_4xx("tool_calls on a user message", post("/v1/chat/completions", json.dumps(
    {**chat, "messages": [{"role": "user", "content": "x", "tool_calls": []}]})), 400)
expect_4xx("tool_calls not a list", post("/v1/chat/completions", json.dumps(
    {**chat, "messages": [{"role": "assistant", "content": None, "tool_calls": {}}, {"role": "user", "content": "x"}]})), 400)
for msgs in ([{"role": "user", "content": "x", "reasoning": "y"}],
             [{"role": "assistant", "content": "x", "reasoning_content": 5}, {"role": "user", "content": "y"}],
             [{"role": "assistant", "content": "x", "reasoning": "a", "reasoning_content": "b"}, {"role": "user", "content": "y"}]):
    expect_4xx(f"reasoning {msgs[0]}"[:80], post("/v1/chat/completions", json.dumps({**chat, "messages": msgs})), 400)
for route, body in [("/tokenize", "{"), ("/tokenize", "[]"), ("/tokenize", json.dumps({"messages": "x"})),
                    ("/tokenize", json.dumps({"prompt": "x", "add_special_tokens": "yes"})),
                    ("/detokenize", json.dumps({"tokens": [10 ** 9]})), ("/detokenize", json.dumps({"tokens": [1.5]}))]:
    expect_4xx(f"{route} {body}"[:80], post(route, body), 400)
expect_4xx("tool_call_id not a string", post("/v1/chat/completions", json.dumps(
    {**chat, "messages": [{"role": "tool", "content": "x", "tool_call_id": 5}]})), 400)
expect_4xx("top_logprobs without logprobs", post("/v1/chat/completions", json.dumps({**chat, "top_logprobs": 2})), 400)

# 3. Unknown fields and fields of the other endpoint.
for field in ["frobnicate", "best_of", "suffix", "tools", "functions", "response_format", "messages",
              "prompt_logprobs", "guided_json", "", "__proto__", "max-tokens", "Model", "MODEL", "temperature ",
              "n\u0000", "extra_body", "top_a", "mirostat"]:
    body = dict(valid)
    body[field] = 1
    expect_4xx(f"unknown field {field!r}", post("/v1/completions", json.dumps(body)), 400)
expect_4xx("prompt on chat", post("/v1/chat/completions", json.dumps({**chat, "prompt": "x"})), 400)

# 4. Unknown model, context overflow, oversized bodies.
expect_4xx("unknown model", post("/v1/completions", json.dumps({**valid, "model": "gpt-9"})), 404)
expect_4xx("prompt too long", post("/v1/completions", json.dumps({**valid, "prompt": "word " * 5000})), 400)
expect_4xx("prompt + max_tokens too long", post("/v1/completions", json.dumps({**valid, "max_tokens": 100000})), 400)
big = json.dumps({**valid, "prompt": "x" * (5 << 20)})
expect_4xx("oversized body", post("/v1/completions", big), 413)
expect_4xx("oversized Content-Length", post("/v1/completions", b"{}", length=1 << 40), 413)
expect_4xx("negative Content-Length", raw(b"POST /v1/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n"), 400)
expect_4xx("bad Content-Length", raw(b"POST /v1/completions HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n"), 400)

# 5. Broken UTF-8 in otherwise valid JSON.
for bad in [b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf", b"a\x80b",
            b"\xf4\x90\x80\x80", b"\xfe\xfe", b"\xef\xbf"]:
    body = b'{"model": "' + MODEL.encode() + b'", "prompt": "' + bad + b'", "max_tokens": 2}'
    expect_4xx(f"utf8 {bad!r}", post("/v1/completions", body), 400)

# 6. HTTP framing, methods, routes, headers, auth.
expect_4xx("garbage request line", raw(b"HELLO\r\n\r\n"), 400)
expect_4xx("bad version", raw(b"GET /health HTTP/2.0\r\n\r\n"))
expect_4xx("bad target", raw(b"GET health HTTP/1.1\r\n\r\n"), 400)
expect_4xx("bad header", raw(b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n"), 400)
expect_4xx("huge headers", raw(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * (64 << 10) + b"\r\n\r\n"), 431)
expect_4xx("chunked body", raw(b"POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), 411)
expect_4xx("GET completions", raw(f"GET /v1/completions HTTP/1.1\r\n{AUTH}\r\n".encode()), 405)
expect_4xx("DELETE models", raw(f"DELETE /v1/models HTTP/1.1\r\n{AUTH}\r\n".encode()), 405)
expect_4xx("unknown route", raw(f"GET /v1/engines HTTP/1.1\r\n{AUTH}\r\n".encode()), 404)
expect_4xx("wrong content type", post("/v1/completions", valid_text, headers="Content-Type: text/plain\r\n" + AUTH), 415)
expect_4xx("no auth", post("/v1/completions", valid_text, headers="Content-Type: application/json\r\n"), 401)
expect_4xx("wrong auth", post("/v1/completions", valid_text,
                              headers="Content-Type: application/json\r\nAuthorization: Bearer nope\r\n"), 401)
expect_4xx("basic auth", post("/v1/completions", valid_text,
                              headers="Content-Type: application/json\r\nAuthorization: Basic eDp5\r\n"), 401)

# 7. Slow clients: headers that never finish, a body that never arrives (server --request-timeout 2).
results = []


def slow(payload):
    results.append(raw(payload, read_timeout=30))


threads = [threading.Thread(target=slow, args=(p,)) for p in [
    b"POST /v1/completions HTTP/1.1\r\nContent-Type: application/json\r\n",
    b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"model\"",
    b"GET /health HTTP/1.1\r\nX-Slow: 1",
]]
for t in threads:
    t.start()
for t in threads:
    t.join()
for i, r in enumerate(results):
    expect_4xx(f"slow client {i}", r, 408)

# 8. Clients that disconnect mid-generation are cancelled: a plain request closed right after it
# is sent, and a streamed one closed after its first chunk. Each asks for 16 x 240 tokens (about
# 0.2 s of work here), far longer than the server needs to notice the hang-up.
def aborted_total():
    metrics = raw(b"GET /metrics HTTP/1.1\r\n\r\n")[1].decode()
    return int(float([ln.split()[1] for ln in metrics.splitlines() if ln.startswith("forge_requests_aborted_total ")][0]))


def hang_up(stream):
    before = aborted_total()
    s = socket.create_connection(("127.0.0.1", PORT))
    body = json.dumps({"model": MODEL, "prompt": "long", "max_tokens": 240, "n": 16, "ignore_eos": True,
                       "stream": stream}).encode()
    s.sendall(f"POST /v1/completions HTTP/1.1\r\nContent-Type: application/json\r\n{AUTH}"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    if stream:
        got = b""
        while b"data: {" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    s.close()
    for _ in range(100):
        if aborted_total() >= before + 16:  # every one of the n sequences
            return
        time.sleep(0.1)
    failures.append(f"a disconnected client's {'streamed' if stream else 'plain'} request was not cancelled")


hang_up(stream=False)
hang_up(stream=True)
count += 2

# The server is still up and answers a normal request.
status, body = post("/v1/completions", valid_text)
if status != 200 or "choices" not in json.loads(body):
    failures.append(f"normal request after the storm: HTTP {status} {body[:200]!r}")
status, _ = raw(b"GET /health HTTP/1.1\r\n\r\n")
if status != 200:
    failures.append(f"/health after the storm: HTTP {status}")

print(f"hostile requests: {count} sent, {len(failures)} failures")
for f in failures:
    print("  " + f)
sys.exit(1 if failures or count < 200 else 0)
