#!/usr/bin/python3
"""ExoBus from Python beside pyzmq (Debian's python3-zmq), two processes each, in one run:

  one way    64 B messages, as fast as the sender goes; ExoBus acks each one (a plain
             handler on the receiving thread, which returns). The receiver counts from its
             first to its last message: msg/s = (messages - 1) / (last - first).
  round trip 64 B request, 64 B reply; the client times each from before the send to the
             reply in hand, after a warm-up, and reports p50 and p99 (nearest rank). ExoBus's
             blocking request (request_blocking) and its asyncio one (await request) are
             both timed; pyzmq's REQ/REP is blocking.

    /usr/bin/python3 bench/python/bench_python.py --build build [--messages N] [--round-trips N]

It starts the build's exobusd on a bus of its own and stops everything it started.
"""
import argparse
import asyncio
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
PAYLOAD = b'"' + b"x" * 62 + b'"'  # 64 bytes of JSON text (a string)
ZMQ_ONE_WAY = "ipc://{dir}/oneway"
ZMQ_ROUND_TRIP = "ipc://{dir}/roundtrip"


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# The receiving ends, each a process of its own: `bench_python.py --serve ROLE N DIR`.
def serve_exobus_sink(messages, _):
    import exobus
    sink = exobus.connect(service="sink")
    times = []

    @sink.on("bench.oneway")
    def on_message(delivery):
        times.append(time.perf_counter())
        if len(times) == messages:
            say(f"rate {(messages - 1) / (times[-1] - times[0])}")

    with sink:
        say("ready")
        sys.stdin.read()  # until the benchmark closes our stdin


def serve_exobus_echo(_, __):
    import exobus
    echo = exobus.connect(service="echo")

    @echo.on("bench.ping")
    def on_ping(delivery):
        delivery.reply("bench.pong", delivery.payload)

    with echo:
        say("ready")
        sys.stdin.read()


def serve_zmq_pull(messages, directory):
    import zmq
    pull = zmq.Context.instance().socket(zmq.PULL)
    pull.bind(ZMQ_ONE_WAY.format(dir=directory))
    say("ready")
    pull.recv()
    first = time.perf_counter()
    for _ in range(messages - 1):
        pull.recv()
    say(f"rate {(messages - 1) / (time.perf_counter() - first)}")
    pull.close()


def serve_zmq_rep(round_trips, directory):
    import zmq
    rep = zmq.Context.instance().socket(zmq.REP)
    rep.bind(ZMQ_ROUND_TRIP.format(dir=directory))
    say("ready")
    for _ in range(round_trips):
        rep.send(rep.recv())
    rep.close()


ROLES = {"exobus-sink": serve_exobus_sink, "exobus-echo": serve_exobus_echo,
         "zmq-pull": serve_zmq_pull, "zmq-rep": serve_zmq_rep}


class Peer:
    """A receiving end in a process of its own, stopped by closing its stdin (or killed)."""

    def __init__(self, role, count, directory, env):
        self.popen = subprocess.Popen([sys.executable, __file__, "--serve", role, str(count), directory],
                                      env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.expect("ready")

    def expect(self, word):
        for line in self.popen.stdout:
            if line.startswith(word):
                return line.split()[1:]
        raise RuntimeError(f"the {word!r} line never came")

    def stop(self):
        self.popen.stdin.close()
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def percentiles(samples_ns):
    ordered = sorted(samples_ns)
    def rank(p):
        return ordered[max(0, -(-len(ordered) * p // 100) - 1)] / 1000.0
    return rank(50), rank(99)


def timed(round_trip, warmup, count):
    for _ in range(warmup):
        round_trip()
    samples = []
    for _ in range(count):
        started = time.perf_counter_ns()
        round_trip()
        samples.append(time.perf_counter_ns() - started)
    return percentiles(samples)


def bench_exobus(args, directory, env, results):
    import exobus
    client = exobus.connect(service="client")
    with client:
        sink = Peer("exobus-sink", args.messages, directory, env)
        try:
            for _ in range(args.messages):
                client.send("bench.oneway", PAYLOAD)
            results["exobus one way"] = float(sink.expect("rate")[0])
        finally:
            sink.stop()
        echo = Peer("exobus-echo", 0, directory, env)
        try:
            results["exobus round trip (request_blocking)"] = timed(
                lambda: client.request_blocking("bench.ping", PAYLOAD, timeout=10), args.warmup, args.round_trips)

            async def asyncio_round_trips():
                loop_samples = []
                for n in range(args.warmup + args.round_trips):
                    started = time.perf_counter_ns()
                    await client.request("bench.ping", PAYLOAD, timeout=10)
                    if n >= args.warmup:
                        loop_samples.append(time.perf_counter_ns() - started)
                return percentiles(loop_samples)
            results["exobus round trip (await request)"] = asyncio.run(asyncio_round_trips())
        finally:
            echo.stop()


def bench_zmq(args, directory, env, results):
    import zmq
    context = zmq.Context.instance()
    pull = Peer("zmq-pull", args.messages, directory, env)
    push = context.socket(zmq.PUSH)
    try:
        push.connect(ZMQ_ONE_WAY.format(dir=directory))
        for _ in range(args.messages):
            push.send(PAYLOAD)
        results["pyzmq PUSH/PULL"] = float(pull.expect("rate")[0])
    finally:
        push.close()
        pull.stop()
    rep = Peer("zmq-rep", args.warmup + args.round_trips, directory, env)
    req = context.socket(zmq.REQ)
    try:
        req.connect(ZMQ_ROUND_TRIP.format(dir=directory))

        def round_trip():
            req.send(PAYLOAD)
            req.recv()
        results["pyzmq REQ/REP"] = timed(round_trip, args.warmup, args.round_trips)
    finally:
        req.close()
        rep.stop()


def start_daemon(build, directory, bus):
    log = open(os.path.join(directory, "exobusd.log"), "w")
    daemon = subprocess.Popen([build / "daemon/exobusd/exobusd", "--config", HERE / "application.yml", "--bus", bus,
                               "--runtime-dir", directory, "--reset", "--remove-segment"],
                              stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while not os.path.exists(os.path.join(directory, f"{bus}.sock")):
        if daemon.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"exobusd did not start: {open(log.name).read()}")
        time.sleep(0.02)
    return daemon


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=pathlib.Path, default=HERE.parent.parent / "build")
    parser.add_argument("--messages", type=int, default=200_000, help="one-way messages per transport")
    parser.add_argument("--round-trips", type=int, default=20_000, help="timed round trips per transport")
    parser.add_argument("--warmup", type=int, default=1000, help="untimed round trips first")
    parser.add_argument("--serve", nargs=3, metavar=("ROLE", "COUNT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        role, count, directory = args.serve
        ROLES[role](int(count), directory)
        return 0

    # The binding this build made, for this process and its peers.
    module_dir = str((args.build / "bindings" / "python").resolve())
    sys.path.insert(0, module_dir)
    python_path = os.pathsep.join(p for p in (module_dir, os.environ.get("PYTHONPATH")) if p)
    directory = tempfile.mkdtemp(prefix="exobus-pybench.")
    bus = f"pybench-{os.getpid()}"
    env = dict(os.environ, EXOBUS_BUS=bus, EXOBUS_RUNTIME_DIR=directory, PYTHONPATH=python_path)
    os.environ.update(EXOBUS_BUS=bus, EXOBUS_RUNTIME_DIR=directory)
    daemon = start_daemon(args.build, directory, bus)
    results = {}
    try:
        bench_exobus(args, directory, env, results)
        bench_zmq(args, directory, env, results)
    finally:
        daemon.terminate()
        daemon.wait()
        shutil.rmtree(directory, ignore_errors=True)

    say(f"one way, 64 B, {args.messages} messages")
    for name in ("exobus one way", "pyzmq PUSH/PULL"):
        say(f"  {name:40s} {results[name]:12,.0f} msg/s")
    say(f"round trip, 64 B, {args.round_trips} timed after {args.warmup}")
    for name in ("exobus round trip (request_blocking)", "exobus round trip (await request)", "pyzmq REQ/REP"):
        p50, p99 = results[name]
        say(f"  {name:40s} p50 {p50:8.1f} us   p99 {p99:8.1f} us")
    one_way = results["exobus one way"] / results["pyzmq PUSH/PULL"]
    round_trip = results["pyzmq REQ/REP"][0] / results["exobus round trip (request_blocking)"][0]
    say(f"exobus / pyzmq: one way x{one_way:.2f} (target >= 1), round trip p50 x{round_trip:.1f} faster (target >= 10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
