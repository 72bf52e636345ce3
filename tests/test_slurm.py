"""The SLURM profile: the paper plan asks for GPUs (always), and a real single-node SLURM (as root on
Linux: Debian's slurm-wlm + munge, daemons started here and stopped by their PIDs) runs the workflow
through sbatch with the numbers of a local run. Facts and traps: shared/reference/slurm.md."""

import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from ebmbench.registry import get_method, resolve_config
from ebmbench.run_plan import planned_runs, preset_of
from tests.test_container import (
    TINY,
    apt_install,
    integration_skip_reason,
    local_run,
    numbers,
    prepared_resources,
    say,
    skip_loudly,
)

ROOT = Path(__file__).resolve().parents[1]


def snakemake(work, *args, timeout=900):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # jobs run this venv's python
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=work, capture_output=True, text=True, env=env, timeout=timeout
    )


def test_paper_plan_asks_for_gpus(workflow_dir):
    shutil.copytree(ROOT / "profiles", workflow_dir / "profiles")
    r = snakemake(
        workflow_dir,
        "-n",
        "results/table.csv",
        "--configfile",
        "config/paper.yaml",
        "--workflow-profile",
        "profiles/slurm",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config.update(yaml.safe_load((ROOT / "config/paper.yaml").read_text()))
    jobs = []
    for block in re.split(r"\n(?=rule \w+:)", r.stdout + r.stderr):
        name = re.match(r"rule (\w+):", block)
        res = re.search(r"resources: (.*)", block)
        wc = re.search(r"wildcards: (.*)", block)
        if name and name.group(1) in ("train", "sample", "score"):
            jobs.append(
                (
                    name.group(1),
                    dict(kv.split("=", 1) for kv in wc.group(1).split(", ")),
                    dict(kv.split("=", 1) for kv in res.group(1).split(", ")),
                )
            )
    runs = planned_runs(config)
    n = len(runs) * len(config["seeds"])
    assert [j[0] for j in jobs].count("train") == n and [j[0] for j in jobs].count("sample") == n
    variants = sum(len(get_method(m).VARIANTS) for m, _ in runs) * len(config["seeds"])
    # + each sampling variant of a run, + uniform noise per dataset
    assert [j[0] for j in jobs].count("score") == n + variants + len(config["datasets"])
    for rule, wc, res in jobs:
        assert res["gpu"] == "1", (rule, wc, res)
        assert res["cpus_per_task"] == str(config["threads"])
        assert res["mem_mb"] == (
            "32000" if preset_of(config, wc["dataset"]) == "celeba64" else "16000"
        )  # by preset: celeba64_40k too
        if rule == "train":
            cfg = resolve_config(wc["method"], preset_of(config, wc["dataset"]))
            assert res["runtime"] == str(30 + math.ceil(cfg.n_iters * 0.5 / 60)), (wc, res)


def _slurm_conf(d: Path, munge_socket: Path) -> str:
    mem_mb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024
    host = socket.gethostname().split(".")[0]
    return f"""ClusterName=ebmbench-test
SlurmctldHost={host}
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=2000
MinJobAge=300
ReturnToService=2
MpiDefault=none
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
NodeName={host} CPUs={os.cpu_count()} RealMemory={int(mem_mb * 0.9)} State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="module")
def slurm(request, tmp_path_factory):
    """munged, slurmctld and slurmd for this module; the folder with their logs."""
    reason = integration_skip_reason("slurmctld")
    if reason:
        skip_loudly(reason)
    t = time.time()
    if not all(shutil.which(b) for b in ("slurmctld", "slurmd", "munged", "sbatch")):
        apt_install("slurm-wlm", "munge")
    say(request, f"apt-get install slurm-wlm munge: {time.time() - t:.0f} s")
    d = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool", "munge-key"):
        (d / sub).mkdir()
    # munged as root insists on a root-owned 600 key in a 700 folder, and on a socket folder whose
    # every parent is world-executable (pytest's tmp folders are 700): a folder of its own in /tmp
    os.chmod(d / "munge-key", 0o700)
    key = d / "munge-key" / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o600)
    run_dir = Path(tempfile.mkdtemp(prefix="ebmbench-munge-"))
    os.chmod(run_dir, 0o755)
    sock = run_dir / "munge.socket"
    conf = Path("/etc/slurm/slurm.conf")  # trap 1: jobs' inner srun only finds it here
    saved = conf.with_name("slurm.conf.ebmbench-saved")
    daemons = []
    try:
        daemons.append(
            subprocess.Popen(
                [
                    "munged",
                    "-F",
                    f"--key-file={key}",
                    f"--socket={sock}",
                    f"--pid-file={d}/munged.pid",
                    f"--log-file={d}/munged.log",
                    f"--seed-file={d}/munged.seed",
                ]
            )
        )
        conf.parent.mkdir(parents=True, exist_ok=True)
        if conf.exists():
            conf.rename(saved)
        conf.write_text(_slurm_conf(d, sock))
        t = time.time()
        while not sock.exists():
            assert time.time() - t < 20 and daemons[0].poll() is None, "munged did not start (its messages are above)"
            time.sleep(0.2)
        daemons.append(subprocess.Popen(["slurmctld", "-D"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        daemons.append(subprocess.Popen(["slurmd", "-D"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        while "idle" not in subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout:
            assert time.time() - t < 60 and all(p.poll() is None for p in daemons), (
                "SLURM did not come up: " + (d / "slurmctld.log").read_text(errors="ignore")[-1500:]
            )
            time.sleep(1)
        say(
            request,
            f"munged, slurmctld, slurmd (pids {', '.join(str(p.pid) for p in daemons)}) idle: {time.time() - t:.0f} s",
        )
        yield d
    finally:
        for p in reversed(daemons):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if saved.exists():
            saved.replace(conf)
        elif conf.exists():
            conf.unlink()
        shutil.rmtree(run_dir, ignore_errors=True)


def test_workflow_through_sbatch_equals_local(slurm, workflow_dir, digits_dir, digits_classifier, request):
    work = workflow_dir
    shutil.copytree(ROOT / "profiles", work / "profiles")
    prepared_resources(work, digits_dir, digits_classifier)
    (work / "tiny.yaml").write_text(TINY)
    t = time.time()
    # trap 2: no slurmdbd here, so job status comes from squeue (sacct would wait forever)
    r = snakemake(
        work,
        "results/digits/short_run/seed0/metrics.json",
        "--configfile",
        "tiny.yaml",
        "--workflow-profile",
        "profiles/slurm",
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "5",
    )
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-4000:]
    ids = re.findall(r"SLURM jobid (\d+)", log)
    say(request, f"workflow through SLURM, {len(ids)} sbatch jobs (ids {', '.join(ids)}): {time.time() - t:.0f} s")
    assert len(ids) == 3  # train, sample, score: every job went through sbatch
    ctld = (slurm / "slurmctld.log").read_text(errors="ignore")
    assert all(re.search(rf"JobId={i}\b", ctld) for i in ids)
    via_slurm = (work / "results/digits/short_run/seed0/metrics.json").read_text()

    t = time.time()
    local = local_run(work, "results/local", "resources/local-cache")
    say(request, f"the same run locally: {time.time() - t:.0f} s")
    import json

    assert numbers(json.loads(via_slurm)) == numbers(local)
