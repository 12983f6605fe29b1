"""`dba-ref reproduce --jobs N` and `--scheduler`: the order runs are handed out in, identical run files, dying workers.

Every pool must give the serial run files but for their wall times (``WALL_TIME_FIELDS``), and
a worker killed in the middle of a run must not lose or change any file: the parent alone
writes them, and the lost run is trained again.
"""
import json
import os
import signal
import threading
import time

import pytest

from dba_ref.cli import main
from dba_ref.reproduction import Method, quick_protocol, run_protocol
from dba_ref.reproduction.protocol import Cell, Protocol, Setting
from dba_ref.reproduction.report import write_report
from dba_ref.reproduction.runner import Schedule
from dba_ref.reproduction.runs import without_wall_times, write_json
from dba_ref.reproduction.workers import InProcess, Processes, available_cores, make_pool


def run_files(out) -> dict:
    """Every run record under ``out``, by path relative to it, without its wall-time fields."""
    return {path.relative_to(out).as_posix(): without_wall_times(json.loads(path.read_text()))
            for path in sorted((out / "runs").rglob("*.json"))}


def assert_same_runs(out, reference):
    got, want = run_files(out), run_files(reference)
    assert sorted(got) == sorted(want)
    for name in want:                       # field by field, so a failure names what differs
        for field in sorted(set(want[name]) | set(got[name])):
            assert got[name].get(field) == want[name].get(field), (name, field)


@pytest.fixture(scope="module")
def serial_quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    assert main(["reproduce", "--quick", "--out", str(out), "--quiet"]) == 0
    return out


def slow_protocol() -> Protocol:
    """Six runs of about a second each (300 epochs of a tiny model): long enough to kill a worker in one."""
    setting = Setting("mnist5k", per_class=10, hidden=32, batch_size=32, epochs=300, val_per_class=20)
    return Protocol("slow", (Cell("main", setting, (Method("sgd"), Method("sgd", dba=True))),),
                    lr_multipliers=(1.0,), tune_seeds=(100,), final_seeds=(0, 1))


@pytest.fixture(scope="module")
def serial_slow(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial-slow")
    counts = run_protocol(slow_protocol(), out, progress=False)
    assert counts["done"] == 6
    return out


def test_the_schedule_hands_out_tuning_first_and_finals_once_their_tuning_settled(tmp_path):
    protocol = quick_protocol()
    schedule = Schedule(protocol, tmp_path, on_disk=lambda path: False)
    main_cell = protocol.schedule[0]
    first = [schedule.next() for _ in range(2)]
    assert [(r.role, r.method) for r in first] == [("tune", main_cell.methods[0])] * 2
    # the first method's finals wait for its tuning: the next run is the second method's
    third = schedule.next()
    assert third.method == main_cell.methods[1] and third.role == "tune"
    for run in first:                       # tuning settled: the finals (at the chosen rate) come first again
        write_json(run.path(tmp_path), {"result": {"diverged": False, "val_acc": 0.5, "val_loss": 1.0}})
        schedule.settle(run)
    fourth = schedule.next()
    assert (fourth.method, fourth.role, fourth.lr) == (main_cell.methods[0], "final", first[0].lr)
    # a run lost with its worker comes back first, the entries waiting for it go on waiting
    schedule.hand_back(fourth)
    assert schedule.next() == fourth


def test_a_run_two_cells_share_is_trained_once_and_waited_for(tmp_path):
    protocol = quick_protocol()
    schedule = Schedule(protocol, tmp_path, on_disk=lambda path: False)
    handed = []
    while (run := schedule.next()) is not None:
        handed.append(run)
        write_json(run.path(tmp_path), {"result": {"diverged": False, "val_acc": 0.5, "val_loss": 1.0}})
        schedule.settle(run)
    assert len({r.path(tmp_path) for r in handed}) == len(handed) == 20
    assert schedule.counts == {"skipped": 0, "shared": 4}


def test_jobs_give_the_serial_run_files_but_for_wall_times(serial_quick, tmp_path, capsys):
    assert main(["reproduce", "--quick", "--out", str(tmp_path), "--quiet", "--jobs", "2"]) == 0
    assert "20 runs trained, 0 found finished on disk" in capsys.readouterr().out
    assert_same_runs(tmp_path, serial_quick)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == json.loads((serial_quick / "summary.json").read_text())
    assert main(["reproduce", "--quick", "--out", str(tmp_path), "--quiet", "--jobs", "0"]) == 0     # resumes
    assert "0 runs trained, 20 found finished on disk" in capsys.readouterr().out


def test_a_worker_process_killed_mid_run_loses_no_run(serial_slow, tmp_path):
    logs, counts = [], {}
    with Processes(2) as pool:
        thread = threading.Thread(target=lambda: counts.update(
            run_protocol(slow_protocol(), tmp_path, progress=False, pool=pool, log=logs.append)))
        thread.start()
        until = time.time() + 60
        while len(pool.worker_pids()) < 2 or not list((tmp_path / "runs").rglob("*.json")):
            assert time.time() < until and thread.is_alive(), "no run finished"
            time.sleep(0.05)
        time.sleep(0.3)                     # runs go back to back: both workers are in one now
        os.kill(pool.worker_pids()[0], signal.SIGKILL)
        thread.join(120)
    assert counts["done"] == 6 and counts["failed"] == 0
    assert any("lost with its worker" in line for line in logs), logs
    assert_same_runs(tmp_path, serial_slow)


def test_jobs_and_pools_refuse_what_they_cannot_do():
    assert isinstance(make_pool(1), InProcess) and make_pool(3).capacity() == 3
    assert make_pool(0).capacity() == available_cores() >= 1
    with pytest.raises(ValueError, match="jobs must be an integer >= 0"):
        Processes(-2)
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        pytest.importorskip("distributed")
        make_pool(scheduler="localhost")


def test_a_dask_cluster_on_loopback_gives_the_serial_files_when_a_worker_dies_mid_run(serial_quick, serial_slow,
                                                                                       tmp_path, capsys):
    """Two worker processes on 127.0.0.1; one is killed while it trains a run: nothing is lost or changed."""
    distributed = pytest.importorskip("distributed", reason="needs Dask distributed: pip install 'dba-ref[cluster]'")
    from dba_ref.reproduction.workers import Dask

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as observer:
        quick = tmp_path / "quick"
        assert main(["reproduce", "--quick", "--out", str(quick), "--quiet",
                     "--scheduler", cluster.scheduler_address]) == 0
        assert "20 runs trained" in capsys.readouterr().out
        assert_same_runs(quick, serial_quick)
        assert main(["reproduce", "--quick", "--out", str(quick), "--quiet",       # resumes: nothing to train
                     "--scheduler", cluster.scheduler_address]) == 0
        assert "0 runs trained, 20 found finished on disk" in capsys.readouterr().out

        slow, logs, counts = tmp_path / "slow", [], {}
        with Dask(cluster.scheduler_address) as pool:
            thread = threading.Thread(target=lambda: counts.update(
                run_protocol(slow_protocol(), slow, progress=False, pool=pool, log=logs.append)))
            thread.start()
            until, busy = time.time() + 60, []
            while not busy:
                assert time.time() < until and thread.is_alive(), "no task started"
                busy = [w for w, keys in observer.processing().items() if keys]
                time.sleep(0.05)
            time.sleep(0.3)                 # into the run (each lasts about a second)
            victim = busy[0]
            assert observer.processing()[victim], "the run finished before the kill"
            os.kill(observer.run(os.getpid)[victim], signal.SIGKILL)
            thread.join(120)
    assert counts["done"] == 6 and counts["failed"] == 0, logs
    assert_same_runs(slow, serial_slow)
    for out in (slow, serial_slow):         # the report's numbers, its wall times aside, do not change
        write_report(slow_protocol(), out, out / "report.md")
    assert (slow / "summary.json").read_bytes() == (serial_slow / "summary.json").read_bytes()
