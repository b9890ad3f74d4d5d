"""MinHash signatures of many documents at once, identical to datasketch's, stored as LeanMinHash.

datasketch computes a signature one document at a time: every shingle goes through Python
(`sha1_hash32`), then a numpy broadcast over the permutations. Here compiled code (numba) runs
over a batch's normalised UTF-8 buffer: it finds the shingles' byte ranges, hashes them with SHA-1
32 at a time in SIMD lanes (`sha1`), and folds each hash into the minimum of every permutation,
with no Python object per word or shingle (`pipeline.dedup.kernels`); a process's first megabyte
goes through plain Python and numpy instead (`pipeline.dedup.few_docs`, see `compiled`), which
spares a small build the kernels' loading. The values are datasketch's exactly, on either path, for
both of its 32-bit schemes (tests assert it):

- "affine32" (datasketch >= 2.0 default, ours): h = fmix32(sha1_hash32(shingle)); a*h + b mod 2^32.
  datasketch 2.0 made it the default because the legacy fold from 61 to 32 bits collides like a
  random function and inflates similarity on large sets; it is also the faster of the two.
- "legacy" (datasketch < 2.0): (a*h + b) mod 2^64 (numpy's uint64 wrap-around), then mod the
  Mersenne prime 2^61 - 1, then the low 32 bits.

The permutation parameters are drawn as datasketch's `MinHash(num_perm, seed, scheme)` draws them
(tests compare them), so the seed means the same thing here as there, and a stored signature loads
back as a `LeanMinHash`. datasketch itself is not imported here: it imports scipy.integrate, half a
CPU-second and 120 MB in the build's process.
"""

from __future__ import annotations

import struct
import sys
import threading
from functools import lru_cache

import numpy as np
import pyarrow as pa

SCHEMES = ("affine32", "legacy")
DEFAULT_SCHEME = "affine32"
EMPTY = np.uint32(0xFFFFFFFF)  # a permutation's value before any shingle: datasketch's "empty"

_MERSENNE = (1 << 61) - 1

# Text a process signs or hashes without the compiled kernels before it loads them (`compiled`).
PLAIN_BYTES_PER_PROCESS = 1 << 20
_plain_left = PLAIN_BYTES_PER_PROCESS
_plain_lock = threading.Lock()


def compiled(texts: pa.Array | pa.ChunkedArray) -> bool:
    """Whether a batch goes to the compiled kernels (`pipeline.dedup.kernels`) or to plain Python
    (`pipeline.dedup.few_docs`): the same values either way. Loading the kernels costs a process about
    0.6 CPU-seconds and 150 MB once, about what plain Python spends on a megabyte of text; so each
    process does its first `PLAIN_BYTES_PER_PROCESS` in plain Python and everything after compiled.
    A build of a few pages never loads numba; a large one wastes at most that first megabyte's time.
    Once the kernels are loaded (by this rule, or a caller's `use_kernels=True`), they do everything."""
    global _plain_left
    if "pipeline.dedup.kernels" in sys.modules:
        return True
    size = texts.nbytes
    with _plain_lock:
        if size <= _plain_left:
            _plain_left -= size
            return False
        _plain_left = 0  # from now on compiled: the kernels are worth loading
        return True


@lru_cache(maxsize=16)
def permutations(num_perm: int, seed: int, scheme: str = DEFAULT_SCHEME) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's permutation parameters (a, b) for this seed: uint32 for affine32, uint64 for legacy.

    Drawn as datasketch 2.0's `MinHash._init_permutations` draws them, from `RandomState(seed)`.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    gen = np.random.RandomState(seed)
    if scheme == "legacy":
        pairs = [(gen.randint(1, _MERSENNE, dtype=np.uint64), gen.randint(0, _MERSENNE, dtype=np.uint64))
                 for _ in range(num_perm)]
        a, b = np.array(pairs, dtype=np.uint64).reshape(num_perm, 2).T
    else:  # an odd multiplier: a bijection of the 32-bit values
        a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    dtype = np.uint32 if scheme == "affine32" else np.uint64
    return np.ascontiguousarray(a, dtype=dtype), np.ascontiguousarray(b, dtype=dtype)


def signatures(
    texts: pa.Array | pa.ChunkedArray | list[str],
    num_perm: int = 128,
    seed: int = 1,
    ngram: int = 5,
    scheme: str = DEFAULT_SCHEME,
    use_kernels: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures of a batch of texts: (uint32 array (docs, num_perm), shingle counts).

    Row d equals `MinHash(num_perm, seed, scheme=scheme)` updated with the shingles of text d
    (`shingle_set`); a text with no shingles keeps datasketch's empty value in every slot, and
    its count of 0 tells the caller to leave it out of the index. `use_kernels`: compiled or plain
    Python (default: as `compiled` decides; the values are the same).
    """
    if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
        texts = pa.array(texts, pa.large_string())
    a, b = permutations(num_perm, seed, scheme)
    if not (compiled(texts) if use_kernels is None else use_kernels):
        from pipeline.dedup import few_docs

        return few_docs.signatures(texts, ngram, a, b, scheme == "legacy", EMPTY)
    from pipeline.dedup.kernels import signatures_kernel
    from pipeline.dedup.shingles import normalised_buffers

    data, offsets = normalised_buffers(texts)
    out = np.full((len(offsets) - 1, num_perm), EMPTY, dtype=np.uint32 if scheme == "affine32" else np.uint64)
    counts = signatures_kernel(data, offsets, ngram, a, b, scheme == "legacy", out)
    return out.astype(np.uint32, copy=False), counts


def shingle_hashes(texts: pa.Array | pa.ChunkedArray | list[str], ngram: int = 5,
                   use_kernels: bool | None = None) -> list[np.ndarray]:
    """Each text's shingles as sorted unique 64-bit SHA-1 prefixes: sets for exact Jaccard.

    Distinct shingles of one document collide with probability ~ m^2 / 2^65 (m shingles): never,
    in practice, so Jaccard on these sets is the Jaccard of the shingle sets.
    """
    flat, doc_offsets, _ = flat_shingle_hashes(texts, ngram, use_kernels)
    return [np.unique(flat[doc_offsets[d] : doc_offsets[d + 1]]) for d in range(len(doc_offsets) - 1)]


def flat_shingle_hashes(
    texts: pa.Array | pa.ChunkedArray | list[str], ngram: int = 5, use_kernels: bool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every shingle's 64-bit SHA-1 prefix, flat in text order (uint64), per-text offsets into
    them, and each text's number of normalised words (a text under `ngram` words has one shingle,
    all of it). `use_kernels`: as in `signatures`."""
    if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
        texts = pa.array(texts, pa.large_string())
    if not (compiled(texts) if use_kernels is None else use_kernels):
        from pipeline.dedup import few_docs

        return few_docs.flat_shingle_hashes(texts, ngram)
    from pipeline.dedup.kernels import shingle_hash_kernel
    from pipeline.dedup.shingles import normalised_buffers

    data, offsets = normalised_buffers(texts)
    flat, doc_offsets = shingle_hash_kernel(data, offsets, ngram)
    spaces = np.concatenate(([0], np.cumsum(data == 0x20)))
    words = np.where(offsets[1:] > offsets[:-1], spaces[offsets[1:]] - spaces[offsets[:-1]] + 1, 0)
    return flat, doc_offsets, words


def hash_set_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique hash arrays (0.0 when both are empty)."""
    if len(a) == 0 and len(b) == 0:
        return 0.0
    shared = len(np.intersect1d(a, b, assume_unique=True))
    return shared / (len(a) + len(b) - shared)


# LeanMinHash byte format (datasketch >= 2.0, little-endian): int64 seed, int32 -num_perm,
# uint8 scheme code, then the values as uint32. Legacy payloads omit the code and store +num_perm.
_SCHEME_CODE = {"affine32": 1}


def _lean_header(num_perm: int, seed: int, scheme: str) -> bytes:
    if scheme == "legacy":
        return struct.pack("<qi", seed, num_perm)
    return struct.pack("<qiB", seed, -num_perm, _SCHEME_CODE[scheme])


def lean_size(num_perm: int, scheme: str = DEFAULT_SCHEME) -> int:
    """Bytes of one serialised LeanMinHash."""
    return len(_lean_header(num_perm, 0, scheme)) + 4 * num_perm


def to_lean_bytes(sigs: np.ndarray, seed: int, scheme: str = DEFAULT_SCHEME) -> pa.FixedSizeBinaryArray:
    """Signatures as LeanMinHash payloads (`LeanMinHash.deserialize(buf, byteorder="<")` reads one)."""
    header = np.frombuffer(_lean_header(sigs.shape[1], seed, scheme), np.uint8)
    rows = np.empty((sigs.shape[0], len(header) + 4 * sigs.shape[1]), np.uint8)
    rows[:, : len(header)] = header
    rows[:, len(header) :] = np.ascontiguousarray(sigs, dtype="<u4").view(np.uint8).reshape(sigs.shape[0], -1)
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(rows.shape[1]), sigs.shape[0], [None, pa.py_buffer(rows.tobytes())]
    )


def from_lean_bytes(payloads: pa.Array | pa.ChunkedArray, num_perm: int) -> np.ndarray:
    """The uint32 signature matrix back from `to_lean_bytes` payloads (all of one num_perm).

    Accepts the payloads as fixed-size or variable binary (Polars hands back the latter).
    """
    if isinstance(payloads, pa.ChunkedArray):
        payloads = pa.concat_arrays(payloads.chunks) if payloads.num_chunks else pa.array([], pa.binary())
    if len(payloads) == 0:
        return np.empty((0, num_perm), np.uint32)
    if not pa.types.is_fixed_size_binary(payloads.type):
        payloads = payloads.cast(pa.binary())
        payloads = payloads.cast(pa.binary(len(payloads[0].as_py())))
    width = payloads.type.byte_width
    raw = np.frombuffer(payloads.buffers()[1], np.uint8)[payloads.offset * width : (payloads.offset + len(payloads)) * width]
    rows = raw.reshape(len(payloads), width)
    return rows[:, width - 4 * num_perm :].copy().view("<u4").astype(np.uint32, copy=False)


def lean_minhash(payload: bytes):
    """One stored signature as datasketch's LeanMinHash."""
    from datasketch import LeanMinHash

    return LeanMinHash.deserialize(payload, byteorder="<")
