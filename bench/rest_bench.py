"""REST channel benchmark: the hub answering through its bot vs. a bare FastAPI baseline.

Starts two servers as subprocesses on free 127.0.0.1 ports, each the way `kefu run` serves
(uvicorn, one process, access log on):

- `hub`: `kefu run` on the embedded default (SQLite in a fresh temporary folder, in-process
  bus, the demo bot of config.yaml, trained into the temporary data folder);
- `baseline`: bench/baseline_app.py, a FastAPI endpoint that validates the same JSON body with a
  pydantic model and answers a one-element list, with no NLU, flows or database.

Then, for each concurrency level, C simulated customers (distinct `sender` ids, one httpx
keep-alive connection each) send a mix of English and Chinese messages to
`POST /webhooks/rest/webhook` back to back: a warm-up, then a measured window. Targets are
interleaved per level (baseline, hub, baseline, hub...) so drift on a shared machine hits both.
Reports messages/s, p50/p99/max latency, errors, the servers' CPU per request and peak RSS,
prints a Markdown table, and (by default) writes it into BENCHMARKS.md between the
`<!-- rest-bench:start -->` and `<!-- rest-bench:end -->` markers.

    python bench/rest_bench.py [--concurrency 8,32] [--duration 15] [--warmup 3] [--no-write]

`make bench` / `kefu bench` run this file from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report as common

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WEBHOOK = "/webhooks/rest/webhook"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# What the demo bot (examples/shop) is asked. One script per language; a customer keeps to one
# language and cycles through its script from its own offset. No message asks for a person or
# complains (both hand the conversation to a human, after which the bot answers `[]`), and
# out-of-scope messages (about 1 in 10) are never two in a row for one customer, since two
# fallbacks in a row hand off too. A customer who still gets `[]` continues as a new sender.
SCRIPTS: dict[str, list[str]] = {
    "en": [
        "hi",
        "where is my order 12345678",
        "how long does shipping to Shanghai take?",
        "can I return these shoes? they don't fit",
        "what's the weather like tomorrow",
        "do you accept Alipay?",
        "is my order 31415926 on the way?",
        "how much is delivery for a small order",
        "thanks a lot",
        "hello, can you help me with something?",
    ],
    "zh": [
        "你好",
        "我的订单20231105到哪了",
        "包邮吗",
        "我想申请退款",
        "给我讲个笑话",
        "可以用微信支付吗",
        "订单88001234什么时候到",
        "发货要几天",
        "谢谢",
        "您好，在吗",
    ],
}


# ---- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def memory_mb(pid: int, key: str) -> float | None:
    """VmRSS / VmHWM (peak RSS) of a process in MB, from /proc."""
    value = proc_status(pid).get(key)
    return int(value.split()[0]) / 1024 if value else None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, from /proc/<pid>/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    health_path: str
    log_path: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0
    rss_ready_mb: float | None = None
    peak_rss_mb: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float) -> None:
        started = time.perf_counter()
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches only us; we stop it
            )
        deadline = started + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.proc.returncode} during start-up:\n"
                        + self.log_tail()
                    )
                try:
                    if client.get(self.base_url + self.health_path).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() > deadline:
                    raise RuntimeError(
                        f"{self.name} did not answer {self.health_path} within {timeout:.0f} s:\n"
                        + self.log_tail()
                    )
                time.sleep(0.1)
        self.startup_s = time.perf_counter() - started
        self.rss_ready_mb = memory_mb(self.proc.pid, "VmRSS")

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) if self.proc else float("nan")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.peak_rss_mb = memory_mb(self.proc.pid, "VmHWM")
            # uvicorn shuts down gracefully, then re-raises the signal: SIGINT (not SIGTERM) lets
            # a cProfile-wrapped hub write its profile on the way out.
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").splitlines()
            return "\n".join(text[-lines:])
        return "(no log)"


def kefu_argv() -> list[str]:
    """`kefu` from the same environment as this interpreter, else `python -m hub`."""
    script = Path(sys.executable).with_name("kefu")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hub"]


def bench_config(tmp: Path) -> Path:
    """The repo's config.yaml with every public rate limit (`limits:`) off: a benchmark's
    customers write back to back, far faster than the limits let one customer."""
    import yaml

    from hub.ops.settings import LimitSettings

    tree = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    tree["limits"] = dict.fromkeys(LimitSettings.model_fields)
    # a relative bot path is read from the config file's folder: this copy is elsewhere
    tree["bot"]["path"] = str(ROOT / tree["bot"]["path"])
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(tree, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def make_servers(tmp: Path, profile_hub: bool = False) -> dict[str, Server]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "KEFU_CONFIG")}
    env["PYTHONUNBUFFERED"] = "1"
    hub_env = {
        **env,
        "KEFU_CONFIG": str(bench_config(tmp)),
        "KEFU_DATA_DIR": str(tmp / "data"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'kefu.db'}",
    }
    hub_port, base_port = free_port(), free_port()
    kefu = kefu_argv()
    if profile_hub:  # cProfile sees the event loop's thread only (not aiosqlite's)
        kefu = [sys.executable, "-m", "cProfile", "-o", str(tmp / "hub.prof"), "-m", "hub"]
    return {
        "baseline": Server(
            name="baseline",
            argv=[
                sys.executable,
                str(BENCH_DIR / "baseline_app.py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(base_port),
            ],
            env=env,
            health_path="/healthz",
            log_path=tmp / "baseline.log",
            port=base_port,
        ),
        "hub": Server(
            name="hub",
            argv=[*kefu, "run", "--host", "127.0.0.1", "--port", str(hub_port)],
            env=hub_env,
            health_path="/healthz",
            log_path=tmp / "hub.log",
            port=hub_port,
        ),
    }


# ---- load -------------------------------------------------------------------------------------


@dataclass
class Result:
    target: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    errors: int = 0
    empty: int = 0  # 200 with `[]`: no reply (a human has the conversation)
    elapsed: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    error_samples: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors

    @property
    def answered(self) -> int:
        """200 responses with at least one reply: what msg/s counts."""
        return len(self.latencies) - self.empty

    @property
    def rate(self) -> float:
        return self.answered / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        """Nearest-rank percentile in ms."""
        if not self.latencies:
            return float("nan")
        data = sorted(self.latencies)
        index = min(len(data) - 1, max(0, round(q / 100 * len(data) + 0.5) - 1))
        return data[index] * 1000


async def customer(
    client: httpx.AsyncClient,
    result: Result,
    cid: int,
    measure_from: float,
    stop_at: float,
    budget: list[int],
) -> None:
    lang = "en" if cid % 2 == 0 else "zh"
    script = SCRIPTS[lang]
    generation = 0
    sender = f"{result.target}-c{result.concurrency}-{cid}-{generation}"
    i = cid // 2  # each customer starts elsewhere in its script
    while True:
        started = time.perf_counter()
        if started >= stop_at or budget[0] <= 0:
            return
        measured = started >= measure_from
        if measured:
            budget[0] -= 1
        text = script[i % len(script)]
        i += 1
        error: str | None = None
        replies: Any = None
        try:
            response = await client.post(WEBHOOK, json={"sender": sender, "message": text})
            if response.status_code != 200:
                error = f"HTTP {response.status_code}: {response.text[:200]}"
            else:
                replies = response.json()
                if not isinstance(replies, list):
                    error = f"not a list: {response.text[:200]}"
        except (httpx.HTTPError, ValueError) as e:
            error = f"{type(e).__name__}: {e}"
            await asyncio.sleep(0.01)  # a server that is gone must not turn this into a spin
        latency = time.perf_counter() - started
        if error is None and not replies:
            generation += 1  # handed off (or no answer): carry on as a new customer
            sender = f"{result.target}-c{result.concurrency}-{cid}-{generation}"
        if not measured:
            continue
        if error is not None:
            result.errors += 1
            if len(result.error_samples) < 3:
                result.error_samples.append(error)
        else:
            result.latencies.append(latency)
            if not replies:
                result.empty += 1


async def run_load(
    server: Server,
    concurrency: int,
    warmup: float,
    duration: float,
    max_requests: int,
    request_timeout: float,
) -> Result:
    result = Result(server.name, concurrency)
    # One client (one keep-alive connection) per customer, like separate customers' apps; one
    # shared httpx pool of C connections costs the client noticeably more CPU per request.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=server.base_url,
                    timeout=httpx.Timeout(request_timeout),
                    limits=limits,
                )
            )
            for _ in range(concurrency)
        ]
        loop_start = time.perf_counter()
        measure_from = loop_start + warmup
        stop_at = measure_from + duration
        budget = [max_requests]
        tasks = [
            asyncio.create_task(customer(client, result, cid, measure_from, stop_at, budget))
            for cid, client in enumerate(clients)
        ]
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu0, client0, t0 = server.cpu(), time.process_time(), time.perf_counter()
        # Bounded: every request has a timeout, so the customers end shortly after stop_at.
        await asyncio.wait_for(
            asyncio.gather(*tasks), timeout=warmup + duration + request_timeout + 30
        )
        result.elapsed = time.perf_counter() - t0
        result.server_cpu = server.cpu() - cpu0
        result.client_cpu = time.process_time() - client0
    return result


# ---- report -----------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    return f"{value:,.{digits}f}"


def cpu_per_msg(r: Result) -> float:
    """Server CPU (user + system) per answered message, in ms."""
    return 1000 * r.server_cpu / r.answered if r.answered else float("nan")


def results_table(results: list[Result]) -> str:
    baseline = {r.concurrency: r for r in results if r.target == "baseline"}
    rows = [
        "| target | customers | requests | msg/s | p50 ms | p99 ms | max ms | errors "
        "| `[]` replies | server CPU ms/msg | client CPU | msg/s vs baseline |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    order = {"baseline": 0, "hub": 1}
    for r in sorted(results, key=lambda r: (r.concurrency, order.get(r.target, 9), r.target)):
        base = baseline.get(r.concurrency)
        ratio = f"{100 * r.rate / base.rate:.1f}%" if base and base.rate else "n/a"
        client_share = f"{100 * r.client_cpu / r.elapsed:.0f}%" if r.elapsed else "n/a"
        rows.append(
            f"| {r.target} | {r.concurrency} | {r.requests:,} | {fmt(r.rate)} | {fmt(r.pct(50))} "
            f"| {fmt(r.pct(99))} | {fmt(r.pct(100))} | {r.errors} | {r.empty} "
            f"| {fmt(cpu_per_msg(r), 2)} | {client_share} | {ratio} |"
        )
    return "\n".join(rows)


def servers_table(servers: dict[str, Server]) -> str:
    rows = [
        "| server | start-up s | RSS when ready MB | peak RSS (VmHWM) MB |",
        "|---|--:|--:|--:|",
    ]
    for s in servers.values():
        rows.append(
            f"| {s.name} | {fmt(s.startup_s)} | {fmt(s.rss_ready_mb)} | {fmt(s.peak_rss_mb)} |"
        )
    return "\n".join(rows)


def report(results: list[Result], servers: dict[str, Server], args: argparse.Namespace) -> str:
    now = common.now()
    ncpu = len(os.sched_getaffinity(0))  # what `nproc` prints
    hub = [r for r in results if r.target == "hub"]
    base = {r.concurrency: r for r in results if r.target == "baseline"}
    summary = "; ".join(
        f"{r.concurrency} customers: hub {fmt(r.rate, 0)} msg/s = "
        f"{100 * r.rate / base[r.concurrency].rate:.1f}% of the baseline, "
        f"{cpu_per_msg(r) / cpu_per_msg(base[r.concurrency]):.0f}x its server CPU per message"
        for r in hub
        if r.concurrency in base and base[r.concurrency].rate
    )
    client_bound = [
        r for r in results if r.target == "baseline" and r.client_cpu > 0.75 * r.elapsed
    ]
    rounds = f", {args.rounds} rounds, the median one shown" if args.rounds > 1 else ""
    lines = [
        "### REST channel: hub (bot on SQLite, in-process bus) vs. bare FastAPI",
        "",
        f"- Date: {now}; command: `{common.command_line('rest', 'bench/rest_bench.py')}`",
        f"- Machine: {common.machine(args.loadavg)}",
        "- msg/s counts answered messages (200 with a non-empty list) over the measured window; "
        "latencies are over all 200 responses; errors are non-200 answers and exceptions.",
        f"- Load: {args.warmup:g} s warm-up, then {args.duration:g} s measured per target and "
        f"level (targets interleaved{rounds}); C customers each send the next message as soon "
        "as the last reply arrives, each over its own httpx client and keep-alive connection; "
        f"English/Chinese demo-bot mix; {args.timeout:g} s timeout per "
        "request. The httpx client runs on the same machine and shares its "
        f"{ncpu} cores with the server (its CPU use is the `client CPU` column).",
        f"- Summary: {summary or 'n/a'}",
        *(
            [
                "- The load generator used over 75% of a core during the baseline runs at "
                + ", ".join(str(r.concurrency) for r in client_bound)
                + " customers: there the baseline's msg/s is bounded by the client more than "
                "by the server, so the hub's percentage of it flatters the hub; the server CPU "
                "per message compares the two servers more fairly."
            ]
            if client_bound
            else []
        ),
        "",
        results_table(results),
        "",
        servers_table(servers),
    ]
    samples = [f"{r.target}/{r.concurrency}: {e}" for r in results for e in r.error_samples]
    if samples:
        lines += ["", "Errors seen (first few):", "", *[f"- `{s}`" for s in samples]]
    return "\n".join(lines) + "\n"


# ---- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="rest_bench", description="REST channel throughput: hub vs. bare FastAPI."
    )
    p.add_argument(
        "--concurrency",
        default="8,32",
        type=lambda s: [int(x) for x in s.split(",") if x.strip()],
        help="customer counts, comma-separated (default 8,32)",
    )
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds (default 15)")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds (default 3)")
    p.add_argument(
        "--max-requests",
        type=int,
        default=200_000,
        help="stop a measured window after this many requests (default 200000)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure each target and level N times, interleaved; report the median (default 1)",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout s (default 10)")
    p.add_argument("--targets", default="baseline,hub", help="which servers (default baseline,hub)")
    p.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="update the rest-bench section of BENCHMARKS.md (default: yes)",
    )
    p.add_argument(
        "--profile-hub",
        action="store_true",
        help="run the hub under cProfile and print its top costs (figures not written)",
    )
    p.add_argument(
        "--keep-tmp", action="store_true", help="keep the temporary folder (logs, database)"
    )
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.targets) - {"baseline", "hub"}
    if unknown or not args.targets:
        p.error(f"--targets: unknown {sorted(unknown)}; use baseline and/or hub")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if not args.concurrency or min(args.concurrency) < 1:
        p.error("--concurrency needs positive numbers")
    return args


def sanity_check(server: Server, timeout: float) -> None:
    """One message before the load: the endpoint answers 200 with a non-empty list."""
    with httpx.Client(base_url=server.base_url, timeout=timeout) as client:
        response = client.post(WEBHOOK, json={"sender": "bench-check", "message": "hi"})
        if response.status_code != 200 or not response.json():
            raise RuntimeError(
                f"{server.name}: 'hi' got {response.status_code} {response.text[:300]}\n"
                + server.log_tail()
            )
        print(f"  {server.name} answers 'hi' with {response.text[:120]}", file=sys.stderr)


def median_rounds(results: list[Result]) -> list[Result]:
    """With --rounds N, the run with the median msg/s of each target and level."""
    groups: dict[tuple[str, int], list[Result]] = {}
    for r in results:
        groups.setdefault((r.target, r.concurrency), []).append(r)
    return [sorted(g, key=lambda r: r.rate)[(len(g) - 1) // 2] for g in groups.values()]


def print_profile(path: Path, top: int = 25) -> None:
    import pstats

    stats = pstats.Stats(str(path), stream=sys.stderr)
    stats.strip_dirs()
    for key in ("tottime", "cumulative"):
        print(f"\n---- hub profile, top {top} by {key} ----", file=sys.stderr)
        stats.sort_stats(key).print_stats(top)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--"]:  # `kefu bench -- --duration 5`: argparse keeps the `--`
        argv = argv[1:]
    args = parse_args(argv)
    # `kefu bench` sets up INFO logging, and httpx logs every request at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args.loadavg = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="kefu-bench-"))
    servers = {k: v for k, v in make_servers(tmp, args.profile_hub).items() if k in args.targets}
    results: list[Result] = []
    try:
        for server in servers.values():
            print(f"starting {server.name} on {server.base_url} ...", file=sys.stderr)
            server.start(timeout=180)
            print(f"  ready in {server.startup_s:.1f} s", file=sys.stderr)
            sanity_check(server, args.timeout)
        for concurrency in args.concurrency:
            for round_no, server in itertools.product(range(args.rounds), servers.values()):
                print(
                    f"{server.name}: {concurrency} customers, {args.warmup:g} s warm-up + "
                    f"{args.duration:g} s (round {round_no + 1}/{args.rounds}) ...",
                    file=sys.stderr,
                )
                r = asyncio.run(
                    run_load(
                        server,
                        concurrency,
                        args.warmup,
                        args.duration,
                        args.max_requests,
                        args.timeout,
                    )
                )
                results.append(r)
                print(
                    f"  {r.requests} requests, {r.rate:.1f} msg/s, p50 {fmt(r.pct(50))} ms, "
                    f"p99 {fmt(r.pct(99))} ms, {r.errors} errors, {r.empty} empty",
                    file=sys.stderr,
                )
                if server.proc is None or server.proc.poll() is not None:
                    raise RuntimeError(f"{server.name} died under load:\n" + server.log_tail())
    finally:
        for server in servers.values():
            server.stop()
        if args.profile_hub and (tmp / "hub.prof").exists():
            print_profile(tmp / "hub.prof")
        if args.keep_tmp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    section = report(median_rounds(results), servers, args)
    print(section)
    if args.write and args.profile_hub:
        print("not writing BENCHMARKS.md: the hub ran under cProfile", file=sys.stderr)
    elif args.write:
        common.write_section("rest-bench", section)
        print(f"updated {common.RESULTS_FILE.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the servers were stopped on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
