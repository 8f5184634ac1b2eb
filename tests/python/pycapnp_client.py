#!/usr/bin/env python3
"""Drive a running Almanac cluster through schema/calendar.capnp with pycapnp.

The schema is loaded at run time, so this client shares no code with the
Rust server. It finds the primary, registers alice and bob, and subscribes
bob's listener. Alice logs in again and schedules an event that invites bob,
and an overlapping event of hers is rejected as a conflict. Both agendas are
read, bob's listener receives the pushed invitation, and bob accepts and
acknowledges it. Last, alice logs out.

Each step prints one JSON object on stdout, such as
{"step": "schedule", "event_id": 1, "version": 1}. The first step that fails
prints its reason on stderr and the exit status is 1. Without pycapnp the
exit status is 3.

Usage: pycapnp_client.py --cluster HOST:PORT[,HOST:PORT...] [--timeout SECONDS]
"""

import argparse
import asyncio
import datetime
import json
import os
import random
import sys
import time

EXIT_FAILED = 1
EXIT_MISSING_PYCAPNP = 3

try:
    import capnp
except ImportError as import_error:
    print(
        f"error: the Python module 'capnp' is not installed ({import_error}); "
        "install it with `python3 -m pip install pycapnp`",
        file=sys.stderr,
    )
    sys.exit(EXIT_MISSING_PYCAPNP)

SCHEMA_PATH = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "schema", "calendar.capnp"
)

# The schema's Listener.notify is a streaming method, which imports
# /capnp/stream.capnp. pycapnp ships that file inside its package directory,
# so the directory above the package is the import path.
CAPNP_IMPORT_PATH = os.path.dirname(os.path.dirname(os.path.abspath(capnp.__file__)))

calendar = capnp.load(SCHEMA_PATH, imports=[CAPNP_IMPORT_PATH])

ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-22")

# A Tuesday far from any real calendar, in UTC.
DAY_START = "2031-01-07T00:00:00+00:00"
MEETING_START = "2031-01-07T10:00:00+00:00"
OVERLAP_START = "2031-01-07T10:30:00+00:00"
DAY_END = "2031-01-08T00:00:00+00:00"

# Pause between rounds of status calls while no node is primary.
PRIMARY_POLL_SECONDS = 0.2

# Pause before sending a call again that was rejected as `unavailable`.
RETRY_PAUSE_SECONDS = 0.2


class StepFailed(Exception):
    """A step of the walkthrough got an unexpected result."""


def report(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


def unix_minute(text):
    """Convert an ISO 8601 time with an offset to the schema's minutes since the epoch."""
    return int(datetime.datetime.fromisoformat(text).timestamp()) // 60


class RequestIds:
    """Request ids of one client: a random client id and sequence numbers 1, 2, 3, ...

    Client id 0 is reserved: the server does not record its requests, so a
    retry would be applied twice.
    """

    def __init__(self):
        self.client_id = random.getrandbits(64) or 1
        self.seq = 0

    def next(self):
        self.seq += 1
        return {"clientId": self.client_id, "seq": self.seq}


async def within(step, awaitable, timeout):
    """Await one call, turning a timeout or a Cap'n Proto exception into StepFailed."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        message = f"{step}: timed out after {timeout} s; raise --timeout on a slow machine"
        raise StepFailed(message) from None
    except capnp.KjException as error:
        raise StepFailed(f"{step}: the call failed: {error}") from None


def describe_rejection(rejection):
    """Return a Rejection as a JSON-ready dict naming its union branch."""
    kind = rejection.which()
    return {"rejection": kind, "detail": rejection.to_dict().get(kind)}


def expect_ok(step, result):
    """Return the `ok` branch of a result union, or raise StepFailed with the rejection."""
    if result.which() != "ok":
        raise StepFailed(f"{step}: rejected with {describe_rejection(result.rejected)}")
    return result.ok


async def connect(address, timeout):
    host, port = address.rsplit(":", 1)
    stream = await within(
        f"connect to {address}",
        capnp.AsyncIoStream.create_connection(host=host, port=int(port)),
        timeout,
    )
    client = capnp.TwoPartyClient(stream)
    return client, client.bootstrap().cast_as(calendar.Gateway)


async def node_status(address, timeout):
    """Return (client, gateway, status) of one node, or None when it does not reply."""
    try:
        client, gateway = await connect(address, timeout)
        response = await within(f"status of {address}", gateway.status(), timeout)
    except (StepFailed, OSError):
        return None
    return client, gateway, response.status


async def find_primary(addresses, timeout):
    """Return the address of the primary: a node whose status reports the primary
    role, or the primary a backup names. Raise StepFailed after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for address in addresses:
            answer = await node_status(address, timeout)
            if answer is None:
                continue
            client, _gateway, status = answer
            role = str(status.role)
            named = str(status.primaryAddress)
            client.close()
            if role == "primary":
                return address
            if named and named != address:
                answer = await node_status(named, timeout)
                if answer is not None and str(answer[2].role) == "primary":
                    answer[0].close()
                    return named
        await asyncio.sleep(PRIMARY_POLL_SECONDS)
    raise StepFailed(
        f"find the primary: no node of {addresses} is primary or names one within "
        f"{timeout} s; check that a majority of the nodes is running"
    )


class User:
    """One user's connection to the primary, request ids and session."""

    def __init__(self, name, password, client, gateway, timeout):
        self.name = name
        self.password = password
        self.client = client
        self.gateway = gateway
        self.timeout = timeout
        self.ids = RequestIds()
        self.session = None

    async def request(self, step, target, method, **params):
        """Call `method` of the capability `target` and return its result union.

        A node that is in a view change, or that could not confirm in time
        that it is still primary, rejects the call as `unavailable`. The call
        is then sent again with the same parameters, request id included,
        which the server applies at most once, until `timeout` passes.
        NOTE: no test makes a node reject a call as `unavailable`, so the
        retry has not run.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            response = await within(step, getattr(target, method)(**params), self.timeout)
            result = response.result
            unavailable = result.which() == "rejected" and result.rejected.which() == "unavailable"
            if not unavailable or time.monotonic() >= deadline:
                return result
            await asyncio.sleep(RETRY_PAUSE_SECONDS)

    async def open_session(self, method):
        """Call Gateway.register or Gateway.login and keep the session it returns."""
        step = f"{method} {self.name}"
        result = await self.request(
            step,
            self.gateway,
            method,
            requestId=self.ids.next(),
            username=self.name,
            password=self.password,
        )
        granted = expect_ok(step, result)
        self.session = granted.session
        return str(granted.username), len(granted.token)

    async def call(self, step, method, **params):
        """Call a Session method and return the `ok` branch of its result."""
        result = await self.request(step, self.session, method, **params)
        return expect_ok(step, result)


def summarize_event(event):
    visibility = event.visibility
    guests = [] if visibility.which() == "public" else [str(g) for g in visibility.private]
    return {
        "id": event.id,
        "title": str(event.title),
        "host": str(event.host),
        "start": event.start,
        "duration_minutes": event.durationMinutes,
        "zone": str(event.zone),
        "guests": guests,
        "responses": {str(r.guest): str(r.response) for r in event.responses},
    }


def summarize_notification(notification):
    return {
        "seq": notification.seq,
        "kind": str(notification.kind),
        "actor": str(notification.actor),
        "event_id": notification.event.id,
        "title": str(notification.event.title),
    }


class QueueListener(calendar.Listener.Server):
    """Listener that queues each notification the server pushes.

    The server's message is freed when notify returns, so each notification
    is copied into a dict first.
    """

    def __init__(self, queue):
        self.queue = queue

    async def notify(self, notifications, **_kwargs):
        for notification in notifications:
            self.queue.put_nowait(summarize_notification(notification))


async def walkthrough(addresses, timeout):
    primary = await find_primary(addresses, timeout)
    report("primary", address=primary)

    users = {}
    for name, password in (ALICE, BOB):
        client, gateway = await connect(primary, timeout)
        users[name] = User(name, password, client, gateway, timeout)
    alice, bob = users["alice"], users["bob"]

    for user in (alice, bob):
        username, token_bytes = await user.open_session("register")
        report("register", user=username, token_bytes=token_bytes)

    pushed = asyncio.Queue()
    subscribed = await within(
        "subscribe bob",
        bob.session.subscribe(listener=QueueListener(pushed), afterSeq=0),
        timeout,
    )
    # Dropping the Subscription capability would end the push stream.
    subscription = subscribed.subscription
    report("subscribe", user=bob.name, after_seq=0)

    username, token_bytes = await alice.open_session("login")
    report("login", user=username, token_bytes=token_bytes)

    draft = {
        "title": "Design review",
        "description": "Walk through the schema from Python",
        "start": unix_minute(MEETING_START),
        "zone": "Europe/Paris",
        "durationMinutes": 45,
        "visibility": {"private": [bob.name]},
    }
    scheduled = await alice.call(
        "schedule", "schedule", requestId=alice.ids.next(), draft=draft
    )
    event_id = scheduled.eventId
    report("schedule", event_id=event_id, version=scheduled.version)

    overlap = dict(draft, title="Overlapping call", start=unix_minute(OVERLAP_START))
    overlap["visibility"] = {"private": []}
    step = "schedule an overlap"
    result = await alice.request(
        step, alice.session, "schedule", requestId=alice.ids.next(), draft=overlap
    )
    if result.which() != "rejected":
        raise StepFailed(f"{step}: expected a conflict, the event was scheduled")
    rejection = result.rejected
    if rejection.which() != "conflict":
        raise StepFailed(f"{step}: expected a conflict, got {describe_rejection(rejection)}")
    visible = [slot.event for slot in rejection.conflict if slot.event.which() == "visible"]
    blocking = [event.visible.id for event in visible]
    report("conflict", blocking_event_ids=blocking)

    for user in (alice, bob):
        events = await user.call(
            f"agenda of {user.name}",
            "agenda",
            **{"from": unix_minute(DAY_START), "to": unix_minute(DAY_END)},
        )
        report("agenda", user=user.name, events=[summarize_event(e) for e in events])

    try:
        notification = await asyncio.wait_for(pushed.get(), timeout)
    except asyncio.TimeoutError:
        message = f"notification: bob's listener received nothing within {timeout} s"
        raise StepFailed(message) from None
    report("notification", user=bob.name, **notification)

    await bob.call(
        "respond",
        "respond",
        requestId=bob.ids.next(),
        eventId=event_id,
        response="accepted",
        hasOccurrence=False,
        occurrenceStart=0,
    )
    events = await alice.call("getEvent", "getEvent", eventId=event_id)
    report("respond", user=bob.name, event=summarize_event(events[0]))

    await bob.call("ack", "ack", requestId=bob.ids.next(), upToSeq=notification["seq"])
    inbox = await bob.call("inbox", "inbox", afterSeq=0)
    report("ack", user=bob.name, acked_seq=inbox.ackedSeq, inbox=len(inbox.notifications))

    await alice.call("logout", "logout", requestId=alice.ids.next())
    step = "agenda after logout"
    after_logout = await alice.request(step, alice.session, "agenda", **{"from": 0, "to": 1})
    rejected = after_logout.which() == "rejected"
    if not rejected or after_logout.rejected.which() != "unauthenticated":
        raise StepFailed(f"{step}: expected unauthenticated, the session is still open")
    report("logout", user=alice.name, then="unauthenticated")

    del subscription
    for user in (alice, bob):
        user.client.close()


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cluster",
        required=True,
        help="client addresses of the nodes, HOST:PORT separated by commas",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds each call, and the wait for the pushed notification, may take",
    )
    return parser.parse_args()


def main():
    args = parse_args()
    addresses = [address.strip() for address in args.cluster.split(",") if address.strip()]
    try:
        asyncio.run(capnp.run(walkthrough(addresses, args.timeout)))
    except StepFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
