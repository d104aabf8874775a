"""A bounded chaos client against a running `forge serve` (issue 29): REQUESTS requests at
CONCURRENCY, each one of: a plain completion or chat request (base model or the LoRA adapter),
the same streamed, the same with a 3 MB body, a stream the client drops half way, a stream read
slowly, an oversized body,
a malformed body, a keep-alive connection the client closes before reading the answer, and an
idle client that sends half a request head and goes away.

Checks: every well-formed request that the client reads to the end gets the text that the same
request gets alone (temperature 0); bad ones get a 4xx with an OpenAI error body; afterwards no
request is left running or waiting, the KV cache is empty again, /metrics counted at least the
requests the client completed, and the server's resident memory (VmRSS of PID, after the server
has been idle a moment) is within 5% of its level after a warm-up of the same mix and size.
usage: chaos_client.py PORT API_KEY MODEL ADAPTER PID REQUESTS CONCURRENCY [SEED]"""
import json
import os
import random
import socket
import sys
import threading
import time

PORT, KEY, MODEL, ADAPTER, PID = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
N, CONC = int(sys.argv[6]), int(sys.argv[7])
SEED = int(sys.argv[8]) if len(sys.argv) > 8 else 1
PROMPTS = ["The quick brown fox", "Once upon a time", "In the beginning", "A cat sat", "Rain fell on the",
           "She opened the door and", "Numbers: 1 2 3", "Hello world"]


def rss_mib():
    for line in open(f"/proc/{PID}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def request_bytes(path, body, keep_alive=False):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n")
    return head.encode() + data


def read_all(s, slow=False, stop_after=None):
    """Reads until the server closes (or stop_after bytes, then drops the connection)."""
    buf = b""
    while True:
        chunk = s.recv(256 if slow else 65536)
        if not chunk:
            return buf
        buf += chunk
        if slow:
            time.sleep(0.02)
        if stop_after is not None and len(buf) >= stop_after:
            return None


def send(path, body, **kw):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=60)
    try:
        try:
            s.sendall(request_bytes(path, body))
        except (BrokenPipeError, ConnectionResetError):
            pass  # an oversized body is answered before it is all sent
        return read_all(s, **kw)
    except ConnectionResetError:
        return b""
    finally:
        s.close()


def parse(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.") else 0
    if b"transfer-encoding: chunked" in head.lower():  # de-chunk
        out, rest = b"", body
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size, 16) if size else 0
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        body = out
    return status, body


def text_of(body, stream, chat):
    if not stream:
        choice = json.loads(body)["choices"][0]
        return choice["message"]["content"] if chat else choice["text"]
    out = ""
    for line in body.decode().split("\n"):
        if line.startswith("data: ") and line != "data: [DONE]":
            choice = json.loads(line[6:])["choices"]
            if choice:
                out += (choice[0]["delta"].get("content") or "") if chat else choice[0]["text"]
    return out


def body_of(prompt_i, model, chat, stream, max_tokens):
    b = {"model": model, "max_tokens": max_tokens, "temperature": 0, "stream": stream}
    if chat:
        b["messages"] = [{"role": "user", "content": PROMPTS[prompt_i]}]
    else:
        b["prompt"] = PROMPTS[prompt_i]
    return ("/v1/chat/completions" if chat else "/v1/completions"), b


expected = {}  # (prompt, model, chat, max_tokens) -> text, from the request alone
for p in range(len(PROMPTS)):
    for model in (MODEL, ADAPTER):
        for chat in (False, True):
            path, b = body_of(p, model, chat, False, 24)
            status, body = parse(send(path, b))
            assert status == 200, (status, body[:300])
            expected[(p, model, chat)] = text_of(body, False, chat)

lock = threading.Lock()
stats = {"ok": 0, "dropped": 0, "rejected": 0}
failures = []
KINDS = ["plain", "plain", "stream", "stream", "drop", "slow", "oversized", "malformed", "keepalive_close", "idle",
         "big"]
if os.environ.get("CHAOS_KINDS"):  # a subset, to find which kind of client costs memory
    KINDS = os.environ["CHAOS_KINDS"].split(",")


def one(rng):
    kind = rng.choice(KINDS)
    p, model, chat = rng.randrange(len(PROMPTS)), rng.choice((MODEL, ADAPTER)), rng.random() < 0.5
    try:
        if kind in ("plain", "stream", "slow"):
            stream = kind != "plain"
            path, b = body_of(p, model, chat, stream, 24)
            status, body = parse(send(path, b, slow=kind == "slow"))
            got = text_of(body, stream, chat) if status == 200 else None
            if status != 200 or got != expected[(p, model, chat)]:
                raise AssertionError(f"{kind} {path} {model} prompt {p}: HTTP {status}, {got!r} != "
                                     f"{expected[(p, model, chat)]!r}")
            key = "ok"
        elif kind == "drop":  # reads the first events, then goes away
            path, b = body_of(p, model, chat, True, 200)
            b["ignore_eos"] = True
            send(path, b, stop_after=rng.randrange(200, 600))
            key = "dropped"
        elif kind == "big":  # a valid body near the size limit (a 3 MB `user` string)
            path, b = body_of(p, model, chat, False, 24)
            b["user"] = "u" * (3 << 20)
            status, body = parse(send(path, b))
            if status != 200 or text_of(body, False, chat) != expected[(p, model, chat)]:
                raise AssertionError(f"big body: HTTP {status} {body[:200]!r}")
            key = "ok"
        elif kind == "idle":  # half a request head, then nothing for a while, then gone
            s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
            time.sleep(0.2 + rng.random() * 0.8)
            s.close()
            key = "dropped"
        elif kind == "keepalive_close":  # asks, then closes without reading
            s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
            path, b = body_of(p, model, chat, False, 200)
            s.sendall(request_bytes(path, b, keep_alive=True))
            time.sleep(rng.random() * 0.05)
            s.close()
            key = "dropped"
        else:
            path, b = body_of(p, model, chat, False, 4)
            data = json.dumps(b).encode()
            data = data[: len(data) // 2] if kind == "malformed" else data + b" " * (5 << 20)
            status, body = parse(send(path, data))
            err = json.loads(body)["error"]
            if not (400 <= status < 500 and err["message"]):
                raise AssertionError(f"{kind}: HTTP {status} {body[:200]!r}")
            key = "rejected"
        with lock:
            stats[key] += 1
    except Exception as e:  # noqa: BLE001
        with lock:
            failures.append(f"{kind}: {type(e).__name__}: {e}")


def run(n, seed):
    rng_lock = threading.Lock()
    rng = random.Random(seed)
    left = [n]

    def worker():
        while True:
            with rng_lock:
                if left[0] == 0:
                    return
                left[0] -= 1
                r = random.Random(rng.random())
            one(r)

    threads = [threading.Thread(target=worker) for _ in range(CONC)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def metrics():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw = read_all(s)
    s.close()
    out = {}
    for line in parse(raw)[1].decode().split("\n"):
        if line.startswith("forge_") and " " in line and "{" not in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def settle():
    """Waits until no request is running or waiting, then a moment more; returns /metrics."""
    for _ in range(200):
        m = metrics()
        if m.get("forge_num_requests_running", 1) == 0 and m.get("forge_num_requests_waiting", 1) == 0:
            break
        time.sleep(0.1)
    time.sleep(1.5)  # connection threads finish their lingering close
    return metrics()


start_rss = rss_mib()
run(N, SEED + 1)  # warm-up: the same mix and size, so what is kept for reuse fills once
settle()
for k in stats:
    stats[k] = 0
failures.clear()
before = rss_mib()
m0 = metrics()
start = time.time()
run(N, SEED)
took = time.time() - start
m1 = settle()
after = rss_mib()
served = m1.get("forge_requests_total", 0) - m0.get("forge_requests_total", 0)
print(f"chaos: {N} requests at concurrency {CONC} in {took:.1f}s: {stats['ok']} answered and checked, "
      f"{stats['dropped']} dropped by the client, {stats['rejected']} rejected with 4xx; {len(failures)} failures; "
      f"/metrics counted {served:.0f} requests; RSS {start_rss:.0f} MiB at the start, {before:.0f} MiB after "
      f"warm-up, {after:.0f} MiB after")
for f in failures[:10]:
    print("  " + f)
problems = []
if failures:
    problems.append(f"{len(failures)} requests failed")
if m1.get("forge_kv_cache_usage_ratio", 1) != 0:
    problems.append(f"KV cache usage {m1.get('forge_kv_cache_usage_ratio')} after the run (blocks leaked)")
if served < stats["ok"]:
    problems.append(f"/metrics counted {served} requests, fewer than the {stats['ok']} answered")
if after > before * 1.05:
    problems.append(f"resident memory grew from {before:.0f} to {after:.0f} MiB")
if problems:
    print("FAIL: " + "; ".join(problems))
    sys.exit(1)
