"""The Python services the tests start as processes of their own:

    serve.py ROLE [SERVICE_TYPE [NAME]]

Each connects from $EXOBUS_BUS and $EXOBUS_RUNTIME_DIR, prints "ready" once it serves, a
line for each message it handles, and "stopped" once it left the bus on SIGINT or SIGTERM
(Service.run() handles both).
"""
import asyncio
import os
import sys
import time

import exobus


def say(line):
    # One write per line: print() writes the end of line apart, and handlers on the
    # receiving thread print while the main thread does.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def report(service_type, delivery):
    say(f"{service_type}: {delivery.name} {delivery.payload.decode()} deliveries={delivery.deliveries} "
        f"pid={os.getpid()}")


def echo(service, name):
    """Replies to each echo with its text in capitals, from an async handler."""
    @service.on(name or "echo")
    async def on_echo(delivery):
        delivery.reply("echo.ok", {"text": delivery.json()["text"].upper(), "pid": os.getpid()})


def files(service, name):
    """Streams three progress replies, then the end, for each file.copy."""
    @service.on(name or "file.copy")
    async def on_copy(delivery):
        for percent in (0, 50, 100):
            delivery.reply("file.copy.in-progress", {"percent": percent})
            await asyncio.sleep(0.01)
        delivery.reply("file.copy.done", {"to": delivery.json()["to"]})


def listen(service, name):
    """Prints each message (news by default), from a plain handler: on the receiving thread."""
    @service.on(name or "news")
    def on_message(delivery):
        report(service.service_type, delivery)


def work(service, name):
    """Takes 20 ms over each job, in a plain handler, as real work would."""
    @service.on(name or "job")
    def on_job(delivery):
        time.sleep(0.02)
        report(service.service_type, delivery)


def keep(service, name):
    """Prints each job and never settles it: it stays held until the process dies or stops."""
    @service.on(name or "job")
    async def on_job(delivery):
        report(service.service_type, delivery)
        await asyncio.get_running_loop().create_future()


def hold(service, name):
    """Defers each hold: asks lookup, and replies and acks only once its answer came."""
    @service.on(name or "hold")
    async def on_hold(delivery):
        found = await delivery.request("lookup", delivery.json(), timeout=5)
        delivery.reply("hold.ok", {"found": found.json(), "deliveries": delivery.deliveries})
        delivery.ack()


def lookup(service, name):
    """Answers a lookup after a while, as a slow database would."""
    @service.on(name or "lookup")
    async def on_lookup(delivery):
        await asyncio.sleep(0.3)
        delivery.reply("lookup.ok", {"key": delivery.json()["key"], "value": 42})


ROLES = {"echo": echo, "files": files, "listen": listen, "work": work, "keep": keep, "hold": hold, "lookup": lookup}


async def serve(role, service_type, name):
    service = exobus.connect(service=service_type)
    ROLES[role](service, name)
    serving = asyncio.create_task(service.run())  # until SIGINT or SIGTERM
    await asyncio.sleep(0)  # run() has started the service
    say("ready")
    await serving
    say("stopped")


if __name__ == "__main__":
    role = sys.argv[1]
    service_type = sys.argv[2] if len(sys.argv) > 2 else role
    asyncio.run(serve(role, service_type, sys.argv[3] if len(sys.argv) > 3 else None))
