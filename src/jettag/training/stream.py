"""Training data larger than memory: shuffled buffers of random contiguous blocks.

An epoch draws the blocks of a split (contiguous row ranges of the prepared files, whose rows
prepare already shuffled) in a random order, reads `buffer_blocks` of them at a time into a
buffer (the next buffer is read by a background thread while the current one trains), and
cuts each shuffled buffer into batches exactly as an in-memory split would. Memory is two
buffers, whatever the size of the split. Blocks hold a multiple of the batch size, so an
epoch has ceil(n / batch_size) batches as in memory, and the order is a function of the
generator alone, so a resumed epoch skips to the same batch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from jettag.config import ModelConfig
from jettag.errors import InputError
from jettag.features.split import assign_fold
from jettag.io import model_inputs
from jettag.io.model_inputs import InputSpec, ModelInputReader, has_model_inputs
from jettag.training.data import TensorData, batch_indices, kfold_splits, load_split

log = logging.getLogger(__name__)
# loader 'auto' streams a training split whose model inputs exceed this
AUTO_STREAM_BYTES = 4 * 2**30


@dataclass(frozen=True)
class Segment:
    """Rows [start, stop) of one file of the split; keep: which of them belong to it."""

    part: int
    start: int
    stop: int
    keep: np.ndarray | None = None


def plan_blocks(
    sizes: Sequence[int],
    keeps: Sequence[np.ndarray | None],
    block_jets: int,
    max_jets: int | None = None,
) -> list[list[Segment]]:
    """Cut the kept rows of the parts, in order, into blocks of block_jets rows (the last short).

    A block may span two parts; only the first max_jets kept rows are used.
    """
    blocks: list[list[Segment]] = []
    current: list[Segment] = []
    filled = 0
    remaining = np.inf if max_jets is None else max_jets
    for part, (n_rows, keep) in enumerate(zip(sizes, keeps, strict=True)):
        kept_before = None if keep is None else np.concatenate([[0], np.cumsum(keep)])
        row = 0
        while row < n_rows and remaining > 0:
            want = int(min(block_jets - filled, remaining))
            if kept_before is None:
                stop = min(n_rows, row + want)
                got, segment_keep = stop - row, None
            else:
                # first stop with kept_before[stop] - kept_before[row] >= want
                stop = int(np.searchsorted(kept_before, kept_before[row] + want, side="left"))
                stop = min(stop, n_rows)
                got = int(kept_before[stop] - kept_before[row])
                segment_keep = keep[row:stop]
            if got:
                current.append(Segment(part, row, stop, segment_keep))
            filled += got
            remaining -= got
            row = stop
            if filled == block_jets:
                blocks.append(current)
                current, filled = [], 0
    if current:
        blocks.append(current)
    return blocks


class StreamingSplit:
    """A split read from prepared files block by block; the same batches() as TensorData.

    A background thread reads the next buffer's blocks into one of two slots while the
    training thread gathers the batches of the current one from the other. The slots are
    allocated once and refilled in place: fresh arrays of hundreds of MB per buffer would
    cost their page faults again every time, which is slower than the read itself.
    """

    def __init__(
        self,
        parts: Sequence[tuple[Path, np.ndarray | None]],
        spec: InputSpec,
        block_jets: int,
        buffer_blocks: int,
        max_jets: int | None = None,
        need_track_origin: bool = False,
    ) -> None:
        self.readers = [ModelInputReader(path, spec, need_track_origin) for path, _ in parts]
        for (path, _), reader in zip(parts[1:], self.readers[1:], strict=True):
            if reader.layout() != self.readers[0].layout():
                raise InputError(
                    f"{path}: its model inputs differ from {parts[0][0]}'s (prepared apart?)"
                )
        sizes = [len(reader) for reader in self.readers]
        keeps = [keep for _, keep in parts]
        self.blocks = plan_blocks(sizes, keeps, block_jets, max_jets)
        self.buffer_blocks = buffer_blocks
        self.block_jets = block_jets
        self.n_jets = sum(_block_jets(block) for block in self.blocks)
        self.slots: list[dict[str, np.ndarray]] = []

    def __len__(self) -> int:
        return self.n_jets

    def _fill(
        self,
        slot: int,
        block_ids: Sequence[int],
        batch_size: int,
        generator: torch.Generator | None,
        bucket: bool,
    ) -> list[np.ndarray]:
        """Read blocks into a slot (in the reader thread); the row indices of its batches."""
        if not self.slots:
            capacity = min(self.n_jets, self.block_jets * self.buffer_blocks)
            self.slots = [self.readers[0].empty_like(capacity) for _ in range(2)]
        n_rows = 0
        for i in sorted(block_ids):
            for s in self.blocks[i]:
                n_rows = self.readers[s.part].read_into(
                    self.slots[slot], n_rows, s.start, s.stop, s.keep
                )
        multiplicity = torch.from_numpy(self.slots[slot]["valid"][:n_rows].sum(axis=1))
        return [
            np.arange(n_rows)[index] if isinstance(index, slice) else index.numpy()
            for index in batch_indices(multiplicity, batch_size, generator, bucket)
        ]

    def _batch(self, slot: int, rows: np.ndarray) -> tuple[torch.Tensor, ...]:
        """The model's tensors of a slot's rows (copies: the slot will be refilled)."""
        stored = {name: np.take(values, rows, axis=0) for name, values in self.slots[slot].items()}
        return TensorData.from_arrays(self.readers[0].to_model(stored)).batch(slice(None))

    def batches(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        start_batch: int = 0,
        bucket: bool = False,
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        """(tracks, valid, jets, labels, weights, track_origin) batches, as TensorData.batches.

        With a generator: blocks in a random order, each buffer shuffled (and bucketed by
        multiplicity); without one: blocks in order. start_batch skips the first batches.
        The generator is used in one fixed sequence (block order, then buffer by buffer),
        so the same generator state gives the same batches.
        """
        n_blocks = len(self.blocks)
        order = (
            torch.randperm(n_blocks, generator=generator).tolist()
            if generator is not None
            else list(range(n_blocks))
        )
        step = self.buffer_blocks
        buffers = [order[k : k + step] for k in range(0, n_blocks, step)]
        done = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="jettag-reader") as pool:

            def fill(k: int) -> Future:
                """Start reading buffer k into slot k % 2."""
                return pool.submit(self._fill, k % 2, buffers[k], batch_size, generator, bucket)

            # buffer k + 1 is read while the batches of buffer k are served
            pending: list[Future] = [fill(0)] if buffers else []
            for k in range(len(buffers)):
                batches = pending.pop().result()
                if k + 1 < len(buffers):
                    pending.append(fill(k + 1))
                for rows in batches:
                    if done >= start_batch:
                        yield self._batch(k % 2, rows)
                    done += 1

    def close(self) -> None:
        """Close the files."""
        for reader in self.readers:
            reader.close()


def _block_jets(block: list[Segment]) -> int:
    """Rows a block holds."""
    return sum(
        (s.stop - s.start) if s.keep is None else int(np.count_nonzero(s.keep)) for s in block
    )


def use_streaming(loader: str, train_path: Path, spec: InputSpec) -> bool:
    """Whether training streams (loader 'stream', or 'auto' and too big for memory)."""
    if loader == "memory" or (loader == "auto" and not has_model_inputs(train_path)):
        return False
    if loader == "stream":
        return True
    with h5py.File(train_path, "r") as f:
        n_jets, max_tracks, _ = f[model_inputs.GROUP]["tracks"].shape
    bytes_per_jet = max_tracks * (4 * len(spec.track_norms) + 2) + 4 * len(spec.jet_norms) + 32
    return n_jets * bytes_per_jet > AUTO_STREAM_BYTES


def training_data(
    data_dir: Path, spec: InputSpec, model_config: ModelConfig, member: int
) -> tuple[TensorData | StreamingSplit, TensorData | StreamingSplit]:
    """(training, validation) data of one member, in memory or streamed (training.loader).

    K-fold members pool the train and val splits and hold out fold `member` (by event).
    """
    config = model_config.training
    need_origin = config.track_origin_weight > 0
    files = [data_dir / "train.h5", data_dir / "val.h5"]
    if not use_streaming(config.loader, files[0], spec):
        if model_config.kfold:
            train, val = kfold_splits(data_dir, spec, model_config.members, member, need_origin)
            if config.max_train_jets is not None:
                train = train.subset(torch.arange(min(len(train), config.max_train_jets)))
            return train, val
        return (
            load_split(files[0], spec, config.max_train_jets, need_origin),
            load_split(files[1], spec, need_track_origin=need_origin),
        )
    # whole batches per block: an epoch then has ceil(n / batch_size) batches, as in memory
    block = math.ceil(config.loader_block_jets / config.batch_size) * config.batch_size
    log.info("streaming %s in blocks of %d jets, %d blocks per buffer", data_dir, block,
             config.loader_buffer_blocks)  # fmt: skip
    if model_config.kfold:
        held_out = [_fold_mask(path, model_config.members, member) for path in files]
        train_parts = [(path, ~mask) for path, mask in zip(files, held_out, strict=True)]
        val_parts = list(zip(files, held_out, strict=True))
    else:
        train_parts, val_parts = [(files[0], None)], [(files[1], None)]
    return (
        StreamingSplit(train_parts, spec, block, config.loader_buffer_blocks,
                       config.max_train_jets, need_origin),
        StreamingSplit(val_parts, spec, block, config.loader_buffer_blocks,
                       need_track_origin=need_origin),
    )  # fmt: skip


def _fold_mask(path: Path, n_folds: int, fold: int) -> np.ndarray:
    """(n_jets,) bool: the jets of a prepared file in K-fold fold `fold` (by eventNumber)."""
    with h5py.File(path, "r") as f:
        event_number = f[model_inputs.GROUP]["event_number"][:]
    return assign_fold(event_number, n_folds) == fold
