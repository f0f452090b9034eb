"""Run: python examples/llm_scripted_server.py   (offline: the LLM policy against a local scripted server)

The LLM policy talks HTTP to hch's OpenAI-compatible test server exactly as it would to OpenAI,
vLLM, Ollama or llama.cpp. The server plays a model that decomposes a sum, and misbehaves on
purpose: a 429 with Retry-After, a dropped connection, and a reply that is not JSON. The run still
answers, every attempt is in the trace, and the token totals are the ones the server reported.
A second run with the same cache makes no request at all.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import hch
from hch.policies.llm import LLMPolicy
from hch.policies.presets import Price, Retry
from hch.review import accounting
from hch.testing.openai_server import OpenAIServer, Step, hch_responder

QUESTION = "What is 1+2+3+4?"
TREE: dict[str, list[str] | str] = {
    QUESTION: ["What is 1+2?", "What is 3+4?"], "What is 1+2?": "3", "What is 3+4?": "7",
}


def add(question: str, answers: list[str]) -> str:
    return str(sum(int(a) for a in answers))


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="hch-llm-example-"))
    with OpenAIServer(hch_responder(TREE, add)) as server:
        server.inject('"What is 1+2?"', Step.error(429, retry_after=0.1), Step(drop=True))
        server.inject('"What is 3+4?"', Step(content="Sure! The answer is 7."))
        policy = LLMPolicy(
            model="scripted", base_url=server.base_url, price=Price(input=0.15, output=0.60),
            retry=Retry(initial_wait=0.05, max_wait=0.2, jitter=0.05), max_concurrency=2,
        )
        cache = hch.CallCache(folder / "cache.sqlite")
        result = hch.answer_sync(QUESTION, depth=2, policy=policy, call_cache=cache, trace_path=folder / "run.json")
        print(f"answer: {result.answer}   ({result.summary.line()})")
        for _, call in result.trace.calls():
            steps = ", ".join(f"{a['status'] or 'no reply'}→{a['outcome']}" for a in call["attempts"])
            print(f"  {call['input']['question']!r:22} attempts: {steps}")
        spent, reported = accounting.run_usage(result.trace), server.reported_usage()
        print(f"tokens: hch counted {spent.total_tokens}, the server reported "
              f"{reported['prompt_tokens'] + reported['completion_tokens']}; cost ${spent.cost:.6f}")
        before = len(server.requests)
        again = hch.answer_sync(QUESTION, depth=2, policy=policy, call_cache=cache)
        cache.close()
        print(f"rerun: {again.answer}, {len(server.requests) - before} requests, "
              f"{again.summary.call_cache_hits} calls from the cache")
        print(f"trace: {folder / 'run.json'}")


if __name__ == "__main__":
    main()
