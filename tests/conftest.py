"""Test tiers (CONTRIBUTING.md): unit, privileged, vm, hostguest.

A test's tier is its directory (tests/unit, tests/privileged, tests/vm,
tests/hostguest); the marker is added here. One `pytest` run covers them all:

* privileged tests run here as root, each in namespaces it creates (`lab`);
* vm tests are not run on the host: the first one boots ONE virtme-ng guest
  (Debian's kernel) which runs every selected vm test and reports each outcome
  back, so they appear in this run's summary under their own names;
* hostguest tests likewise run in one guest of their own (with vhost_vsock
  loaded, and memory for the nested guests they start);
* with CI=true, a test skipped in a tier that can run on this machine fails
  the run (a skip must not hide a tier that silently stopped working).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIERS = ("unit", "privileged", "vm", "hostguest")
IN_GUEST = os.environ.get("RAWLAB_IN_GUEST") == "1"
GUEST_TIER = os.environ.get("RAWLAB_GUEST_TIER", "vm")
GUEST_REPORT = os.environ.get("RAWLAB_GUEST_REPORT")
# what each guest tier's (outer) guest loads first, and its memory
GUEST_MODULES = {"vm": ("vsock_loopback", "vsock_diag", "nlmon", "vsockmon", "netlink_diag",
                        "geneve", "ip_gre", "ipip", "sit"),
                 "hostguest": ("vhost_vsock", "vsock_loopback", "vsock_diag", "vsockmon")}
GUEST_MEMORY = {"vm": "1G", "hostguest": "2G"}
# seconds a tier's guest may take (each took well under half of it in CI: vm ~430,
# hostguest ~120 under TCG; the tests in it have shorter limits of their own), and
# seconds one test may take in it before faulthandler prints every thread's stack
GUEST_TIMEOUT = {"vm": 1200.0, "hostguest": 480.0}
FAULT_AFTER = 300


def guest_timeout(tier: str) -> float:
    """GUEST_TIMEOUT, or RAWLAB_GUEST_TIMEOUT (seconds) when set."""
    return float(os.environ.get("RAWLAB_GUEST_TIMEOUT") or GUEST_TIMEOUT[tier])


def tier_of(item: pytest.Item) -> str:
    parts = Path(str(item.path)).relative_to(ROOT / "tests").parts
    return parts[0] if parts and parts[0] in TIERS else "unit"


# ---- which tiers can run on this machine ------------------------------------

_AVAIL: dict[str, tuple[bool, str]] = {}


def tier_available(tier: str) -> tuple[bool, str]:
    """(can run here, why not); computed once per session."""
    if tier in _AVAIL:
        return _AVAIL[tier]
    ok, why = True, ""
    if tier == "privileged":
        if os.geteuid() != 0:
            ok, why = False, "needs root (privileged tier builds network namespaces)"
        else:
            from rawlab.lab.netns import CLONE_NEWNET, in_child

            try:
                in_child(lambda: True, flags=CLONE_NEWNET)
            except OSError as exc:
                ok, why = False, f"cannot create a network namespace: {exc}"
    elif tier in ("vm", "hostguest"):
        if IN_GUEST:
            ok, why = tier == GUEST_TIER, f"this guest runs the {GUEST_TIER} tier"
        else:
            try:
                from rawlab.lab import guest, vm

                guest.find_kernel()
                vm.vng_path()
                import shutil

                if not shutil.which("qemu-system-x86_64"):
                    raise RuntimeError("qemu-system-x86_64 not found (./setup.sh --test)")
            except Exception as exc:
                ok, why = False, f"no VM lab here: {exc}"
    _AVAIL[tier] = (ok, why)
    return ok, why


# ---- vm tier: one guest for all vm tests -------------------------------------

class GuestFailure(Exception):
    """A vm test failed inside the guest; carries the guest's report text."""


class GuestRun:
    """Boots the tier's guest once, lazily, and keeps each test's outcome.

    The guest's pytest writes its output to a file in a shared directory as it goes
    (``--capture=tee-sys``; faulthandler prints every thread's stack into it when one
    test takes FAULT_AFTER s), and its report after every test, naming the test it is
    in.  So a guest that wedges past its time limit (every test here has shorter limits
    of its own, so that is the machine, not a test: CI once saw the hostguest guest,
    which nests a KVM guest in emulation, do it, and its console shows nothing before
    the guest ends) still reports what it finished, and the test it was in and those
    it never reached run once more in a fresh guest.  What is still unreported after
    that, or after a guest whose pytest ended by itself (a crash, a collection error:
    booting again would not help), fails with the end of the guest's output.  The
    summary has a line per guest.
    """

    def __init__(self, tier: str, nodeids: list[str]):
        self.tier = tier
        self.nodeids = nodeids
        self.results: dict[str, dict[str, Any]] | None = None
        self.output = ""
        self.summary = ""

    def get(self) -> dict[str, dict[str, Any]]:
        if self.results is None:
            results: dict[str, dict[str, Any]] = {}
            todo = list(self.nodeids)
            first_in = None  # the test the first guest wedged in
            for attempt in (1, 2):
                done, running, trouble, tail = self._boot(todo, attempt)
                results.update(done)
                todo = [n for n in todo if n not in done]
                if not todo:
                    break
                if trouble is not None and attempt == 1:  # wedged or failed to run: again
                    first_in = running
                    todo = self.again(todo)
                    last = [x for x in tail.splitlines() if x.strip()][-3:]
                    where = running or "no test yet: booting or collecting"
                    self.summary += f" (it was in {where}; its output ended: {' | '.join(last)})"
                    continue
                why = trouble or "its pytest ended with these tests unreported"
                for n in todo:
                    if n in results:  # (run again for its module's sake: the first stands)
                        continue
                    if n == running:
                        again = " (the first guest wedged in it too)" if n == first_in else ""
                        text = f"the guest stopped during this test{again}: {why}"
                    else:
                        text = f"not run: the guest stopped before it: {why}"
                    results[n] = {"outcome": "failed",
                                  "longrepr": f"{text}; its output ends:\n{tail}"}
                todo = []
                break
            self.results = results
        return self.results

    def again(self, todo: list[str]) -> list[str]:
        """What a second guest runs: the tests left, and on the hostguest tier every
        test of their modules (a module's tests there are one sequence over one inner
        guest: test_pair.py's last test checks the capture of the sessions the tests
        before it made)."""
        if self.tier != "hostguest":
            return todo
        mods = {n.split("::")[0] for n in todo}
        return [n for n in self.nodeids if n.split("::")[0] in mods]

    def _boot(self, nodeids: list[str], attempt: int
              ) -> tuple[dict[str, dict[str, Any]], str | None, str | None, str]:
        """One guest's run: the outcomes it reported, the test it was in when it ended,
        what went wrong with it (None: its pytest ended by itself), its output's end."""
        from rawlab.lab import vm

        with tempfile.TemporaryDirectory(prefix="rawlab-vm-") as tmp:
            report, console = Path(tmp) / "report.json", Path(tmp) / "console.txt"
            env = (f"RAWLAB_IN_GUEST=1 RAWLAB_GUEST_TIER={self.tier} "
                   f"RAWLAB_GUEST_REPORT={shlex.quote(str(report))} "
                   f"CI={shlex.quote(os.environ.get('CI', ''))}")
            # node ids go in a file (pytest @FILE): the guest command travels on the
            # kernel command line, which holds ~1400 bytes of it
            ids = Path(tmp) / "nodeids.txt"
            ids.write_text("\n".join(nodeids) + "\n")
            cmd = (f"cd {shlex.quote(str(ROOT))} && {env} {shlex.quote(sys.executable)} -m pytest "
                   f"-q -p no:cacheprovider -o addopts='' --capture=tee-sys "
                   f"-o faulthandler_timeout={FAULT_AFTER} -ra @{shlex.quote(str(ids))} "
                   f"> {shlex.quote(str(console))} 2>&1")
            t0 = time.monotonic()
            trouble = None
            try:
                res = vm.run(cmd, rwdirs=[Path(tmp)], modules=GUEST_MODULES[self.tier],
                             memory=GUEST_MEMORY[self.tier], timeout=guest_timeout(self.tier))
                secs = time.monotonic() - t0
                how = (f"kernel {res.kernel.release}, {res.accel}, {secs:.0f} s, "
                       f"guest pytest exit {res.returncode}")
                vng = res.output
            except Exception as exc:  # (RawlabError: a wedge, a missing module; or OSError)
                secs = time.monotonic() - t0
                trouble = str(exc) or type(exc).__name__
                how, vng = f"{secs:.0f} s: {trouble}", ""
            self.output = (console.read_text(errors="replace") if console.exists() else "") + vng
            state = json.loads(report.read_text()) if report.exists() else {}
        again = (", again: the test the first was in and those it did not reach"
                 + (" (and the rest of their modules)" if self.tier == "hostguest" else ""))
        line = (f"{self.tier} tier: {len(nodeids)} test(s) in one guest"
                + (again if attempt > 1 else "") + ", " + how)
        self.summary = f"{self.summary}\n{line}" if self.summary else line
        tail = "\n".join(self.output.splitlines()[-60:])
        return state.get("results", {}), state.get("running"), trouble, tail


class GuestItem(pytest.Item):
    """Stands in on the host for a vm test that runs inside the guest."""

    def __init__(self, *, run: GuestRun, **kw: Any):
        super().__init__(**kw)
        self.run = run

    def runtest(self) -> None:
        res = self.run.get().get(self.nodeid)
        if res is None:
            raise GuestFailure("did not run in the guest; guest output ends:\n"
                               + "\n".join(self.run.output.splitlines()[-30:]))
        if res["outcome"] == "skipped":
            pytest.skip(f"(in guest) {res['reason']}")
        if res["outcome"] != "passed":
            raise GuestFailure(f"(in guest) {res['longrepr']}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, GuestFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"{self.name} [in guest]"


_STATE: dict[str, GuestRun] = {}  # tier -> the session's guest for it, when selected


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(getattr(pytest.mark, tier_of(item)))
    if IN_GUEST:
        return
    for tier in ("vm", "hostguest"):
        tier_items = [i for i in items if tier_of(i) == tier]
        if not tier_items or not tier_available(tier)[0]:
            continue
        run = _STATE[tier] = GuestRun(tier, [i.nodeid for i in tier_items])
        for n, item in enumerate(items):
            if tier_of(item) == tier:
                g = GuestItem.from_parent(item.parent, name=item.name, run=run)
                g.own_markers.extend(item.own_markers)
                g.keywords.update(item.keywords)
                items[n] = g


def pytest_runtest_setup(item: pytest.Item) -> None:
    tier = tier_of(item)
    if tier == "unit" or isinstance(item, GuestItem):
        return
    ok, why = tier_available(tier)
    if not ok:
        pytest.skip(f"{tier} tier unavailable: {why}")


# ---- in the guest: record every outcome for the host ---------------------------

_GUEST_RESULTS: dict[str, dict[str, Any]] = {}
_GUEST_RUNNING: list[str] = []  # the test the guest is in (the host's hang report names it)
_SKIPS_SEEN: list[pytest.TestReport] = []


def _write_guest_report() -> None:
    """The report so far, replaced whole (a host that kills a hung guest reads it)."""
    assert GUEST_REPORT
    tmp = f"{GUEST_REPORT}.tmp"
    with open(tmp, "w") as f:
        json.dump({"results": _GUEST_RESULTS,
                   "running": _GUEST_RUNNING[-1] if _GUEST_RUNNING else None}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, GUEST_REPORT)


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    if GUEST_REPORT:
        _GUEST_RUNNING.append(nodeid)
        _write_guest_report()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _SKIPS_SEEN.append(report)
    if not GUEST_REPORT:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        entry: dict[str, Any] = {"outcome": report.outcome}
        if report.skipped and isinstance(report.longrepr, tuple):
            entry["reason"] = report.longrepr[2].removeprefix("Skipped: ")
        elif report.failed:
            entry["longrepr"] = str(report.longrepr)
        _GUEST_RESULTS[report.nodeid] = entry
        _write_guest_report()
    elif report.when == "teardown" and report.failed:
        _GUEST_RESULTS[report.nodeid] = {"outcome": "failed",
                                         "longrepr": f"teardown: {report.longrepr}"}
        _write_guest_report()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if GUEST_REPORT:
        _write_guest_report()
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") and not IN_GUEST:
        bad = []
        for rep in _SKIPS_SEEN:
            tier = next((t for t in TIERS if t in rep.keywords), "unit")
            if tier_available(tier)[0]:
                reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else rep.longrepr
                bad.append(f"{rep.nodeid} ({tier}): {reason}")
        if bad:
            session.config._rawlab_ci_skips = bad  # type: ignore[attr-defined]
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    for run in _STATE.values():
        if run.summary:
            terminalreporter.write_line(run.summary)
    for tier in TIERS:
        if tier in _AVAIL and not _AVAIL[tier][0]:
            terminalreporter.write_line(f"tier {tier} cannot run here: {_AVAIL[tier][1]}")
    bad = getattr(config, "_rawlab_ci_skips", [])
    if bad:
        terminalreporter.write_line(
            "CI=true: tests were skipped in a tier that can run on this machine:", red=True)
        for b in bad:
            terminalreporter.write_line(f"  {b}", red=True)


# ---- fixtures ----------------------------------------------------------------

@pytest.fixture
def lab() -> Iterator[Any]:
    """A Lab whose namespaces and veths are removed after the test, pass or fail."""
    from rawlab.lab.netns import Lab, cleanup_stale

    cleanup_stale()
    with Lab() as the_lab:
        yield the_lab
