"""URL filter: UT1-format blocklists (domains with their subdomains, URL prefixes), banned words and
an allowlist that wins, on the real URLs of a wget crawl; rejected records never reach extraction."""

from __future__ import annotations


import pytest

from pipeline.config import BuildConfig, UrlFilterConfig
from pipeline.process import DocumentPipeline, document_stages
from pipeline.readers import expand_inputs
from pipeline.url_filter import UrlFilter, list_name
from warehouse.errors import MissingFileError

WGET = "warc/wget-2024_dolma-sample-0000_22resp.warc.gz"


@pytest.fixture
def lists(tmp_path) -> dict[str, list[str]]:
    """Lists in UT1's layout (<category>/domains, <category>/urls) and one plain file."""
    for category, name, lines in (("adult", "domains", ["# UT1-style list", "github.io", ""]),
                                  ("malware", "urls", ["soldaini.net/facts"])):
        (tmp_path / "ut1" / category).mkdir(parents=True)
        (tmp_path / "ut1" / category / name).write_text("\n".join(lines) + "\n")
    (tmp_path / "my-list.txt").write_text("www.kyleclo.com\n")
    (tmp_path / "allow.txt").write_text("dwadden.github.io\n")
    return {
        "blocklists": [str(tmp_path / "ut1" / "adult" / "domains"), str(tmp_path / "ut1" / "malware" / "urls"),
                       str(tmp_path / "my-list.txt")],
        "allowlists": [str(tmp_path / "allow.txt")],
        "banned_words": ["research"],
    }


@pytest.mark.shared
def test_blocklists_banned_words_and_the_allowlist_on_a_real_crawl(shared_data, lists):
    cfg = BuildConfig(url_filter=UrlFilterConfig(**lists))
    out = DocumentPipeline(cfg).process_unit(expand_inputs([str(shared_data / WGET)])[0])
    rejected = {r["url"]: (r["reason"], r["detail"]) for r in out.rejects if r["stage"] == "url_filter"}
    by_reason: dict[str, set[str]] = {}
    for url, (reason, _) in rejected.items():
        by_reason.setdefault(reason, set()).add(url)
    # every *.github.io page but the allowlisted one; a URL prefix; a plain list (www. ignored); a word
    assert by_reason["url_filter:adult"] == {
        "https://maria-antoniak.github.io/", "https://maria-antoniak.github.io/2023/07/04/notes-on-mastodon.html",
        "https://maria-antoniak.github.io/2023/04/11/paperpile-to-zotero.html",
        "https://maria-antoniak.github.io/2022/07/27/topic-modeling-for-the-people.html",
        "https://maria-antoniak.github.io/2020/03/25/pip.html",
        "https://maria-antoniak.github.io/2018/11/19/data-science-crash-course.html",
        "https://talaugust.github.io/", "https://tomhoper.github.io/", "https://tomhoper.github.io/research/"}
    assert by_reason["url_filter:malware"] == {"https://soldaini.net/facts/"}
    assert by_reason["url_filter:my-list"] == {"https://kyleclo.com/", "https://kyleclo.com/research/"}
    assert by_reason["url_filter:banned_word"] == {"https://www.semanticscholar.org/research/research-team"}
    assert rejected["https://soldaini.net/facts/"][1] == "soldaini.net/facts is on blocklist malware"
    assert "https://dwadden.github.io/" not in rejected and "https://soldaini.net/lineage/" not in rejected
    # The filter ran first: extraction was paid for only the 9 records it let through.
    assert (out.stages["url_filter"].records_in, out.stages["url_filter"].dropped) == (22, 13)
    assert out.stages["extract"].records_in == 9
    assert out.records == 22
    assert all(r["excerpt"] for r in out.rejects if r["stage"] == "url_filter")  # the page's start


def test_without_lists_or_words_the_stage_does_not_run():
    assert [stage.name for stage in document_stages(BuildConfig())][0] == "extract"
    assert [stage.name for stage in document_stages(BuildConfig(url_filter=UrlFilterConfig(banned_words=["x"])))][0] == "url_filter"


@pytest.mark.parametrize("url, verdict", [
    ("https://www.github.io/", "url_filter:adult"),
    ("http://a.b.github.io:8080/x", "url_filter:adult"),
    ("https://github.io.example.org/", None),  # a suffix match is on whole labels only
    ("https://notgithub.io/", None),
    ("https://soldaini.net/facts", "url_filter:malware"),
    ("https://soldaini.net/factsheet", None),  # URL prefixes end at a "/"
    ("https://SOLDAINI.NET/facts/x?y=1", "url_filter:malware"),
    ("https://example.org/my-research-notes", "url_filter:banned_word"),
    ("https://example.org/researcher", None),  # a banned word is a whole word
    ("http://[::1", None),  # not a URL: judged by its words only
    (None, None),
])
def test_url_rules(lists, url, verdict):
    result = UrlFilter(UrlFilterConfig(**lists))(url)
    assert (result and result[0]) == verdict


def test_list_names_and_a_missing_list(tmp_path):
    assert list_name("/lists/ut1/adult/domains") == "adult"
    assert list_name("s3://bucket/blacklists/malware/urls.gz") == "malware"
    assert list_name("/lists/phishing.txt.gz") == "phishing"
    with pytest.raises(MissingFileError, match="nope.txt"):
        UrlFilter(UrlFilterConfig(blocklists=[str(tmp_path / "nope.txt")]))
