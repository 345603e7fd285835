"""Source text and positions.

:class:`Span` is a 1-based (line, column) range in one file. :class:`SourceFile`
holds a file's text and maps offsets to lines. :class:`Origin` places a string
that was embedded in a YAML scalar back into its file, so an error inside an
expression in ``flows/x.yaml`` points at the right character of that file.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """A 1-based position range: ``line``/``column`` start, ``end_line``/``end_column`` end."""

    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def point(line: int, column: int, width: int = 1) -> Span:
        return Span(line, column, line, column + width)


@dataclass(frozen=True)
class SourceFile:
    """A file's bundle-relative path and its text."""

    path: str
    text: str

    def __post_init__(self) -> None:
        starts = [0]
        for i, ch in enumerate(self.text):
            if ch == "\n":
                starts.append(i + 1)
        object.__setattr__(self, "_line_starts", starts)

    def line_text(self, line: int) -> str | None:
        """The text of a 1-based line without its newline, or None past the end."""
        starts: list[int] = self._line_starts  # type: ignore[attr-defined]
        if line < 1 or line > len(starts):
            return None
        start = starts[line - 1]
        end = starts[line] - 1 if line < len(starts) else len(self.text)
        return self.text[start:end]

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a 0-based character offset."""
        starts: list[int] = self._line_starts  # type: ignore[attr-defined]
        idx = bisect_right(starts, offset) - 1
        return idx + 1, offset - starts[idx] + 1


@dataclass(frozen=True)
class Origin:
    """Where an embedded text starts in its file, for mapping inner positions out.

    ``line``/``column`` are the 1-based position of the text's first character.
    ``block`` is True for YAML block scalars, whose later lines start at
    ``indent + 1`` rather than column 1.
    """

    file: str
    line: int = 1
    column: int = 1
    block_indent: int | None = None

    def map(self, inner_line: int, inner_column: int) -> tuple[int, int]:
        """Translate a 1-based position inside the embedded text to the file."""
        if inner_line == 1:
            return self.line, self.column + inner_column - 1
        indent = self.block_indent if self.block_indent is not None else 0
        return self.line + inner_line - 1, indent + inner_column

    def span(self, line: int, column: int, end_line: int, end_column: int) -> Span:
        l1, c1 = self.map(line, column)
        l2, c2 = self.map(end_line, end_column)
        return Span(l1, c1, l2, c2)
