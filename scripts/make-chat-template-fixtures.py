#!/usr/bin/env python3
"""Regenerate Tests/Fixtures/chat-templates.json (committed; CI never runs this).

    python3 -m venv .venv && .venv/bin/pip install transformers
    .venv/bin/python scripts/make-chat-template-fixtures.py [SmolLM2 GGUF file]

Renders chat templates with transformers' own Jinja environment (`_compile_jinja_template`:
trim_blocks, lstrip_blocks), as `apply_chat_template(..., tokenize=False)` does, for several
conversations with and without the generation prompt: SmolLM2-135M-Instruct's template (read from
the GGUF file, default ~/.cache/swift-attention/SmolLM2-135M-Instruct/), and small templates that
exercise what ChatTemplate supports (whitespace control, elif, set, loop variables, filters, tests).
"""
import json
import pathlib
import sys

import gguf
from transformers.utils.chat_template_utils import _compile_jinja_template

path = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                    pathlib.Path.home() / ".cache/swift-attention/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
field = gguf.GGUFReader(str(path)).fields["tokenizer.chat_template"]
smollm2 = bytes(field.parts[field.data[0]]).decode("utf-8")

templates = {
    "smollm2": smollm2,
    "chatml-blocks": (
        "{% for message in messages %}\n"
        "    {%- if message.role == 'system' -%}\n"
        "<<SYS>>{{ message.content | trim }}<</SYS>>\n"
        "    {% elif message['role'] == 'user' %}\n"
        "[INST] {{ message.content }} [/INST]\n"
        "    {%- else %}\n"
        " {{ message.content }}{% if not loop.last %}\n{% endif %}\n"
        "    {% endif %}\n"
        "{% endfor %}\n"
        "{# a comment #}\n"
        "{%- if add_generation_prompt %}<assistant>{% endif %}"
    ),
    "variables": (
        "{% set count = messages | length %}{{ bos_token }}{{ count }} turns\n"
        "{% for m in messages %}{{ loop.index }}/{{ loop.length }} {{ m.role | upper }}"
        "{% if m.content is defined and 'cat' in m.content %} (cats){% endif %}: {{ m['content'] }}\n"
        "{% endfor %}{% if messages[-1].role != 'assistant' and add_generation_prompt %}ASSISTANT:{% endif %}"
        "{{ undefined_name is defined }} {{ none }} {{ true }}"
    ),
}
conversations = [
    [{"role": "user", "content": "What does attention compute in a transformer?"}],
    [{"role": "system", "content": "  You are terse.  "}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Tell me about cats."}],
    [{"role": "user", "content": "Line one\nline two, with 'quotes' and \"doubles\" {{ not a tag }}"}],
]
cases = []
for name, source in templates.items():
    compiled = _compile_jinja_template(source)
    for messages in conversations:
        for generation in (True, False):
            text = compiled.render(messages=messages, add_generation_prompt=generation, bos_token="<s>")
            cases.append({"template": name, "messages": messages, "addGenerationPrompt": generation, "text": text})
out = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "chat-templates.json"
out.write_text(json.dumps({"templates": templates, "cases": cases}, indent=1, ensure_ascii=False) + "\n")
print(f"wrote {out}: {len(cases)} renderings of {len(templates)} templates")
