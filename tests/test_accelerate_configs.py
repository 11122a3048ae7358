"""Every shipped accelerate config loads with accelerate's own loader and launcher checks, and the multi-node one
turns into the torchrun settings its comments promise (2 nodes x 8 processes, rendezvous at the main node)."""

from __future__ import annotations

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils.launch import prepare_multi_gpu_env

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs/accelerate").glob("*.yaml"))


def _launch_args(path: Path, *extra: str):
    args = launch_command_parser().parse_args(["--config_file", str(path), *extra, "train.py"])
    return _validate_launch_command(args)[0]


def test_the_expected_configs_ship():
    assert {p.stem for p in CONFIGS} >= {"ddp", "fsdp", "deepspeed_zero3", "fsdp-multinode"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_parses_with_accelerates_loader(path):
    config = load_config_from_file(str(path))  # raises on unknown keys
    assert isinstance(config, ClusterConfig) and not config.use_cpu
    args = _launch_args(path)
    assert args.num_processes == config.num_processes and args.num_machines == config.num_machines
    assert args.num_processes % args.num_machines == 0, "num_processes is the total over all machines"
    kind = config.distributed_type.value
    assert (args.use_fsdp, args.use_deepspeed, args.multi_gpu) == (kind == "FSDP", kind == "DEEPSPEED", kind == "MULTI_GPU")


def test_multinode_config_gives_each_node_its_rank_and_the_main_address():
    path = next(p for p in CONFIGS if p.stem == "fsdp-multinode")
    for rank in (0, 1):
        args = _launch_args(path, "--machine_rank", str(rank))
        env = prepare_multi_gpu_env(args)
        assert (args.nnodes, args.node_rank, args.nproc_per_node) == ("2", rank, "8")
        assert args.rdzv_endpoint == "10.0.0.1:29500"
        assert env["FSDP_SHARDING_STRATEGY"] == "FULL_SHARD" and env["FSDP_ACTIVATION_CHECKPOINTING"] == "true"
        assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"
