"""Rebalance across processes: three members of one group, each in its own process and
connected to the server, share a topic's eight queues. At steady state every message is
consumed exactly once; when one member is killed (SIGKILL, no goodbye) the others take its
queues once its lease lapses and nothing is lost (messages it had not committed come again:
delivery is at least once across a crash)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Optional

import ferrymq

import group_member
from conftest import LEASE_TTL_MS, Server, wait_for

QUEUES = 8


def read_assignment(path: Path) -> Optional[List[int]]:
    try:
        return list(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def consumed(paths: List[Path]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in paths:
        if path.exists():
            counts.update(line for line in path.read_text().splitlines() if line)
    return counts


def test_three_processes_share_a_topic_and_survive_a_kill(
    server: Server, remote: ferrymq.Client, name: Callable[[str], str], tmp_path: Path
) -> None:
    topic, group = name("t"), name("g")
    remote.admin().create_topic(topic, queues=QUEUES)
    context = multiprocessing.get_context("spawn")
    outs = [tmp_path / f"member{i}.out" for i in range(3)]
    assignments = [tmp_path / f"member{i}.json" for i in range(3)]
    members = [
        context.Process(
            target=group_member.run,
            args=(server.url, group, topic, str(outs[i]), str(assignments[i]), LEASE_TTL_MS),
            daemon=True,
        )
        for i in range(3)
    ]
    for member in members:
        member.start()
    try:

        def partitioned(alive: List[int]) -> Optional[Dict[int, List[int]]]:
            shares = {i: read_assignment(assignments[i]) for i in alive}
            if any(not share for share in shares.values()):
                return None
            owned = [q for share in shares.values() for q in share or []]
            if sorted(owned) != list(range(QUEUES)):
                return None
            return {i: share or [] for i, share in shares.items()}

        # Steady state: the three shares partition the queues.
        shares = wait_for(lambda: partitioned([0, 1, 2]), timeout=30, every=0.1)
        assert sorted(len(s) for s in shares.values()) == [2, 3, 3]

        producer = remote.producer()
        first = [f"one-{i}" for i in range(240)]
        producer.send_batch(topic, first)
        wait_for(lambda: all(consumed(outs)[body] for body in first), timeout=30, every=0.1)
        time.sleep(1.5)
        counts = consumed(outs)
        assert [body for body in first if counts[body] != 1] == [], "exactly once at steady state"
        per_member = [len(o.read_text().splitlines()) for o in outs]
        assert all(n > 0 for n in per_member), per_member

        # Kill one member mid-stream; publish throughout.
        second = [f"two-{i}" for i in range(300)]

        def publish() -> None:
            for start in range(0, len(second), 20):
                producer.send_batch(topic, second[start : start + 20])
                time.sleep(0.02)

        publisher = threading.Thread(target=publish)
        publisher.start()
        time.sleep(0.1)
        victim = members[0]
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)
        publisher.join(30)
        assert not publisher.is_alive()

        # The survivors take its queues and consume everything: nothing is lost.
        survivors = wait_for(lambda: partitioned([1, 2]), timeout=30, every=0.1)
        assert sorted(q for share in survivors.values() for q in share) == list(range(QUEUES))
        wait_for(lambda: all(consumed(outs)[body] for body in second), timeout=40, every=0.2)
        survivors_saw = consumed(outs[1:])
        killed_saw = consumed(outs[:1])
        missing = [b for b in second if not survivors_saw[b] and not killed_saw[b]]
        assert missing == []
        # Whatever the killed member had not consumed went to the survivors.
        assert all(survivors_saw[b] for b in second if not killed_saw[b])
    finally:
        for member in members:
            if member.is_alive():
                member.kill()
            member.join(10)
