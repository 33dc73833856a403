"""GPU-served open ladders without a GPU: a stub `vllm` on PATH speaks the OpenAI protocol, and the test checks
the exact command line the job starts (tensor parallelism from the GPUs the job was given), the port it
reaches, the server's environment (Hugging Face cache, offline hub) and that the job stops it."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
from test_http_server import _alive

from bargain.backend.servers import tensor_parallel, visible_gpus
from bargain.runner import run_experiment

TESTS = Path(__file__).resolve().parent
STUB = f"""#!{sys.executable}
# A stand-in for `vllm serve`: records how it was started, answers like an OpenAI server, notes its SIGTERM.
import json, os, signal, sys
from http.server import ThreadingHTTPServer
sys.path.insert(0, {str(TESTS)!r})
from test_http_server import OpenAICompatible

args = sys.argv[1:]
record = {{"argv": args, "pid": os.getpid(),
           "env": {{k: os.environ.get(k) for k in ("HF_HOME", "HF_HUB_OFFLINE", "CUDA_VISIBLE_DEVICES")}}}}
log = os.environ["VLLM_STUB_LOG"]

def save():
    with open(log, "w") as fh:
        json.dump(record, fh)

def stop(signum, frame):
    record["stopped_by"] = signum
    save()
    sys.exit(0)

save()
signal.signal(signal.SIGTERM, stop)
ThreadingHTTPServer((args[args.index("--host") + 1], int(args[args.index("--port") + 1])), OpenAICompatible).serve_forever()
"""


@pytest.fixture
def stub(tmp_path, monkeypatch):
    """A `vllm` executable first on PATH; returns the file it records its start and stop in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vllm").write_text(STUB)
    (bin_dir / "vllm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("VLLM_STUB_LOG", str(tmp_path / "vllm.json"))
    for var in ("CUDA_VISIBLE_DEVICES", "SLURM_GPUS_ON_NODE", "SLURM_GPUS_PER_NODE", "SLURM_GPUS", "SLURM_JOB_GPUS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "vllm.json"


@pytest.mark.parametrize(("model", "hf_id", "gpus", "tp", "extra"), [
    # 6 GPUs from CUDA_VISIBLE_DEVICES; Qwen2.5-7B's 28 heads split 4 ways, not 6
    ("qwen7b-vllm", "Qwen/Qwen2.5-7B-Instruct", {"CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5"}, 4, []),
    # 8 GPUs as SLURM reports them; Qwen2.5-72B's 64 heads take all 8
    ("qwen72b-vllm", "Qwen/Qwen2.5-72B-Instruct", {"SLURM_GPUS_ON_NODE": "8"}, 8, []),
    # a typed SLURM request; Qwen3 adds its reasoning parser
    ("qwen3-8b", "Qwen/Qwen3-8B", {"SLURM_GPUS_PER_NODE": "a100:2"}, 2, ["--reasoning-parser", "qwen3"]),
])
def test_the_job_starts_vllm_on_its_gpus_and_stops_it(make_cfg, stub, monkeypatch, model, hf_id, gpus, tp, extra):
    for var, value in gpus.items():
        monkeypatch.setenv(var, value)
    cfg = make_cfg(f"model={model}", "n_games=1", "counterbalance=false", "env.max_rounds=1",
                   "model.server.env.HF_HOME=/scratch/hf-cache")
    (record,) = run_experiment(cfg).records
    started = json.loads(stub.read_text())
    port = started["argv"][started["argv"].index("--port") + 1]
    assert started["argv"] == [
        "serve", hf_id, "--host", "127.0.0.1", "--port", port, "--served-model-name", hf_id,
        "--tensor-parallel-size", str(tp), "--max-model-len", "32768", "--generation-config", "vllm", "--seed", "0",
        *extra,
    ]
    assert int(port) > 0 and started["env"]["HF_HOME"] == "/scratch/hf-cache" and started["env"]["HF_HUB_OFFLINE"] == "1"
    assert record["status"] == "complete", record["error"]
    assert {c["model_id"] for c in record["calls"] if c["seat"] == 0} == {hf_id}  # answered by the stub on that port
    assert started["stopped_by"] == signal.SIGTERM and not _alive(started["pid"])
    assert list((Path(cfg.store) / ".servers").glob(f"{model}-{port}.log"))


def test_gpus_and_tensor_parallelism_from_the_environment():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1", "SLURM_GPUS_ON_NODE": "8"}) == 2  # what the job may use
    assert visible_gpus({"SLURM_GPUS_PER_NODE": "h100:4"}) == 4
    assert visible_gpus({"SLURM_JOB_GPUS": "0,1,2"}) == 3
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}) == 1 and visible_gpus({}) == 1
    assert [tensor_parallel(8, heads) for heads in (14, 12, 16, 28, 40, 64, None)] == [2, 4, 8, 4, 8, 8, 8]
    assert tensor_parallel(3, 64) == 2 and tensor_parallel(1, 64) == 1
