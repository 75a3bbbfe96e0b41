"""How messages spread: to every type subscribed (fan-out), and among the instances of one
type (competing consumers)."""
import re
import time


def test_fan_out_reaches_every_subscribed_type(bus):
    audit = bus.serve("listen", "audit")
    mailer = bus.serve("listen", "mailer")
    with bus.connect("client") as client:
        client.send("news", {"headline": "launch"})
    assert 'audit: news {"headline":"launch"}' in audit.expect("audit: news")
    assert 'mailer: news {"headline":"launch"}' in mailer.expect("mailer: news")


def test_competing_instances_share_the_work(bus):
    jobs = 40
    workers = [bus.serve("work", "worker"), bus.serve("work", "worker")]
    with bus.connect("client") as client:
        for number in range(jobs):
            client.send("job", {"n": number})
    taken = {worker.popen.pid: [] for worker in workers}
    deadline = time.monotonic() + 10
    while sum(map(len, taken.values())) < jobs and time.monotonic() < deadline:
        time.sleep(0.02)
        for worker in workers:
            for line in worker.available_lines():
                taken[worker.popen.pid].append(int(re.search(r'"n":(\d+)', line).group(1)))
    assert sorted(n for numbers in taken.values() for n in numbers) == list(range(jobs)), "every job, once"
    assert all(taken.values()), f"both instances took jobs (prefetch 1): {taken}"
