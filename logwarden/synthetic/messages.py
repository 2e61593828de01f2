"""Render lifecycle steps as scheduler log messages whose numbers, addresses and ids vary.

Every variable part is something the default masking rules recognise (``<IP>``, ``<HEX>``,
``<NUM>``) or a single whitespace-free token, so mining finds one template per step and a
later line of the same step always matches it.  Hex ids always hold a letter and a digit:
an all-digit id would be masked as a number and miss its template.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from logwarden.synthetic.lifecycle import Step

_USERS = ("alice", "bob", "carol", "dmitri", "erin", "farid", "grace", "hiro", "ines", "svc-etl", "svc-ml")
_QUEUES = ("batch", "interactive", "gpu-short", "etl-nightly", "research", "backfill")
_TENANTS = ("acme-analytics", "payments-risk", "search-infra", "ml-platform", "ads-reporting")
_BINARIES = ("libblas.so.3", "libtorch_cpu.so", "libc.so.6", "libparquet.so.1500")


def random_hex(rng: np.random.Generator, length: int) -> str:
    """``length`` hex digits starting with a letter and ending with a digit."""
    digits = rng.integers(0, 16, size=length)
    digits[0] = rng.integers(10, 16)
    digits[-1] = rng.integers(0, 10)
    return "".join("0123456789abcdef"[d] for d in digits)


def random_ip(rng: np.random.Generator) -> str:
    """A worker address in 10.0.0.0/8 (text only: nothing is ever sent there)."""
    a, b, c = rng.integers(0, 256, size=3)
    return f"10.{a}.{b}.{max(int(c), 1)}"


@dataclass
class JobContext:
    """What stays the same across a job's lines: its id, owner, queue, and the current attempt."""

    job: str
    user: str
    queue: str
    tenant: str
    request_id: str
    workspace: str
    dataset: str
    trace_id: str
    host_ip: str
    attempt: int = 0
    slot: int = 0
    cpus: int = 1
    mem_mb: int = 1024
    work_done: int = 0
    checkpoints: int = 0
    elapsed_ms: int = 0

    @classmethod
    def new(cls, job: str, rng: np.random.Generator) -> JobContext:
        """A fresh job with its owner and placement preferences drawn from ``rng``."""
        return cls(
            job=job,
            user=_USERS[int(rng.integers(len(_USERS)))],
            queue=_QUEUES[int(rng.integers(len(_QUEUES)))],
            tenant=_TENANTS[int(rng.integers(len(_TENANTS)))],
            request_id=random_hex(rng, 12),
            workspace=random_hex(rng, 12),
            dataset=random_hex(rng, 8),
            trace_id=random_hex(rng, 16),
            # Drawn up front so a job whose schedule step is missing or late still names a host.
            host_ip=random_ip(rng),
        )


def render(step: Step, ctx: JobContext, rng: np.random.Generator) -> str:
    """The message text of ``step`` for the job in ``ctx``; advances the context (attempt, progress).

    The scheduler's own lines end with the job's trace id; the kernel's OOM line has none.
    """
    body = _body(step, ctx, rng)
    return body if step == "oom_kill" else f"{body} trace_id={ctx.trace_id}"


def _body(step: Step, ctx: JobContext, rng: np.random.Generator) -> str:
    j = ctx.job
    if step == "submit":
        return (
            f"{j} submitted by user {ctx.user} to queue {ctx.queue} priority={int(rng.integers(0, 10))} "
            f"request_id=0x{ctx.request_id} client={random_ip(rng)}:{int(rng.integers(1024, 65536))}"
        )
    if step == "queue":
        depth = int(rng.integers(1, 500))
        return (
            f"{j} queued in {ctx.queue} at position {int(rng.integers(1, depth + 1))} of {depth} "
            f"est_wait_ms={int(rng.integers(50, 120000))} policy=fair-share tenant={ctx.tenant}"
        )
    if step == "schedule":
        ctx.attempt += 1
        ctx.host_ip = random_ip(rng)
        ctx.slot = int(rng.integers(0, 64))
        ctx.cpus = int(rng.choice((1, 2, 4, 8, 16)))
        ctx.mem_mb = int(rng.choice((512, 1024, 2048, 4096, 8192, 16384)))
        return (
            f"{j} scheduled on host {ctx.host_ip} slot={ctx.slot} cpus={ctx.cpus} mem_mb={ctx.mem_mb} "
            f"attempt={ctx.attempt} placement_score={rng.random():.3f}"
        )
    if step == "stage_in":
        return (
            f"{j} staging {int(rng.integers(1, 400))} input files size_mb={int(rng.integers(1, 50000))} "
            f"from bucket ds-{ctx.dataset} to /scratch/{ctx.workspace} on {ctx.host_ip}"
        )
    if step == "cache_hit":
        return (
            f"{j} input cache hit for dataset ds-{ctx.dataset} on {ctx.host_ip}, "
            f"reused size_mb={int(rng.integers(1, 50000))} from /cache/{random_hex(rng, 12)}"
        )
    if step == "start":
        return (
            f"{j} started on {ctx.host_ip} pid={int(rng.integers(300, 4194304))} "
            f"container=ctr-{random_hex(rng, 12)} image=sha256:{random_hex(rng, 16)} attempt={ctx.attempt}"
        )
    if step == "progress":
        ctx.work_done += int(rng.integers(1000, 500000))
        ctx.elapsed_ms += int(rng.integers(500, 60000))
        return (
            f"{j} progress {min(99, ctx.work_done // 50000)}% records_processed={ctx.work_done} "
            f"rate_per_s={int(rng.integers(100, 90000))} elapsed_ms={ctx.elapsed_ms} "
            f"heap_mb={int(rng.integers(64, ctx.mem_mb + 1))}"
        )
    if step == "checkpoint":
        ctx.checkpoints += 1
        return (
            f"{j} checkpoint {ctx.checkpoints} written to "
            f"/data/ckpt/{ctx.dataset}/part-{ctx.checkpoints:05d} "
            f"size_bytes={int(rng.integers(4096, 2**31))} took_ms={int(rng.integers(5, 9000))}"
        )
    if step == "attempt_failed":
        return (
            f"{j} attempt {ctx.attempt} failed on {ctx.host_ip} exit_code={int(rng.integers(1, 256))} "
            f"signal=none, retrying in {int(rng.integers(100, 30000))} ms with backoff"
        )
    if step == "complete":
        duration_ms = ctx.elapsed_ms + int(rng.integers(1, 5000))
        return (
            f"{j} completed successfully exit_code=0 duration_ms={duration_ms} "
            f"output_bytes={int(rng.integers(0, 2**40))} attempts={ctx.attempt} tenant={ctx.tenant}"
        )
    if step == "cleanup":
        return (
            f"{j} workspace /scratch/{ctx.workspace} cleaned up on {ctx.host_ip}, "
            f"freed_mb={int(rng.integers(1, 60000))} released slot={ctx.slot} cpus={ctx.cpus}"
        )
    if step == "oom_kill":
        rss = int(rng.integers(ctx.mem_mb * 1024, ctx.mem_mb * 1100))
        return (
            f"kernel: Out of memory: Killed process {int(rng.integers(300, 4194304))} (worker) "
            f"in cgroup /sched/{j} total-vm={rss + int(rng.integers(1, 99999))}kB anon-rss={rss}kB"
        )
    if step == "segfault":
        return (
            f"{j} worker pid={int(rng.integers(300, 4194304))} terminated by signal 11 (SIGSEGV) "
            f"at address 0x{random_hex(rng, 12)} in {_BINARIES[int(rng.integers(len(_BINARIES)))]}"
        )
    if step == "quota_exceeded":
        limit = int(rng.integers(2**30, 2**40))
        return (
            f"{j} write to /data/ckpt/{ctx.dataset} rejected: disk quota exceeded for tenant {ctx.tenant} "
            f"limit_bytes={limit}"
        )
    raise ValueError(f"no message for step {step!r}")
