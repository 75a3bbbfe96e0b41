#!/usr/bin/python3
"""mailer, the demo's service in Python: subscribed to user.created beside audit (a fan-out),
it writes each one it gets, marked when redelivered, as demo_subscriber does for audit in
C++. Run it with the built binding on the path (scripts/demo.sh does):

    PYTHONPATH=build/bindings/python /usr/bin/python3 examples/demo/mailer.py
"""
import asyncio

import exobus


async def main() -> None:
    mailer = exobus.connect(service="mailer")  # the bus from $EXOBUS_BUS

    @mailer.on("user.created")
    async def on_user_created(delivery: exobus.Delivery) -> None:
        redelivered = " (redelivered)" if delivery.redelivered else ""
        print(f"mailer: user.created {delivery.payload.decode()}{redelivered}", flush=True)

    await mailer.run()  # until Ctrl-C or SIGTERM


if __name__ == "__main__":
    asyncio.run(main())
