"""One ``align_train`` run as one of several processes (``torchrun``), for ``test_multiprocess.py``.

Usage: ``torchrun --standalone --nproc_per_node 2 tests/ddp_worker.py DATA OUT DUMP SETTINGS_JSON``. Each process
writes its trainable weights to ``DUMP/rank<r>.safetensors`` and, to ``DUMP/rank<r>.json``, what it did: how many
times it saved a checkpoint and evaluated, its loss history and learning rates, and how accelerate saw the run.
"""

import json
import sys
from pathlib import Path

from accelerate import PartialState
from safetensors.torch import save_file

from modaverse_lite import train
from modaverse_lite.model import ModaVerseLite

data, out, dump, settings = sys.argv[1], sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])
calls = {"save": 0, "evaluate": 0}
real_save, real_answer = ModaVerseLite.save_pretrained, train.answer


def counted_save(self, *args, **kwargs):
    calls["save"] += 1
    return real_save(self, *args, **kwargs)


def counted_answer(*args, **kwargs):
    calls["evaluate"] += 1
    return real_answer(*args, **kwargs)


ModaVerseLite.save_pretrained, train.answer = counted_save, counted_answer
result = train.align_train(train.TrainConfig.from_profile("tiny", data_dir=data, out_dir=out, **settings))
state = PartialState()
rank = state.process_index
save_file({name: p.detach().contiguous() for name, p in result.model.named_parameters() if p.requires_grad},
          dump / f"rank{rank}.safetensors")
report = {"calls": calls, "history": result.history, "lrs": result.lrs, "steps": result.steps,
          "metrics": bool(result.metrics), "main": result.main_process, "processes": state.num_processes,
          "distributed_type": str(state.distributed_type)}
(dump / f"rank{rank}.json").write_text(json.dumps(report))
