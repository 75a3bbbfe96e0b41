"""The Python services the tests start as processes of their own:

    serve.py ROLE [SERVICE_TYPE]

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


def echo(service):
    """Replies to each echo with its text in capitals, from an async handler."""
    @service.on("echo")
    async def on_echo(delivery):
        delivery.reply("echo.ok", {"text": delivery.json()["text"].upper(), "pid": os.getpid()})


def files(service):
    """Streams three progress replies, then the end, for each file.copy."""
    @service.on("file.copy")
    async def on_copy(delivery):
        for percent in (0, 50, 100):
            delivery.reply("file.copy.in-progress", {"percent": percent})
            await asyncio.sleep(0.01)
        delivery.reply("file.copy.done", {"to": delivery.json()["to"]})


def listen(service):
    """Prints each news (each job, as a worker), from a plain handler: on the receiving thread."""
    @service.on("job" if service.service_type == "worker" else "news")
    def on_message(delivery):
        report(service.service_type, delivery)


def work(service):
    """Takes 20 ms over each job, in a plain handler, as real work would."""
    @service.on("job")
    def on_job(delivery):
        time.sleep(0.02)
        report(service.service_type, delivery)


def keep(service):
    """Prints each job and never settles it: it stays held until the process dies or stops."""
    @service.on("job")
    async def on_job(delivery):
        report(service.service_type, delivery)
        await asyncio.get_running_loop().create_future()


def hold(service):
    """Defers each hold: asks lookup, and replies and acks only once its answer came."""
    @service.on("hold")
    async def on_hold(delivery):
        found = await delivery.request("lookup", delivery.json(), timeout=5)
        delivery.reply("hold.ok", {"found": found.json(), "deliveries": delivery.deliveries})
        delivery.ack()


def lookup(service):
    """Answers a lookup after a while, as a slow database would."""
    @service.on("lookup")
    async def on_lookup(delivery):
        await asyncio.sleep(0.3)
        delivery.reply("lookup.ok", {"key": delivery.json()["key"], "value": 42})


ROLES = {"echo": echo, "files": files, "listen": listen, "work": work, "keep": keep, "hold": hold, "lookup": lookup}


async def serve(role, service_type):
    service = exobus.connect(service=service_type)
    ROLES[role](service)
    serving = asyncio.create_task(service.run())  # until SIGINT or SIGTERM
    await asyncio.sleep(0)  # run() has started the service
    say("ready")
    await serving
    say("stopped")


if __name__ == "__main__":
    role = sys.argv[1]
    asyncio.run(serve(role, sys.argv[2] if len(sys.argv) > 2 else role))
