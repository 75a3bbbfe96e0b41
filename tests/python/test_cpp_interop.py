"""Python and C++ services on one bus, both ways: the demo's C++ users service answers a
Python web and fans user.created out to the Python mailer (examples/demo/mailer.py)."""
import asyncio
import sys

from conftest import BUILD_DIR, SOURCE_DIR

DEMO = SOURCE_DIR / "examples/demo"


def test_python_and_cpp_services_talk_both_ways(start_bus):
    bus = start_bus(DEMO / "application.yml")
    bus.start(BUILD_DIR / "examples/services/demo_users")
    mailer = bus.start(sys.executable, DEMO / "mailer.py")
    web = bus.connect("web")

    async def create_user():
        async with web:
            return await web.request("user.create", {"name": "Jean-Luc", "email": "jl@example.org"}, timeout=10)

    created = asyncio.run(create_user())
    assert created.outcome == "user.create.ok"
    assert created.sender == "users"
    assert created.json()["request"]["name"] == "Jean-Luc"
    announced = mailer.expect("mailer: user.created", timeout=10)
    assert '"name":"Jean-Luc"' in announced.replace(" ", "")
