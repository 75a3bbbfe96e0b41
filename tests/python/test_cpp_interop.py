"""Python and C++ on one bus, both ways: the demo's C++ users service answers a Python web
and fans user.created out to the Python mailer (examples/demo/mailer.py); a C++ program
(the exobus tool) asks a Python service and gets its reply."""
import asyncio
import subprocess
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


def test_cpp_program_gets_the_reply_of_a_python_service(bus):
    echo = bus.serve("echo")
    asked = subprocess.run([BUILD_DIR / "cli/exobus", "send", "echo", '{"text":"from c++"}', "--as", "client",
                            "--wait-replies", "2"], env=bus.env, capture_output=True, text=True, timeout=30)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.startswith("echo.ok version=1 request=")
    assert f'"text":"FROM C++","pid":{echo.popen.pid}' in asked.stdout
