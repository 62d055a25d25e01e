"""Small valid LoRA adapter GGUF files for a base model, written with the `gguf` package.

No LoRA adapter can be fetched offline, so the tests make their own: random float32
`lora_a`/`lora_b` pairs (rank 8, alpha 8) on every layer's attention query and feed-forward
down projection, shaped from the base model's own tensors. The same seed gives the same file.
"""

import os
from pathlib import Path

import gguf
import numpy as np


def write_lora(path, base, seed, rank=8, spread=0.1, targets=("attn_q", "ffn_down"), arch=None):
    """Writes an adapter for `base` (a GGUF path) to `path`; atomically (renamed into place)."""
    reader = gguf.GGUFReader(str(base))
    field = reader.fields["general.architecture"]
    base_arch = bytes(field.parts[field.data[0]]).decode()
    tmp = Path(str(path) + ".partial")
    writer = gguf.GGUFWriter(str(tmp), arch or base_arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(rank))
    rng = np.random.default_rng(seed)
    for t in reader.tensors:
        parts = t.name.split(".")
        if len(parts) != 4 or parts[0] != "blk" or parts[2] not in targets or parts[3] != "weight":
            continue
        n_in, n_out = (int(x) for x in t.shape)  # ggml order: inputs first
        # numpy shapes are ggml's reversed: lora_a is [in, rank], lora_b is [rank, out].
        writer.add_tensor(t.name + ".lora_a", rng.uniform(-spread, spread, (rank, n_in)).astype(np.float32))
        writer.add_tensor(t.name + ".lora_b", rng.uniform(-spread, spread, (n_out, rank)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, path)
    return Path(path)
