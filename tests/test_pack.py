"""The evidence pack: numbers trace to the history, the roll-forward balances, files verify."""

from __future__ import annotations

import json
import subprocess
import tomllib
from datetime import datetime, timedelta
from importlib import resources

import pytest

import exports
import tenant as t
from pimtrail.activations import join_activations
from pimtrail.collectors.exportdir import read_export
from pimtrail.config import parse_config
from pimtrail.controls.profiles import load_profile
from pimtrail.controls.registry import all_controls
from pimtrail.evidence.pack import write_pack
from pimtrail.evidence.pack_model import build_pack
from pimtrail.evidence.period import parse_period
from pimtrail.store import HistoryStore
from pimtrail.timeutil import parse_iso

Q3 = parse_period("2026-Q3")


def sample_config():
    text = (resources.files("pimtrail.sample_data") / "pimtrail.toml").read_text()
    return parse_config(tomllib.loads(text), "sample_data/pimtrail.toml")


@pytest.fixture(scope="module")
def sample_pack(sample_history, tmp_path_factory):
    config = sample_config()
    out = tmp_path_factory.mktemp("pack")
    with HistoryStore.open(sample_history) as store:
        result = write_pack(store, store.tenant(None), Q3, load_profile(None, config), config, out,
                            formats=("pdf", "json"))
    return result


def test_numbers_equal_queries_on_the_history(sample_pack, sample_history):
    model = sample_pack.model
    with HistoryStore.open(sample_history) as store:
        tenant = store.tenant(None)
        closing = store.snapshots(tenant)[-1]
        active = store.facts(tenant, "role_assignment", closing.seq)
        eligible = store.facts(tenant, "role_eligibility", closing.seq)
        audit = store.events(tenant, "audit", Q3.start - timedelta(days=1), Q3.end)
        decisions = store.facts(tenant, "access_review_decision", closing.seq)
    direct = [r for r in model["population"] if r["via"] == "direct"]
    assert len(direct) == sum(1 for f in active + eligible
                              if f["principal_type"] != "group" and model_tier(model, f["role_id"]) is not None)
    in_period = [a for a in join_activations(audit)
                 if Q3.start <= parse_iso(a.requested_at or a.start) < Q3.end]
    assert len(model["activations"]) == len(in_period) > 20
    instance_ids = {i["id"] for i in model["reviews"]["instances"]}
    assert len(model["reviews"]["decisions"]) == sum(1 for d in decisions if d["instance_id"] in instance_ids) > 10
    assert model["cover"]["snapshots"][-1]["chain_hash"] == closing.chain_hash


def model_tier(model, role_id):
    return next((r["tier"] for r in model["scope"]["roles"] if r["role_id"] == role_id), None)


def test_rollforward_balances_for_every_role(sample_pack):
    model = sample_pack.model
    roles = model["rollforward"]["roles"]
    assert roles and all(r["balanced"] for r in roles)
    closing = {}
    for row in model["population"]:
        closing[row["role_id"]] = closing.get(row["role_id"], 0) + 1
    assert {r["role_id"]: r["closing"] for r in roles if r["closing"]} == closing
    sharepoint = next(r for r in roles if r["role"] == "SharePoint Administrator")
    assert sharepoint["removed"] >= 2  # the interns lose it in July


def test_unexplained_change_is_listed(tmp_path):
    """Bob gains Exchange Administrator between two snapshots with no audit entry behind it."""
    config = parse_config(t.compliant()["_config"])
    db = str(tmp_path / "h.db")
    with HistoryStore.open(db, create=True) as store:
        first = t.compliant("2026-08-01T06:00:00Z")
        second = t.compliant("2026-08-08T06:00:00Z")
        second["directory_audits"]["value"] = first["directory_audits"]["value"]
        second["role_assignment_instances"]["value"].append(
            t.instance("ra-bob", t.BOB, t.EXCHANGE_ADMIN, parse_iso("2026-08-08T06:00:00Z"), end_days=30))
        for n, data in enumerate((first, second)):
            store.ingest(read_export(exports.write(tmp_path / str(n), data)))
        model = build_pack(store, t.TENANT, parse_period(None, "2026-08-01", "2026-08-10"),
                           load_profile(None, config), config)
    moves = model["rollforward"]["movements"]
    [bob] = [m for m in moves if m["principal_id"] == t.BOB and m["change"] == "added"]
    assert not bob["explained"] and bob["state"] == "active"
    assert all(r["balanced"] for r in model["rollforward"]["roles"])


def test_pdf_holds_every_control_and_stays_short(sample_pack):
    pdf = next(p for p in sample_pack.directory.iterdir() if p.suffix == ".pdf")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for control in all_controls():
        assert control.id in text, control.id
    assert "Northwind Aeronautics" in text and "5f1c2d9e-8a0b-4c57-9d3e-7b6a1f0e2c44" in text
    assert "Page 1 of" in text or "Page 2 of" in text
    assert 10 <= sample_pack.pdf_pages < 60


def test_pdf_tables_stay_inside_the_text_block(sample_pack):
    """No word of any page reaches past the right edge of the page's footer (the text block): a table whose column
    widths add up to more than the page is cut off at the paper's edge. The population table's types and routes are
    written with spaces, so they wrap between words, not inside one ("service_pr" / "incipal")."""
    import re

    pdf = next(p for p in sample_pack.directory.iterdir() if p.suffix == ".pdf")
    html = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pages = html.split("<page ")[1:]
    assert len(pages) == sample_pack.pdf_pages
    for number, page in enumerate(pages, 1):
        words = [(float(x1), float(y0), text) for x1, y0, text in
                 re.findall(r'<word xMin="[\d.]+" yMin="([\d.]+)" xMax="([\d.]+)"[^>]*>([^<]*)</word>', page)]
        words = [(x1, y0, text) for y0, x1, text in words]
        bottom = max(y0 for _, y0, _ in words)
        edge = max(x1 for x1, y0, _ in words if y0 >= bottom - 2)  # the footer's "Page N of M"
        past = [text for x1, _, text in words if x1 > edge + 0.5]
        assert not past, f"page {number}: {past[:5]} past the text block's edge ({edge:.1f})"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    population = next(page for page in text.split("\f") if "holdings of privileged roles" in page)
    assert "pim group" in population and re.search(r"\bservice\b", population)
    assert "service_" not in population and "pim_" not in population


def test_sha256sums_verify_and_detect_a_changed_byte(sample_pack, tmp_path):
    directory = sample_pack.directory
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=directory, capture_output=True).returncode == 0
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(directory), str(copy)], check=True)
    pdf = next(p for p in copy.iterdir() if p.suffix == ".pdf")
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    pdf.write_bytes(bytes(data))
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=copy, capture_output=True).returncode != 0
    manifest = json.loads((directory / "manifest.json").read_text())
    assert {f["name"] for f in manifest["files"]} == {p.name for p in directory.iterdir()} - {"manifest.json", "SHA256SUMS"}


def test_same_history_and_period_give_the_same_content(sample_history):
    config = sample_config()
    with HistoryStore.open(sample_history) as store:
        tenant = store.tenant(None)
        models = [build_pack(store, tenant, Q3, load_profile(None, config), config) for _ in range(2)]
    from pimtrail.evidence.pack import export_json

    def stable(model):
        doc = json.loads(export_json(model))
        doc["cover"].pop("generated_at"), doc["cover"].pop("run_id")
        return doc

    assert stable(models[0]) == stable(models[1])


def test_markup_in_tenant_text_is_inert(tmp_path):
    from pimtrail.evidence.pdf import render_html

    data = t.compliant()
    next(u for u in data["users"]["value"] if u["id"] == t.BOB)["userPrincipalName"] = "<script>alert(1)</script>@x"
    data["role_eligibility_instances"]["value"][1]["principal"]["userPrincipalName"] = "<script>alert(1)</script>@x"
    config = parse_config(data["_config"])
    with HistoryStore.open(str(tmp_path / "h.db"), create=True) as store:
        store.ingest(read_export(exports.write(tmp_path / "e", data)))
        model = build_pack(store, t.TENANT, parse_period(None, "2026-09-01", "2026-09-30"),
                           load_profile(None, config), config)
    html = render_html(model)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;@x" in html


def test_period_parsing():
    assert (Q3.start, Q3.end) == (datetime(2026, 7, 1), datetime(2026, 10, 1))
    q4 = parse_period("2026-Q4")
    assert q4.end == datetime(2027, 1, 1) and q4.last_day.isoformat() == "2026-12-31"
    assert parse_period(None, "2026-08-01", "2026-08-31").end == datetime(2026, 9, 1)


def test_pack_cli_bad_period(cli, sample_history, tmp_path):
    result = cli("pack", "--db", sample_history, "--period", "Q3-2026", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "--period" in result.output and "2026-Q3" in result.output
    assert not (tmp_path / "x").exists()


def _sign_ins_of_every_version(store, tenant, ids, start, end):
    """The break-glass sign-ins a period's pack lists, from every version of every account (the read before)."""
    return sorted((pid, v["data"]["last_sign_in"]) for pid in ids
                  for v in store.fact_versions(tenant, "sign_in_activity", pid)
                  if v["data"].get("last_sign_in") and start <= parse_iso(v["data"]["last_sign_in"]) < end)


def test_break_glass_sign_ins_come_from_the_versions_reported_since_the_period_began(sample_history, tmp_path,
                                                                                     monkeypatch):
    """The pack reads the break-glass accounts' sign-in versions from the snapshots collected since the period
    began: the same sign-ins as every version of each account gives, for periods before, around and after
    the sample's break-glass sign-ins (2026-07-15), with archive batches closed before the period left unread."""
    from pimtrail.evidence import pack_model
    from pimtrail.store import archive
    from pimtrail.synthetic import generate

    with HistoryStore.open(sample_history) as store:
        tenant = store.tenant(None)
        seq = store.snapshots(tenant)[-1].seq
        ids = sorted(p["id"] for p in store.facts(tenant, "principal", seq) if "breakglass" in (p.get("upn") or ""))
        assert len(ids) == 2
        found = 0
        for start, days in [("2026-07-01", 92), ("2026-07-10", 10), ("2026-07-15", 1), ("2026-07-16", 30),
                            ("2026-06-01", 30), ("2026-08-01", 61)]:
            begin = parse_iso(start + "T00:00:00Z")
            end = begin + timedelta(days=days)
            ours = sorted((v["data"]["user_id"], v["data"]["last_sign_in"])
                          for v in pack_model._reported_sign_ins(store, tenant, ids, begin)
                          if v["data"].get("last_sign_in") and begin <= parse_iso(v["data"]["last_sign_in"]) < end)
            assert ours == _sign_ins_of_every_version(store, tenant, ids, begin, end), start
            found += len(ours)
        assert found >= 6  # the two sign-ins of 2026-07-15 in three of the periods

    # a history whose sign-in versions close every day: only the batches closed since the period began are read
    roots = generate(tmp_path / "exports", "small", days=5, churn=0.05, seed=3, signin_share=0.8,
                     incremental_audit=True)
    db = str(tmp_path / "h.db")
    with HistoryStore.open(db, create=True) as store:
        for root in roots:
            store.ingest(read_export(root))
        tenant = store.tenant(None)
        snaps = store.snapshots(tenant)
        ids = sorted(f["user_id"] for f in store.facts(tenant, "sign_in_activity", snaps[-1].seq))[:40]
        opened = []
        plain = archive.records
        monkeypatch.setattr(archive, "records", lambda kind, *a: opened.append(kind) or plain(kind, *a))
        since = snaps[3].collected_at
        ours = pack_model._reported_sign_ins(store, tenant, ids, since)
        # per account, the batch closed by snapshot 5: not those closed by 2, 3 and 4 (begun before snapshot 4)
        assert opened.count("sign_in_activity") == len(ids)
        every = _sign_ins_of_every_version(store, tenant, ids, since, snaps[-1].collected_at + timedelta(days=1))
        assert opened.count("sign_in_activity") == 5 * len(ids)  # every version: all four batches an account
        assert sorted((v["data"]["user_id"], v["data"]["last_sign_in"]) for v in ours
                      if v["data"].get("last_sign_in") and parse_iso(v["data"]["last_sign_in"]) >= since) == every
        assert every  # users of the share signed in since


def test_enum_values_read_as_words_in_the_pdf():
    from pimtrail.evidence.render import words

    assert words("AppliedSuccessfully") == "Applied successfully"
    assert words("AppliedSuccessfullyButObjectNotFound") == "Applied successfully but object not found"
    assert [words("pim_group"), words("service_principal"), words("user")] == ["pim group", "service principal", "user"]
    assert words(None) == "" and words("") == ""
