"""Text <-> token ids with a tokenmill SentencePiece model, lossless for any Unicode text.

Two details make `decode(encode(text)) == text` hold where plain `sp.encode` does not:

- Text is encoded line by line and "\\n" (a user-defined piece, never merged with its neighbours)
  is put back between lines. The ids are the same as encoding the whole text at once, but
  SentencePiece is ~4x faster on many short lines than on one long string, and a book-length
  document never builds one huge lattice.
- SentencePiece writes spaces as U+2581 ("▁") inside pieces and turns every "▁" back into a space
  when decoding, so a literal "▁" in the text would come back as " ". Such a character is written
  as its three UTF-8 byte pieces instead, which decode to "▁" itself.
"""

from __future__ import annotations

from itertools import chain

import numpy as np
import sentencepiece as spm

NEWLINE = "\n"
SPACE_SYMBOL = "\u2581"


class Codec:
    """Encoder for one loaded model; cheap to build, holds the ids of the pieces it inserts."""

    def __init__(self, sp: spm.SentencePieceProcessor):
        self.sp = sp
        self.newline_id = sp.piece_to_id(NEWLINE)
        if sp.id_to_piece(self.newline_id) != NEWLINE:
            raise ValueError("this SentencePiece model has no newline piece; train it with tokenizer.train")
        self.space_symbol_ids = [sp.piece_to_id(f"<0x{b:02X}>") for b in SPACE_SYMBOL.encode()]

    def encode(self, text: str) -> list[int]:
        flat, _ = self.encode_documents([text])
        return flat.tolist()

    def decode(self, ids) -> str:
        return self.sp.decode([int(i) for i in ids])

    def encode_documents(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Encode documents in one SentencePiece batch call (this thread only).

        Returns (flat, lengths): every document's ids back to back as uint32, and the number of ids
        of each document. No EOS is added: that is the token file writer's job.
        """
        if not texts:
            return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
        lines: list[str] = []
        lines_per_doc = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            doc_lines = text.split(NEWLINE)
            lines_per_doc[i] = len(doc_lines)
            lines.extend(doc_lines)
        encoded = self.sp.encode(lines, num_threads=1)
        if any(SPACE_SYMBOL in text for text in texts):
            for i, line in enumerate(lines):
                if SPACE_SYMBOL in line:
                    encoded[i] = self._encode_with_space_symbols(line)
        # Newline after every line but the last of its document ("".split gives one line, so every
        # document has at least one).
        is_last = np.zeros(len(lines), dtype=bool)
        is_last[np.cumsum(lines_per_doc) - 1] = True
        for ids, last in zip(encoded, is_last.tolist()):
            if not last:
                ids.append(self.newline_id)
        line_lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        total = int(line_lengths.sum())
        flat = np.fromiter(chain.from_iterable(encoded), dtype=np.uint32, count=total)
        starts = np.concatenate(([0], np.cumsum(lines_per_doc)[:-1]))
        return flat, np.add.reduceat(line_lengths, starts)

    def _encode_with_space_symbols(self, line: str) -> list[int]:
        parts = self.sp.encode(line.split(SPACE_SYMBOL), num_threads=1)
        ids = list(parts[0])
        for part in parts[1:]:
            ids.extend(self.space_symbol_ids)
            ids.extend(part)
        return ids
