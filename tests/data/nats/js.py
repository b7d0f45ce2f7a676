#!/usr/bin/env python3
"""An independent JetStream client for the tests (Python's nats-py, not the
listener's async-nats).

  js.py dump SERVERS STREAM SUBJECT   every message on SUBJECT, in stream
                                      order, one JSON object per line:
                                      {"seq", "headers", "data" (base64)}
  js.py leader SERVERS STREAM [NOT]   the name of the stream's leader (one
                                      other than NOT), waiting for an election
  js.py count SERVERS STREAM          how many messages the stream holds
  js.py publish SERVERS SUBJECT DATA  one plain JetStream publish (no checks)
  js.py flood SERVERS SUBJECT SECS    plain publishes without pause for SECS,
                                      then prints how many

SERVERS is a comma-separated list of URLs. Exits non-zero with a message on
stderr when the servers cannot be reached within the timeout.
"""
import asyncio
import base64
import io
import json
import sys
import time

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy, AckPolicy


async def connect(servers):
    return await nats.connect(servers=servers.split(","), connect_timeout=5,
                              max_reconnect_attempts=20, reconnect_time_wait=0.2)


async def dump(servers, stream, subject, out):
    nc = await connect(servers)
    js = nc.jetstream(timeout=10)
    info = await js.stream_info(stream, subjects_filter=subject)
    count = (info.state.subjects or {}).get(subject, 0)
    if count:
        sub = await js.pull_subscribe(subject, stream=stream, config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0))
        got = 0
        while got < count:
            for m in await sub.fetch(min(1000, count - got), timeout=10):
                out.write(json.dumps({
                    "seq": m.metadata.sequence.stream,
                    "headers": dict(m.headers or {}),
                    "data": base64.b64encode(m.data).decode(),
                }) + "\n")
                got += 1
        await sub.unsubscribe()
    out.flush()
    await nc.close()


async def leader(servers, stream, other_than=""):
    """Waits (up to 60 s, through elections) for a leader other than
    `other_than` and prints its name."""
    nc = await connect(servers)
    js = nc.jetstream(timeout=2)
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        try:
            info = await js.stream_info(stream)
            name = info.cluster.leader if info.cluster else ""
            if name and name != other_than:
                print(name)
                break
        except Exception:  # noqa: BLE001 - no leader yet: ask again
            if asyncio.get_running_loop().time() > deadline:
                raise
        if asyncio.get_running_loop().time() > deadline:
            sys.exit(f"js.py leader: no leader other than {other_than!r} within 60 s")
        await asyncio.sleep(0.1)
    await nc.close()


async def count(servers, stream):
    nc = await connect(servers)
    js = nc.jetstream(timeout=10)
    print((await js.stream_info(stream)).state.messages)
    await nc.close()


async def publish(servers, subject, data):
    nc = await connect(servers)
    js = nc.jetstream(timeout=10)
    ack = await js.publish(subject, data.encode())
    print(ack.seq)
    await nc.close()


async def flood(servers, subject, seconds):
    """Publishes to SUBJECT without pause for SECONDS (another writer of
    the stream on another subject)."""
    nc = await connect(servers)
    js = nc.jetstream(timeout=10)
    loop = asyncio.get_running_loop()
    end = loop.time() + float(seconds)
    n = 0
    while loop.time() < end:
        await js.publish(subject, b"other %d" % n)
        n += 1
    print(n)
    await nc.close()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "dump":
            # Read-only: asked again while a cluster elects its leaders.
            for attempt in range(20):
                try:
                    buf = io.StringIO()
                    asyncio.run(dump(*args, out=buf))
                    sys.stdout.write(buf.getvalue())
                    break
                except Exception:  # noqa: BLE001
                    if attempt == 19:
                        raise
                    time.sleep(1)
        elif cmd == "leader":
            asyncio.run(leader(*args))
        elif cmd == "count":
            asyncio.run(count(*args))
        elif cmd == "flood":
            asyncio.run(flood(*args))
        elif cmd == "publish":
            asyncio.run(publish(*args))
        else:
            sys.exit(f"unknown command {cmd!r}")
    except Exception as e:  # noqa: BLE001 - the test shows the message
        sys.exit(f"js.py {cmd}: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
