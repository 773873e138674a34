#!/usr/bin/env python3
"""Load benchmark for any OpenAI-compatible server (herd serve, llama.cpp's llama-server, ...):
aggregate generated tokens/s and time to first token at several numbers of concurrent streams.

    .venv/bin/python bench/serve_load.py --base-url http://127.0.0.1:8080/v1 \
        [--model ID] [--concurrency 1,4,8,16] [--max-tokens 128] [--requests-per-client 4] \
        [--api-key KEY] [--endpoint chat|completions] [--ban-tokens 128001,128008,128009] \
        [--ignore-eos] [--json]

For each concurrency level C, C client threads each send --requests-per-client streaming requests
one after another (the official `openai` client, stream=True with stream_options.include_usage).
Per request: the time to first token (request sent -> first chunk with text) and the completion
tokens (usage.completion_tokens when the server reports it, else the number of text chunks).
Per level: aggregate tokens/s = all completion tokens / wall time of the level; per-stream tokens/s
= a request's tokens after the first / its time after the first token, averaged; TTFT mean, p50
and p90.

Without --model the id comes from GET /v1/models (llama-server accepts any name but lists one).
Models may stop early at an end-of-turn token; for equal lengths use --ban-tokens (logit_bias -100,
herd and llama-server both honour it) or --ignore-eos (llama-server's extension). One warm-up
request runs first (--warmup 0 to skip).
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time

try:
    import openai
except ImportError:  # pragma: no cover
    sys.exit("serve_load.py needs the openai package: .venv/bin/pip install -r "
             "tools/requirements-test.txt")

DEFAULT_PROMPT = ("Write a long, detailed story about a lighthouse keeper who discovers a map "
                  "hidden in the lamp room. Describe every room of the lighthouse.")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", default="http://127.0.0.1:8080/v1",
                    help="the server's OpenAI base URL, with /v1 (default: %(default)s)")
    ap.add_argument("--model", help="model id (default: the first of GET /v1/models)")
    ap.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "none"),
                    help="bearer key (default: $OPENAI_API_KEY, else a dummy)")
    ap.add_argument("--concurrency", default="1,4,8,16",
                    help="comma-separated numbers of concurrent streams (default: %(default)s)")
    ap.add_argument("--max-tokens", type=int, default=128, help="max_tokens per request")
    ap.add_argument("--requests-per-client", type=int, default=4,
                    help="requests each concurrent client sends in turn (default: %(default)s)")
    ap.add_argument("--endpoint", choices=["chat", "completions"], default="chat")
    ap.add_argument("--prompt", default=DEFAULT_PROMPT)
    ap.add_argument("--unique-prompts", action="store_true",
                    help="start every request's prompt with its own tag, so no server can reuse "
                         "another request's prompt cache (measures prefill as well as decode)")
    ap.add_argument("--temperature", type=float, help="sampling temperature (default: server's)")
    ap.add_argument("--ban-tokens", default="",
                    help="comma-separated token ids given logit_bias -100 (e.g. the stop tokens)")
    ap.add_argument("--ignore-eos", action="store_true",
                    help="send ignore_eos: true (llama-server extension)")
    ap.add_argument("--warmup", type=int, default=1, help="warm-up requests before measuring")
    ap.add_argument("--timeout", type=float, default=600, help="per-request timeout, seconds")
    ap.add_argument("--json", action="store_true", help="print the results as JSON, not a table")
    args = ap.parse_args(argv)
    try:
        args.levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    except ValueError:
        ap.error("--concurrency must be comma-separated integers")
    if not args.levels or min(args.levels) < 1:
        ap.error("--concurrency levels must be >= 1")
    if args.max_tokens < 1 or args.requests_per_client < 1:
        ap.error("--max-tokens and --requests-per-client must be >= 1")
    return args


def make_client(args):
    # The openai client pools up to 1000 connections: one per stream here.
    return openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0,
                         timeout=args.timeout)


def request_kwargs(args, model):
    kw = {"model": model, "max_tokens": args.max_tokens, "stream": True,
          "stream_options": {"include_usage": True}}
    if args.temperature is not None:
        kw["temperature"] = args.temperature
    bans = [t.strip() for t in args.ban_tokens.split(",") if t.strip()]
    if bans:
        kw["logit_bias"] = {t: -100 for t in bans}
    if args.ignore_eos:
        kw["extra_body"] = {"ignore_eos": True}
    if args.endpoint == "chat":
        kw["messages"] = [{"role": "user", "content": args.prompt}]
    else:
        kw["prompt"] = args.prompt
    return kw


def one_request(client, args, kw):
    """Runs one streaming request; returns a dict of its timings and token count."""
    create = client.chat.completions.create if args.endpoint == "chat" else \
        client.completions.create
    t0 = time.perf_counter()
    first = None
    chunks = 0
    usage = None
    finish = None
    for ch in create(**kw):
        if getattr(ch, "usage", None):
            usage = ch.usage
        for c in ch.choices or []:
            text = c.delta.content if args.endpoint == "chat" else c.text
            if text:
                chunks += 1
                if first is None:
                    first = time.perf_counter()
            if c.finish_reason:
                finish = c.finish_reason
    end = time.perf_counter()
    tokens = usage.completion_tokens if usage and usage.completion_tokens is not None else chunks
    return {"ttft": (first - t0) if first is not None else None, "total": end - t0,
            "decode": (end - first) if first is not None else 0.0, "tokens": tokens,
            "finish": finish, "start": t0, "end": end}


def run_level(client, args, kw, concurrency):
    results, errors = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency)

    def worker(i):
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            pass
        for j in range(args.requests_per_client):
            try:
                mine = dict(kw)
                if args.unique_prompts:
                    tag = f"[{concurrency}.{i}.{j}] "
                    if "messages" in mine:
                        mine["messages"] = [{"role": "user", "content": tag + args.prompt}]
                    else:
                        mine["prompt"] = tag + args.prompt
                r = one_request(client, args, mine)
                with lock:
                    results.append(r)
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ttfts = sorted(r["ttft"] for r in results if r["ttft"] is not None)
    tokens = sum(r["tokens"] for r in results)
    rates = [(r["tokens"] - 1) / r["decode"] for r in results if r["tokens"] > 1 and r["decode"] > 0]
    pct = lambda xs, q: xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else None
    ms = lambda x: None if x is None else round(1000 * x, 1)
    return {
        "concurrency": concurrency,
        "requests": len(results),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "completion_tokens": tokens,
        "wall_s": round(wall, 3),
        "tokens_per_s": round(tokens / wall, 1) if wall > 0 else None,
        "per_stream_tokens_per_s": round(statistics.mean(rates), 1) if rates else None,
        "ttft_mean_ms": ms(statistics.mean(ttfts)) if ttfts else None,
        "ttft_p50_ms": ms(statistics.median(ttfts)) if ttfts else None,
        "ttft_p90_ms": ms(pct(ttfts, 0.9)),
        "finish_reasons": sorted({str(r["finish"]) for r in results}),
    }


def print_table(rows, header):
    cols = [("concurrency", "conc"), ("requests", "reqs"), ("errors", "errs"),
            ("completion_tokens", "tokens"), ("wall_s", "wall s"), ("tokens_per_s", "tok/s"),
            ("per_stream_tokens_per_s", "tok/s/stream"), ("ttft_mean_ms", "TTFT mean ms"),
            ("ttft_p50_ms", "TTFT p50 ms"), ("ttft_p90_ms", "TTFT p90 ms")]
    cells = [[h for _, h in cols]] + [["-" if r[k] is None else str(r[k]) for k, _ in cols]
                                      for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    print(header)
    for j, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if j == 0:
            print("  ".join("-" * w for w in widths))
    for r in rows:
        if r["first_error"]:
            print(f"concurrency {r['concurrency']}: {r['errors']} errors, first: "
                  f"{r['first_error']}", file=sys.stderr)


def main(argv=None):
    args = parse_args(argv)
    client = make_client(args)
    model = args.model
    if not model:
        try:
            models = client.models.list().data
        except openai.OpenAIError as e:
            sys.exit(f"serve_load.py: GET {args.base_url}/models failed ({e}); pass --model")
        if not models:
            sys.exit(f"serve_load.py: {args.base_url}/models lists no model; pass --model")
        model = models[0].id
    kw = request_kwargs(args, model)
    for _ in range(args.warmup):
        try:
            one_request(client, args, kw)
        except openai.OpenAIError as e:
            sys.exit(f"serve_load.py: the warm-up request failed: {e}")
    rows = [run_level(client, args, kw, c) for c in args.levels]
    summary = {"base_url": args.base_url, "model": model, "endpoint": args.endpoint,
               "max_tokens": args.max_tokens, "requests_per_client": args.requests_per_client,
               "results": rows}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(rows, f"{args.base_url}  model {model}  {args.endpoint}, max_tokens "
                          f"{args.max_tokens}, {args.requests_per_client} requests per client")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
