"""The fast path's snapshot and block commit forms (:mod:`pyvirt.cli.fast_jobs`) against a
real daemon app: the same bytes and exit status as the click commands on the embedded
connection (shut-off domains: qemu-img does the work, no QEMU), and click for the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pyvirt.cli import fast, fast_jobs
from tests.unit.daemon.conftest import Served
from tests.unit.daemon.test_domains import domain_xml
from tests.unit.daemon.test_fast_cli import cli


def _qcow2(path: Path, backing: Path | None = None) -> Path:
    back = ["-b", str(backing), "-F", "qcow2"] if backing else []
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *back, str(path), "64M"],
                   check=True)  # fmt: skip
    return path


def _define(served: Served, name: str, image: Path) -> None:
    disk = (
        "<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        f"<source file='{image}'/><target dev='vda' bus='virtio'/></disk></devices>"
    )
    xml = domain_xml(name, uuid=f"00000000-0000-4000-8000-00000000000{len(name)}")
    served.daemon.conn.domains.define(xml.replace("</os>", "</os>" + disk))


@pytest.mark.parametrize(
    "argv",
    [
        ["snapshot-revert", "web1", "nope"], ["snapshot-revert", "nope", "s"],
        ["snapshot-revert", "web1", "s", "--running", "--paused"],
        ["snapshot-create-as", "nope", "s1"], ["snapshot-create-as", "web1", "s1"],
        ["snapshot-create-as", "web1", "bad/name"],
        ["blockcommit", "web1", "vda", "--pivot"], ["blockcommit", "nope", "vda", "--wait"],
        ["blockcommit", "web1", "vda", "--active", "--wait", "--top", "x"],
    ],
)  # fmt: skip
def test_fast_forms_fail_as_click_does(
    served: Served, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    served.daemon.conn.domains.define(domain_xml())  # no disks
    embed = f"pyvirt:///embed?root={served.root}"
    assert fast.run(["-c", served.uri, *argv]) is not None  # answered without click
    through_daemon = cli(capsys, "-c", served.uri, *argv)
    assert through_daemon == cli(capsys, "-c", embed, *argv)
    assert through_daemon[0] == 1 and through_daemon[2].startswith("error: ")


def test_snapshots_and_a_commit_print_what_click_prints(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    embed = f"pyvirt:///embed?root={served.root}"
    _define(served, "a", _qcow2(served.root / "a.qcow2"))
    base = _qcow2(served.root / "base.qcow2")
    _define(served, "bb", _qcow2(served.root / "top.qcow2", backing=base))
    for snap, uri in (("s1", served.uri), ("s2", embed)):
        assert cli(capsys, "-c", uri, "snapshot-create-as", "a", snap) == (
            0, f"Domain snapshot {snap} created\n", "")  # fmt: skip
    for snap, uri in (("s1", served.uri), ("s2", embed), ("s1", embed), ("s2", served.uri)):
        assert cli(capsys, "-c", uri, "snapshot-revert", "a", snap, "--force") == (0, "", "")
    assert cli(capsys, "-c", served.uri, "snapshot-current", "a", "--name")[1] == "s2\n"
    done = cli(capsys, "-c", served.uri, "blockcommit", "bb", "vda", "--pivot", "--delete")
    assert done == (0, "\nSuccessfully pivoted\n", "")
    assert not (served.root / "top.qcow2").exists()
    assert f"<source file='{base}'/>" in cli(capsys, "-c", embed, "dumpxml", "bb")[1]
    again = cli(capsys, "-c", served.uri, "blockcommit", "bb", "vda", "--pivot")
    assert again == cli(capsys, "-c", embed, "blockcommit", "bb", "vda", "--pivot")
    assert again[0] == 1 and "does not have a backing image" in again[2]


@pytest.mark.parametrize(
    "argv",
    [
        ["blockcommit", "d", "vda"], ["blockcommit", "d", "vda", "--active"],
        ["blockcommit", "d", "vda", "--pivot", "--verbose"],
        ["blockcommit", "d", "vda", "--pivot", "--bandwidth", "5"],
        ["blockcommit", "d", "vda", "--pivot", "--timeout", "5"],
        ["blockcommit", "d", "vda", "--pivot", "--keep-overlay"],
        ["blockcommit", "d", "vda", "--wait", "--base", "x", "--shallow"],
        ["snapshot-create-as", "d"], ["snapshot-create-as", "d", "s", "--halt"],
        ["snapshot-create-as", "d", "s", "--print-xml"], ["snapshot-create-as", "d", "s", "desc"],
        ["snapshot-revert", "d"], ["snapshot-revert", "d", "--current"],
        ["snapshot-revert", "d", "s", "--help"],
    ],
)  # fmt: skip
def test_other_job_forms_fall_through_to_click(argv: list[str]) -> None:
    assert fast.run(["-c", "pyvirt+unix:///nonexistent.sock", *argv]) is None


@pytest.mark.parametrize("kind", ["commit", "active-commit"])
@pytest.mark.parametrize("outcome", ["started", "completed", "pivoted", "ready", "kept-overlay"])
def test_commit_outcome_is_the_click_text(kind: str, outcome: str) -> None:
    from pyvirt.cli.commands.blockjob import outcome_text
    from pyvirt.service.disk.blockjobs import BlockJobResult

    expected = outcome_text(BlockJobResult("vda", kind, outcome))
    assert fast_jobs.commit_outcome(kind, outcome) == expected


def test_snapshot_revert_imports_nothing_heavy(served: Served) -> None:
    served.daemon.conn.domains.define(domain_xml())
    heavy = ("click", "lxml", "pyvirt.api", "pyvirt.service", "pyvirt.model", "http.client")
    code = (
        "import sys\nfrom pyvirt.cli.main import main\n"
        f"try:\n    main({['-c', served.uri, 'snapshot-revert', 'web1', 's']!r})\n"
        "except SystemExit:\n    pass\n"
        f"print('MODULES', [m for m in {heavy!r} if m in sys.modules])"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert res.stdout.splitlines()[-1] == "MODULES []", res.stdout + res.stderr
    assert "has no snapshot 's'" in res.stderr


class _Interrupted:
    """A daemon client whose first long poll is interrupted (Ctrl-C)."""

    def __init__(self, end: str) -> None:
        self.sent: list[tuple[str, str]] = []
        self.end = end

    def json(self, method: str, path: str, payload: object = None) -> dict[str, object]:
        self.sent.append((method, path))
        job = {"id": "j1", "kind": "block-commit", "state": "running", "result": None}
        if method == "POST":
            return {"job": job}
        if method == "GET" and len(self.sent) == 2:
            raise KeyboardInterrupt
        if method == "GET":
            error = {"code": "cancelled", "error": "cancelled"} if self.end == "failed" else None
            return {**job, "state": self.end, "error": error}
        return job  # DELETE: the cancel was asked for

    def request(self, *args: object, **kwargs: object) -> object:
        raise AssertionError("not used")


@pytest.mark.parametrize("end", ["cancelled", "failed", "completed"])
def test_ctrl_c_cancels_the_commit_job_and_waits_for_its_end(
    end: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = _Interrupted(end)
    args = fast_jobs.FORMS["blockcommit"].parse(["d", "vda", "--pivot"])
    assert args is not None
    with pytest.raises(SystemExit) as done:
        fast_jobs.FORMS["blockcommit"].handler(client, args)  # type: ignore[arg-type]
    assert done.value.code == 1 and capsys.readouterr().out == "\nCommit aborted\n"
    assert [m for m, _ in client.sent] == ["POST", "GET", "DELETE", "GET"]
    assert client.sent[2][1] == "/api/v1/jobs/j1"
