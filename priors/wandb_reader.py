"""Read an offline W&B run back (``<dir>/wandb/offline-run-*/run-*.wandb``) without a server.

Used by the tests and handy to check what a run logged before ``wandb sync``. The record
file is a LevelDB-style log: a 7-byte header (``:W&B``, magic 0xBEE1, version), then 32 KiB
blocks of records ``crc32c (4) | length (2, little endian) | type (1) | payload``, where type
1 is a whole record and 2/3/4 the first/middle/last pieces of a split one; each payload is a
``wandb_internal_pb2.Record`` protobuf.
"""
from __future__ import annotations

import json
from pathlib import Path


BLOCK = 32 * 1024
HEADER = 7


def iter_records(path: str | Path):
    """Yield each serialized record (bytes) of a ``run-*.wandb`` file."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file")
    pos, pieces = HEADER, []
    while pos + 7 <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < 7:  # block trailer padding
            pos += left_in_block
            continue
        length = int.from_bytes(data[pos + 4:pos + 6], "little")
        kind = data[pos + 6]
        payload = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        if kind == 1:
            yield payload
        elif kind == 2:
            pieces = [payload]
        elif kind == 3:
            pieces.append(payload)
        elif kind == 4:
            pieces.append(payload)
            yield b"".join(pieces)
            pieces = []


def read_offline_run(run_dir: str | Path, wait: float = 30.0) -> dict:
    """{"config": {key: value}, "history_keys": set of logged metric/media keys, "history": one
    {key: value} per logged row (values as JSON-decoded), "media": [paths relative to files/],
    "complete": bool} for one offline run directory.

    W&B's service writes the file asynchronously, also after ``run.finish()`` returns: this
    re-reads for up to ``wait`` seconds until the run's exit record is there."""
    import time

    deadline = time.monotonic() + wait
    while True:
        run = _read_once(Path(run_dir))
        if run["complete"] or time.monotonic() > deadline:
            return run
        time.sleep(0.25)


def _read_once(run_dir: Path) -> dict:
    from wandb.proto import wandb_internal_pb2

    (record_file,) = run_dir.glob("run-*.wandb")
    config, rows, complete = {}, [], False
    for data in iter_records(record_file):
        record = wandb_internal_pb2.Record()
        try:
            record.ParseFromString(data)
        except Exception:  # a record still being written: the run is not complete yet
            break
        kind = record.WhichOneof("record_type")
        if kind == "config":
            for item in record.config.update:
                key = item.key or "/".join(item.nested_key)
                config[key] = json.loads(item.value_json)
        elif kind == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
        elif kind == "exit":
            complete = True
    files = run_dir / "files"
    media = sorted(str(p.relative_to(files)) for p in files.rglob("*") if p.is_file() and "media" in p.parts)
    return {"config": config, "history_keys": set().union(*rows), "history": rows, "media": media,
            "complete": complete}
