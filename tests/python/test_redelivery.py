"""What a killed Python consumer held comes back to another instance, marked redelivered."""
import json
import re
import signal


def test_job_of_a_killed_consumer_is_redelivered(bus):
    keeper = bus.serve("keep", "worker")
    with bus.connect("client") as client:
        client.send("job", {"n": 7})
        assert "deliveries=0" in keeper.expect("worker: job")
        keeper.signal(signal.SIGKILL)
        keeper.wait()
        taker = bus.serve("listen", "worker", "job")
        line = taker.expect("worker: job", timeout=10)
    assert json.loads(re.search(r"job (\{.*\}) deliveries", line).group(1)) == {"n": 7}
    assert "deliveries=1" in line
