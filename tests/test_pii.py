"""PII redaction: e-mail and public IP addresses in real text are replaced and counted per document
(q_pii_emails, q_pii_ips), private addresses and look-alikes stay, the url column is never touched."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from pipeline.config import BuildConfig, PiiConfig
from pipeline.pii import PiiRedactor
from pipeline.process import DocumentPipeline
from pipeline.readers import expand_inputs
from tests.small_dataset import wikitext_paragraphs

DEFAULT = PiiRedactor(PiiConfig())


@pytest.mark.shared
def test_real_email_addresses_in_sms_messages_are_replaced(shared_data):
    lines = (shared_data / "quality" / "sms_spam_collection" / "SMSSpamCollection").read_text(errors="replace").splitlines()
    messages = [line.split("\t", 1)[1] for line in lines if "@" in line]
    redacted = [DEFAULT.redact(m) for m in messages]
    text = "\n".join(r[0] for r in redacted)
    for address in ("yijue@hotmail.com", "info@ringtoneking.co.uk", "tddnewsletter@emc1.co.uk",
                    "info@txt82228.co.uk", "Dorothy@kiefer.com", "customersqueries@netvision.uk.com"):
        assert address not in text
    # not addresses: a price after "@", a rate
    assert "msg@£1.50rcvd" in text and "charged@150p/msg" in text
    assert sum(r[1] for r in redacted) == text.count("email@example.com") + text.count("firstname.lastname@example.org")
    assert sum(r[1] for r in redacted) >= 7
    assert all(r[2] == 0 for r in redacted)


@pytest.mark.shared
def test_public_ips_in_real_crawl_metadata_are_replaced_private_ones_kept(shared_data):
    with gzip.open(shared_data / "warc" / "cc-main-2024-22_whirlwind.warc.wat.gz", "rt", errors="replace") as f:
        wat = f.read()
    ips = set(re.findall(r'"WARC-IP-Address":"([0-9.]+)"', wat))
    assert "208.80.154.224" in ips
    text = wat[:200_000] + "\nThe router answers on 192.168.1.1 and 10.0.0.1; localhost is 127.0.0.1."
    redacted, emails, n_ips = DEFAULT.redact(text)
    assert n_ips == len(re.findall(r"208\.80\.154\.224", wat[:200_000])) >= 1
    assert "208.80.154.224" not in redacted and "22.214.171.124" in redacted
    assert "192.168.1.1 and 10.0.0.1; localhost is 127.0.0.1" in redacted
    everything = PiiRedactor(PiiConfig(only_public_ips=False)).redact(text)
    assert "192.168.1.1" not in everything[0] and everything[2] >= n_ips + 3


@pytest.mark.parametrize("text, expected, ips", [
    ("Wikimedia's 2620:0:862:ed1a::1 answered", "Wikimedia's 2001:db8::1 answered", 1),
    ("loopback ::1 and link-local fe80::1 stay", "loopback ::1 and link-local fe80::1 stay", 0),
    ("at 12:30:45 on 2024-05-01", "at 12:30:45 on 2024-05-01", 0),
    ("version 10.1.2.3.4 and 1234.5.6.7 are not addresses", "version 10.1.2.3.4 and 1234.5.6.7 are not addresses", 0),
    ("logo@2x.png is a file name", "logo@2x.png is a file name", 0),
])
def test_what_is_and_is_not_an_address(text, expected, ips):
    assert DEFAULT.redact(text) == (expected, 0, ips)


def test_replacements_are_configurable_and_used_in_turn():
    redactor = PiiRedactor(PiiConfig(email_replacement=["<EMAIL>"], ip_replacement=["<IP1>", "<IP2>"]))
    text, emails, ips = redactor.redact("a@example.net b@example.net 8.8.8.8 1.1.1.1 8.8.4.4")
    assert (text, emails, ips) == ("<EMAIL> <EMAIL> <IP1> <IP2> <IP1>", 2, 3)
    assert PiiRedactor(PiiConfig(emails=False)).redact("a@example.net 8.8.8.8")[0] == "a@example.net 22.214.171.124"


@pytest.mark.shared
def test_the_pipeline_counts_redactions_per_document_and_leaves_the_url_alone(shared_data, tmp_path):
    paragraphs = wikitext_paragraphs(shared_data, 2)
    source = tmp_path / "pages.jsonl"
    rows = [
        {"url": "http://208.80.154.224/wiki/Contact", "text": paragraphs[0] + "\nWrite to press@wikimedia.org or reach 208.80.154.224."},
        {"url": "mailto:press@wikimedia.org", "text": paragraphs[1]},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = DocumentPipeline(BuildConfig()).process_unit(expand_inputs([str(source)])[0])
    first, second = sorted(out.docs, key=lambda d: d["source_offset"])
    assert first["url"] == "http://208.80.154.224/wiki/Contact" and second["url"] == "mailto:press@wikimedia.org"
    assert first["text"].endswith("Write to email@example.com or reach 22.214.171.124.")
    assert (first["q_pii_emails"], first["q_pii_ips"]) == (1.0, 1.0)
    assert (second["q_pii_emails"], second["q_pii_ips"]) == (0.0, 0.0)
    assert out.stages["pii"].records_in == 2 and out.stages["pii"].dropped == 0

    off = DocumentPipeline(BuildConfig(pii=PiiConfig(enabled=False))).process_unit(expand_inputs([str(source)])[0])
    kept = sorted(off.docs, key=lambda d: d["source_offset"])[0]
    assert "press@wikimedia.org" in kept["text"] and kept.get("q_pii_emails") is None
    assert off.docs_table().column("q_pii_emails").null_count == 2


@pytest.mark.shared
def test_stats_report_url_filter_rejects_per_rule_and_the_redactions(shared_data, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app
    from pipeline.config import UrlFilterConfig
    from tests.small_dataset import build_from_texts
    from warehouse import stats

    paragraphs = wikitext_paragraphs(shared_data, 6)
    docs = [(f"https://en.wikipedia.org/wiki/P{i}", p + "\nPlease send corrections to the editors at editor@wikipedia.org.") for i, p in enumerate(paragraphs[:3])]
    docs += [(f"https://casino.example/P{i}", p) for i, p in enumerate(paragraphs[3:])]
    cfg = BuildConfig(workers=1, url_filter=UrlFilterConfig(banned_words=["casino"]))
    ds, _ = build_from_texts(tmp_path, "s", docs, cfg)

    redacted = stats.redactions(ds)
    emails = redacted.filter(redacted["redacted"] == "e-mail addresses").row(0, named=True)
    assert (emails["replaced"], emails["documents"]) == (3, 3)
    funnel = stats.funnel(ds)
    assert funnel.filter(funnel["reason"] == "url_filter:banned_word")["records"].item() == 3

    result = CliRunner().invoke(app, ["stats", ds.base])
    assert result.exit_code == 0, result.output
    assert "url_filter:banned_word" in result.output and "PII redacted in kept documents" in result.output
    assert "e-mail addresses" in result.output


@pytest.mark.parametrize("text", ["::", "a::b at the start", "std::vector<int>", "2001:db8::1:", "::ffff"])
def test_colon_runs_that_are_not_public_addresses_stay(text):
    assert DEFAULT.redact(text) == (text, 0, 0)
