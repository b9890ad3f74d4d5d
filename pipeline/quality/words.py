"""Shared tokenisation for the quality rules: a document is split ONCE into lines and words here.

`split_document(text)` gives the lines (`str.splitlines`), each line's whitespace chunks and words,
and the document's words; every rule reads these instead of splitting the text again.

The words are the ones datatrove 0.10.1 gets for English from spaCy's blank "en" tokenizer
(`split_into_words`, whitespace tokens dropped), which its Gopher, C4 and FineWeb filters count.
spaCy is not used: loading and running it is about half of datatrove's filtering time. Instead
this module re-implements the algorithm of spaCy's `Tokenizer` (whitespace split; per chunk:
special cases, then prefixes and suffixes stripped one at a time, then a URL check, then infix
splits) with rules written after spaCy's English punctuation rules and tokenizer exceptions.
Every distinct chunk is tokenised once per process and cached, as spaCy itself does, so a
document costs a whitespace split and one dict lookup per chunk.

How closely the words match spaCy's on real documents is recorded in bench/results/quality_words.md;
tests/test_quality.py re-checks datatrove's keep/drop verdicts on real texts. Known divergences:
- Character classes use Unicode categories (`\\p{Ll}`, `\\p{So}`, ...) where spaCy lists code
  point ranges per script; they agree on Latin, Greek and basic Cyrillic, and differ for
  letters spaCy leaves out (Georgian, Armenian, extended Cyrillic), whose words spaCy does not
  split at hyphens or final periods.
- spaCy re-merges special cases split by affixes anywhere in a document; here only within a
  chunk, which is where they occur ("you:)" -> "you" ":)").
- Whitespace tokens are dropped here; datatrove drops them too (`strip_strings`), but spaCy's
  sentencizer sees them, so "a.  ." (two spaces) counts one sentence here and two in spaCy.
- datatrove tokenises a text with spaCy's tokenizer for the document's language; this module is
  always the English one, as in datatrove's default (language="en").
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import regex

# --- punctuation sets datatrove 0.10.1 uses (datatrove/utils/text.py) --------------------------

def _code_points(spec: str) -> frozenset[str]:
    """Characters named by space-separated hex code points and ranges ("21 2e 700-702")."""
    chars = set()
    for item in spec.split():
        first, _, last = item.partition("-")
        chars.update(map(chr, range(int(first, 16), int(last or first, 16) + 1)))
    return frozenset(chars)


# spaCy's Sentencizer.default_punct_chars: a word equal to one of these ends a sentence.
SENTENCE_END_CHARS = _code_points(
    "21 2e 3f 589 61f 6d4 700-702 7f9 964-965 104a-104b 1362 1367-1368 166e 1735-1736 1803 1809 "
    "1944-1945 1aa8-1aab 1b5a-1b5b 1b5e-1b5f 1c3b-1c3c 1c7e-1c7f 203c-203d 2047-2049 2e2e 2e3c "
    "3002 a4ff a60e-a60f a6f3 a6f7 a876-a877 a8ce-a8cf a92f a9c8-a9c9 aa5d-aa5f aaf0-aaf1 abeb "
    "fe52 fe56-fe57 ff01 ff0e ff1f ff61 10a56-10a57 11047-11048 110be-110c1 11141-11143 "
    "111c5-111c6 111cd 111de-111df 11238-11239 1123b-1123c 112a9 1144b-1144c 115c2-115c3 "
    "115c9-115d7 11641-11642 1173c-1173e 11a42-11a43 11a9b-11a9c 11c41-11c42 16a6e-16a6f 16af5 "
    "16b37-16b38 16b44 1bc9f 1da88"
)
# datatrove's TERMINAL_PUNCTUATION: the sentencizer's characters plus 31 more (Khmer, Syriac, ...).
# FineWeb's line_punct_ratio counts lines ending in one of these.
TERMINAL_PUNCTUATION = SENTENCE_END_CHARS | _code_points(
    "61d-61e 837 839 83d-83e 17d4-17d6 17d9-17da 1b7d-1b7e 2e53-2e54 10f55-10f59 10f86-10f89 "
    "11944 11946 11ef7-11ef8 11f43-11f44 16e98"
)
# Closing quotation marks and brackets that may follow a sentence's terminal punctuation
# ('enough."', '(see above.)'): FineWeb's line rule looks through them unless configured as datatrove.
CLOSING_QUOTES_BRACKETS = "\"'”’»›)]}）］｝」』】〉》〕"
# datatrove's PUNCTUATION_SET: a word made only of these is a "symbol", not a word, for Gopher.
PUNCTUATION_CHARS = (
    "!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_.\"}►»"
    + "".join(chr(c) for c in (*range(0, 9), 11, 12, *range(13, 32), *range(127, 160)))
    + "".join(sorted(TERMINAL_PUNCTUATION))
)

# --- spaCy English tokenizer rules (spacy/lang/punctuation.py, char_classes.py) -----------------

_PUNCT = r"…,:;!?¿؟¡()\[\]{}<>_#*&。？！，、；：～·।،۔؛٪"
_QUOTES = r"'\"”“`‘´’‚,„»«「」『』（）〔〕【】《》〈〉〈〉⟦⟧"
_CURRENCY_CHARS = r"$£€¥฿₽﷼₴₠-₿"
# "тбكم" is one unit, not "тб" and "كم": spaCy's list lacks a space there, and it is copied as is.
_UNITS = (
    "km km² km³ m m² m³ dm dm² dm³ cm cm² cm³ mm mm² mm³ ha µm nm yd in ft kg g mg µg t lb oz "
    "m/s km/h kmh mph hPa Pa mbar mb MB kb KB gb GB tb TB T G M K % км км² км³ м м² м³ дм дм² "
    "дм³ см см² см³ мм мм² мм³ нм кг г мг м/с км/ч кПа Па мбар Кб КБ кб Мб МБ мб Гб ГБ гб Тб ТБ тб"
    "كم كم² كم³ م م² م³ سم سم² سم³ مم مم² مم³ كم غرام جرام جم كغ ملغ كوب اكواب"
)
# spaCy's "uncased" scripts (Ethiopic, Bengali, Hebrew, Arabic/Persian, Sinhala, Devanagari,
# Kannada, Tamil, Telugu, Hangul, Kana, CJK) by whole Unicode blocks, marks and CJK punctuation
# included; they count as lower case, upper case and letters alike.
_UNCASED = (
    r"\u1200-\u137F\u0980-\u09FF\u0591-\u05F4\uFB1D-\uFB4F\u0620-\u064A\u066E-\u06D5\u06E5-\u06FF"
    r"\u0750-\u077F\u08A0-\u08BD\uFB50-\uFBB1\uFBD3-\uFD3D\uFD50-\uFDC7\uFDF0-\uFDFB\uFE70-\uFEFC"
    r"\U0001EE00-\U0001EEBB\u0D80-\u0DFF\u0900-\u097F\u0C80-\u0CFF\u0B80-\u0BFF\u0C00-\u0C7F"
    r"\uAC00-\uD7AF\u1100-\u11FF\u3040-\u309F\u30A0-\u30FFー\u4E00-\u9FFF\u3400-\u4DBF"
    r"\U00020000-\U0002EBEF\u2E80-\u2EFF\u2F00-\u2FDF\u2FF0-\u2FFF\u3000-\u303F\u31C0-\u31EF"
    r"\u3200-\u32FF\u3300-\u33FF\uF900-\uFAFF\uFE30-\uFE4F\U0001F200-\U0001F2FF\U0002F800-\U0002FA1F"
)
_LOWER = r"\p{Ll}" + _UNCASED
_UPPER = r"\p{Lu}\p{Lt}" + _UNCASED
_ALPHA = r"\p{Ll}\p{Lu}\p{Lt}" + _UNCASED

_PREFIX = regex.compile(  # used with .match(), so anchored at the chunk's current start
    r"(?:\.\.+|US\$|C\$|A\$|\+(?![0-9])|[§%=—–" + _PUNCT + _QUOTES + _CURRENCY_CHARS + r"\p{So}])"
)
_SUFFIX = regex.compile(
    r"(?:\.\.+|……|…|'s|'S|’s|’S|[—–" + _PUNCT + _QUOTES + r"\p{So}]"
    r"|(?<=[0-9])\+"
    r"|(?<=°[FfCcKk])\."
    r"|(?<=[0-9])(?:US\$|C\$|A\$|[" + _CURRENCY_CHARS + r"])"
    r"|(?<=[0-9])(?:" + "|".join(regex.escape(u) for u in _UNITS.split()) + r")"
    r"|(?<=[0-9" + _LOWER + r"%²\-+" + _PUNCT + _QUOTES + r"])\."
    r"|(?<=[" + _UPPER + r"][" + _UPPER + r"])\."
    r")$"
)
_INFIX = regex.compile(
    r"\.\.+|…|\p{So}"
    r"|(?<=[0-9])[+\-*^](?=[0-9-])"
    r"|(?<=[" + _LOWER + _QUOTES + r"])\.(?=[" + _UPPER + _QUOTES + r"])"
    r"|(?<=[" + _ALPHA + r"]),(?=[" + _ALPHA + r"])"
    r"|(?<=[" + _ALPHA + r"0-9])(?:---|--|——|[-–—~])(?=[" + _ALPHA + r"])"
    r"|(?<=[" + _ALPHA + r"0-9])[:<>=/](?=[" + _ALPHA + r"])"
)
# A chunk left after affix stripping that looks like a URL, host name or e-mail stays whole
# (spaCy's URL_MATCH, after https://gist.github.com/dperini/729294, without its IP-address part:
# dotted numbers are never split by the infix rules anyway).
_URL = regex.compile(
    r"^(?:[\w+\-.]{2,}://)?(?:\S+(?::\S*)?@)?"
    r"(?:(?:[A-Za-z0-9\u00a1-\uffff][A-Za-z0-9\u00a1-\uffff_-]{0,62})?[A-Za-z0-9\u00a1-\uffff]\.)+"
    r"[" + _LOWER + r"]{2,63}(?::\d{2,5})?(?:[/?#]\S*)?$"
)


# spaCy's emoticons (spacy/lang/tokenizer_exceptions.py): each stays one word.
_EMOTICONS = r"""
:) :-) :)) :-)) :))) :-))) (: (-: =) (= :] :-] [: [-: [= =] :o) (o: :} :-} 8) 8-) (-8 ;) ;-) (;
(-; :( :-( :(( :-(( :((( :-((( ): )-: =( >:( :') :'-) :'( :'-( :/ :-/ =/ =| :| :-| ]= =[ :1 :P
:-P :p :-p :O :-O :o :-o :0 :-0 :() >:o :* :-* :3 :-3 =3 :> :-> :X :-X :x :-x :D :-D ;D ;-D =D
xD XD xDD XDD 8D 8-D ^_^ ^__^ ^___^ >.< >.> <.< ._. ;_; -_- -__- v.v V.V v_v V_V o_o o_O O_o O_O
0_o o_0 0_0 o.O O.o O.O o.o 0.0 o.0 0.o @_@ <3 <33 <333 </3 (^_^) (-_-) (._.) (>_<) (*_*) (¬_¬)
ಠ_ಠ ಠ︵ಠ (ಠ_ಠ) ¯\(ツ)/¯ (╯°□°）╯︵┻━┻ ><(((*>
""".split()


def _english_special_cases() -> dict[str, tuple[str, ...]]:
    """Chunks spaCy's English tokenizer splits by a fixed rule (spacy/lang/en/tokenizer_exceptions.py).

    Contractions split before the clitic ("don't" -> "do" "n't", "dont" -> "do" "nt", "I'm" ->
    "I" "'m"); abbreviations keep their period ("Mr.", "e.g.", "Calif."), so it neither splits
    off nor ends a sentence.
    """
    cases: dict[str, tuple[str, ...]] = {}

    def add(head: str, *tail: str) -> None:
        for first in {head, head[:1].upper() + head[1:]}:
            for apostrophe in ("'", "’"):
                parts = (first, *(t.replace("'", apostrophe) for t in tail))
                cases["".join(parts)] = parts

    clitics = {
        "i": ["'m", "'d", "'ll", "'ve", "'d've", "'ll've"],
        **{p: ["'d", "'ll", "'d've", "'ll've"] for p in ("you", "he", "she", "it", "we", "they")},
        **{w: ["'s", "'re", "'ve", "'d", "'ll", "'d've", "'ll've"]
           for w in ("who", "what", "when", "where", "why", "how", "there", "that", "this", "these", "those")},
    }
    for p in ("you", "we", "they"):
        clitics[p] += ["'ve", "'re"]
    for p in ("he", "she", "it"):
        clitics[p] += ["'s"]
    for verb in ("could", "might", "must", "should", "would"):
        clitics[verb] = ["'ve"]
    for head, tails in clitics.items():
        for tail in tails:
            add(head, tail)
            # the same contraction typed without an apostrophe ("im", "youre", "thats"), except
            # where that spelling is a common word of its own
            bare_head, bare_tail = head, tail.replace("'", "")
            if (bare_head + bare_tail).lower() not in {"ill", "its", "hell", "shell", "shed", "were", "well", "whore"}:
                for first in {bare_head, bare_head.title()}:
                    cases[first + bare_tail] = (first, bare_tail)
    for head in ("ca", "could", "do", "does", "did", "had", "may", "might", "must", "need", "ought",
                 "sha", "should", "wo", "would", "ai", "are", "is", "was", "were", "have", "has", "dare"):
        for tail in ("n't", "n't've"):
            add(head, tail)
        for first in {head, head.title()}:
            cases[first + "nt"] = (first, "nt")
            cases[first + "ntve"] = (first, "ntve")
    for word, parts in {"cannot": ("can", "not"), "gonna": ("gon", "na"), "gotta": ("got", "ta"),
                        "ima": ("i", "m", "a"), "y'all": ("y'", "all"), "yall": ("y", "all")}.items():
        for variant in {word, word[:1].upper() + word[1:]}:
            cases[variant] = (variant[: len(parts[0])], *parts[1:])
    for hour in range(1, 13):
        for period in ("a.m.", "p.m.", "am", "pm"):
            cases[f"{hour}{period}"] = (str(hour), period)
    for unit in "cfkCFK":
        cases[f"°{unit}."] = ("°", unit, ".")
    whole_words = (
        "a.m. p.m. e.g. E.g. E.G. i.e. I.e. I.E. vs. v.s. Ph.D. co. Co. Corp. Inc. Ltd. Bros. "
        "Mr. Mrs. Ms. Dr. Prof. Rev. Gen. Gov. Sen. Rep. Adm. St. Mt. Jr. Messrs. "
        "Jan. Feb. Mar. Apr. Jun. Jul. Aug. Sep. Sept. Oct. Nov. Dec. "
        "Ak. Ala. Ariz. Ark. Calif. Colo. Conn. Del. Fla. Ga. Ia. Id. Ill. Ind. Kan. Kans. Ky. La. "
        "Mass. Md. Mich. Minn. Miss. Mo. Mont. Neb. Nebr. Nev. Okla. Ore. Pa. Tenn. Va. Wash. Wis. "
        "D.C. N.C. N.D. N.H. N.J. N.M. N.Y. S.C. C++ and/or w/o "
        "' '' ’ ’’ 's 'S ‘s ‘S ’s ’S 'd ’d 'll ’ll 're ’re 'em ’em 'nuff ’nuff 'bout ’bout "
        "'cause 'Cause ’cause ’Cause 'cos 'Cos ’cos ’Cos 'coz 'Coz ’coz ’Coz 'cuz 'Cuz ’cuz ’Cuz "
    )
    for word in whole_words.split() + _EMOTICONS + [f"{c}." for c in "abcdefghijklmnopqrstuvwxyzäöü"]:
        cases[word] = (word,)
    for word in ("ol", "doin", "goin", "havin", "lovin", "nothin", "nuthin", "somethin"):
        for first in (word, word.title()):
            cases[first + "'"] = (first + "'",)
            cases[first + "’"] = (first + "’",)
    return cases


_SPECIAL = _english_special_cases()
_LONGEST_SPECIAL = max(map(len, _SPECIAL))


def _suffix_length(chunk: str, start: int, end: int) -> int:
    """Length of the suffix rule match at the end of chunk[start:end] (0 if none).

    spaCy searches the whole remaining string, which makes a long run of punctuation ("=====",
    "))))") quadratic. Every suffix rule is at most 5 characters long except the dot run of an
    ellipsis, so searching from 10 characters before the end (or from the trailing dots) finds
    the same leftmost match; 2 more characters feed the rules' look-behinds.
    """
    dots_start = end
    while dots_start > start and chunk[dots_start - 1] == ".":
        dots_start -= 1
    window_start = max(start, min(end - 10, dots_start) - 2)
    window = chunk[window_start:end]
    match = _SUFFIX.search(window)
    return len(window) - match.start() if match else 0


def _split_affixes(chunk: str, special: dict) -> tuple[list[str], str, list[str]]:
    """spaCy's Tokenizer._split_affixes: peel prefixes and suffixes off until nothing changes.

    Works on indices into the chunk rather than on shrinking copies, so that a long chunk costs
    time linear in the number of affixes, not quadratic.
    """

    def is_special(a: int, b: int) -> bool:
        return 0 < b - a <= _LONGEST_SPECIAL and chunk[a:b] in special

    prefixes: list[str] = []
    suffixes: list[str] = []
    start, end = 0, len(chunk)
    last = -1
    while start < end and end - start != last:
        if is_special(start, end):
            break
        last = end - start
        match = _PREFIX.match(chunk, start, end)
        pre_len = match.end() - start if match else 0
        if pre_len and is_special(start + pre_len, end):
            prefixes.append(chunk[start : start + pre_len])
            start += pre_len
            break
        suf_len = _suffix_length(chunk, start + pre_len, end)
        if suf_len and is_special(start, end - suf_len):
            suffixes.append(chunk[end - suf_len : end])
            end -= suf_len
            break
        if pre_len and suf_len and pre_len + suf_len <= end - start:
            prefixes.append(chunk[start : start + pre_len])
            suffixes.append(chunk[end - suf_len : end])
            start += pre_len
            end -= suf_len
        elif pre_len:
            prefixes.append(chunk[start : start + pre_len])
            start += pre_len
        elif suf_len:
            suffixes.append(chunk[end - suf_len : end])
            end -= suf_len
    return prefixes, chunk[start:end], suffixes


def _split_chunk(chunk: str, special: dict) -> list[str]:
    """spaCy's Tokenizer._tokenize for one chunk: special case, affixes, URL, infixes."""
    if len(chunk) <= _LONGEST_SPECIAL and chunk in special:
        return list(special[chunk])
    prefixes, core, suffixes = _split_affixes(chunk, special)
    tokens = prefixes
    if core:
        if len(core) <= _LONGEST_SPECIAL and core in special:
            tokens.extend(special[core])
        elif _URL.match(core):
            tokens.append(core)
        else:
            start = 0
            for match in _INFIX.finditer(core):
                # spaCy skips an infix at the very start of the chunk.
                if match.start() == 0:
                    continue
                if match.start() != start:
                    tokens.append(core[start : match.start()])
                if match.end() != match.start():
                    tokens.append(match.group())
                start = match.end()
            if core[start:]:
                tokens.append(core[start:])
    tokens.extend(reversed(suffixes))
    return tokens


# Special cases that the affix rules would cut up (":)" -> ":" ")"): spaCy re-merges their pieces
# wherever they appear inside a chunk ("you:)" -> "you" ":)"), keyed here by those pieces.
_MERGES = {
    pieces: _SPECIAL[text]
    for text in _SPECIAL
    if len(pieces := tuple(_split_chunk(text, {}))) > 1
}
_LONGEST_MERGE = max(map(len, _MERGES))


def _merge_specials(tokens: list[str]) -> list[str]:
    merged: list[str] = []
    i = 0
    while i < len(tokens):
        for size in range(min(_LONGEST_MERGE, len(tokens) - i), 1, -1):
            replacement = _MERGES.get(tuple(tokens[i : i + size]))
            if replacement is not None:
                merged.extend(replacement)
                i += size
                break
        else:
            merged.append(tokens[i])
            i += 1
    return merged


def tokenize_chunk(chunk: str) -> tuple[str, ...]:
    """The words spaCy's English tokenizer makes of one whitespace-free chunk."""
    tokens = _split_chunk(chunk, _SPECIAL)
    return tuple(_merge_specials(tokens) if len(tokens) > 1 else tokens)


# Tokenisations of the chunks seen so far in this process, as in spaCy's own cache. Web text
# reuses a small vocabulary ("the", "it.", "(see"), so nearly every chunk is a hit. Two
# generations bound the memory: when the young one is full it becomes the old one, and a chunk
# found only in the old one moves back to the young, so frequent chunks survive the turnover.
_CACHE_GENERATION_SIZE = 200_000
_young: dict[str, tuple[str, ...]] = {}
_old: dict[str, tuple[str, ...]] = {}


def _cached_tokenize_chunk(chunk: str) -> tuple[str, ...]:
    global _young, _old
    tokens = _old.get(chunk)
    if tokens is None:
        # Letters only or digits only: no affix, infix or URL rule applies, so one word.
        if (chunk.isalpha() or chunk.isdecimal()) and chunk not in _SPECIAL:
            tokens = (chunk,)
        else:
            tokens = tokenize_chunk(chunk)
    if len(_young) >= _CACHE_GENERATION_SIZE:
        _old, _young = _young, {}
    _young[chunk] = tokens
    return tokens


def tokenize_chunks(chunks: list[str]) -> list[str]:
    """Words of a sequence of whitespace-free chunks, in order."""
    young = _young
    words: list[str] = []
    for chunk in chunks:
        tokens = young.get(chunk)
        if tokens is None:
            tokens = _cached_tokenize_chunk(chunk)
        words += tokens
    return words


def tokenize(text: str) -> list[str]:
    """Words of a text as datatrove's English `split_into_words` gives them."""
    return tokenize_chunks(text.split())


_IS_PUNCT: dict[str, bool] = {}


def _is_punct(token: str) -> bool:
    """spaCy's Token.is_punct: every character is Unicode punctuation (category P*)."""
    result = _IS_PUNCT.get(token)
    if result is None:
        if len(_IS_PUNCT) >= _CACHE_GENERATION_SIZE:
            _IS_PUNCT.clear()
        result = _IS_PUNCT[token] = all(unicodedata.category(c).startswith("P") for c in token)
    return result


def count_sentences(words: list[str]) -> int:
    """Sentences spaCy's rule-based Sentencizer finds in a line of words (1 for an empty line).

    A sentence ends after a word that is one of SENTENCE_END_CHARS; the next sentence starts at
    the first following word that is not punctuation. This is what datatrove's
    `split_into_sentences` counts for each line in C4's min_num_sentences rule.
    """
    sentences = 1
    seen_end = False
    for word in words:
        if word in SENTENCE_END_CHARS:
            seen_end = True
        elif seen_end and not _is_punct(word):
            sentences += 1
            seen_end = False
    return sentences


@dataclass(slots=True)
class DocumentWords:
    """A document split once for all quality rules.

    `lines` is `text.splitlines()`; `line_chunks[i]` is `lines[i].split()` (C4 counts these as a
    line's words); `line_words[i]` the spaCy-style words of line i; `words` all words in order.
    Splitting lines first loses nothing: every line break is whitespace, so the words of the
    document are the words of its lines.
    """

    text: str
    lines: list[str]
    line_chunks: list[list[str]]
    line_words: list[list[str]]
    words: list[str]


def split_document(text: str) -> DocumentWords:
    """Split a document into lines, whitespace chunks and words, once for every rule."""
    lines = text.splitlines()
    line_chunks = [line.split() for line in lines]
    line_words = [tokenize_chunks(chunks) for chunks in line_chunks]
    words = [word for line in line_words for word in line]
    return DocumentWords(text, lines, line_chunks, line_words, words)
