"""The synthetic tenant generator (pimtrail.synthetic) and the benchmark harness (bench/run.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import sample_graph_models as models
from pimtrail.collectors.exportdir import read_export
from pimtrail.synthetic import PRESETS, Generator, generate
from pimtrail.synthetic.__main__ import main as synthetic_main
from test_export_format import check_export

ROOT = Path(__file__).resolve().parents[1]
CHURN = 0.05  # the small tenant is small: a larger daily churn makes the share measurable


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> list[Path]:
    """Three days of the small preset at 5 % daily churn."""
    return generate(tmp_path_factory.mktemp("synthetic"), "small", days=3, churn=CHURN, seed=7)


def files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


def test_same_seed_same_bytes(small, tmp_path):
    again = generate(tmp_path, "small", days=3, churn=CHURN, seed=7)
    assert [r.name for r in again] == [r.name for r in small]
    for ours, theirs in zip(small, again):
        assert files(ours) == files(theirs), ours.name
    assert (tmp_path / "pimtrail.toml").read_bytes() == (small[0].parent / "pimtrail.toml").read_bytes()
    other = generate(tmp_path / "other", "small", days=1, seed=8)
    assert files(other[0])["users.json"] != files(small[0])["users.json"]


def test_exports_are_read_without_error_and_complete(small):
    for root in small:
        snap = read_export(root)
        assert snap.status == "complete", [c.dataset for c in snap.gaps]
        kinds = {f.kind for f in snap.facts}
        for kind in ("principal", "role_assignment", "role_eligibility", "group_member", "group_pim_eligibility",
                     "role_policy", "group_policy", "access_review_decision", "fido2_key", "auth_registration"):
            assert kind in kinds, kind
        assert len([e for e in snap.events if e.kind == "audit"]) == \
            PRESETS["small"].audit_per_day * PRESETS["small"].audit_days


def test_exports_follow_the_schema_and_name_every_required_dataset(small):
    from pimtrail.collectors.datasets import REQUIRED

    for root in small:
        manifest = json.loads((root / "manifest.json").read_text())
        assert set(REQUIRED) <= set(manifest["datasets"])
        assert check_export(root) == len(manifest["datasets"])


def test_counts_follow_the_preset(small):
    preset = PRESETS["small"]
    snap = read_export(small[0])
    users = [f for f in snap.facts if f.kind == "principal" and f.data["type"] == "user"]
    eligible = [f for f in snap.facts if f.kind == "role_eligibility"]
    direct = {f.data["principal_id"] for f in snap.facts if f.kind in ("role_eligibility", "role_assignment")}
    assert len(users) == preset.users
    assert len(eligible) == preset.eligible
    assert len(direct) == preset.privileged
    assert len([f for f in snap.facts if f.kind == "role_assignment"]) >= preset.active
    assert {f.data["type"] for f in snap.facts if f.kind == "principal"} >= {"user", "group", "service_principal"}
    roles = {f.data["template_id"] for f in snap.facts if f.kind == "role_definition"}
    assert "62e90394-69f5-4237-9190-012177145e10" in roles  # built-in template ids, as Entra has them


def changed_share(before, after, kind: str) -> float:
    old = {f.key: json.dumps(f.data, sort_keys=True) for f in before.facts if f.kind == kind}
    new = {f.key: json.dumps(f.data, sort_keys=True) for f in after.facts if f.kind == kind}
    changed = len(set(old) ^ set(new)) / 2 + sum(1 for k in set(old) & set(new) if old[k] != new[k])
    return changed / len(old)


def test_daily_churn_changes_about_the_requested_share(small):
    day1, day2 = read_export(small[1]), read_export(small[2])
    for kind in ("role_eligibility", "group_member"):
        assert 0.5 * CHURN <= changed_share(day1, day2, kind) <= 1.5 * CHURN, kind
    users = changed_share(day1, day2, "principal")
    assert 0.5 * CHURN <= users <= 1.5 * CHURN
    new_events = {e.source_id for e in day2.events} - {e.source_id for e in day1.events}
    assert len(new_events) == PRESETS["small"].audit_per_day  # one more day of audit log


def test_activations_join_with_their_approvals(small):
    from pimtrail.activations import join_activations
    from pimtrail.collectors.exportdir import read_export

    snap = read_export(small[-1])
    acts = join_activations([e.data for e in snap.events])
    assert len(acts) > 100
    assert {a.approval for a in acts} >= {"approved", "denied", "not required"}
    assert all(a.principal_id and a.role_id for a in acts)
    active = [f for f in snap.facts if f.kind == "role_assignment" and f.data["assignment_type"] == "Activated"]
    assert active, "activations in effect at collection time are active instances"


def items(root: Path, name: str, limit: int = 25):
    content = json.loads((root / f"{name}.json").read_text())
    if isinstance(content, dict) and "pages" in content:
        bodies = [p["body"] for p in content["pages"]]
    else:
        bodies = content if isinstance(content, list) else [content]
    found = [item for body in bodies for item in body["value"]]
    return found[:limit] + found[-limit:]


@pytest.mark.parametrize("name", sorted(models.V1_MODELS))
def test_items_parse_with_msgraph_models(small, name):
    if not (small[-1] / f"{name}.json").exists():
        pytest.skip(f"{name} is not generated")
    cls = models.model_class(name)
    found = [p for n, item in enumerate(items(small[-1], name)) for p in models.problems(cls, item, f"{name}[{n}]")]
    assert not found, "\n".join(found[:20])


@pytest.mark.parametrize("name", sorted(models.BETA_ALLOWED))
def test_beta_items_use_documented_properties(small, name):
    allowed = models.BETA_ALLOWED[name]
    for item in items(small[-1], name):
        assert set(item) <= set(allowed), set(item) - set(allowed)


def test_light_views_equal_full_views(small, tmp_path):
    """The roll-forward and trend points use light views (controls/view.HoldingsHistory): the same holdings."""
    from pimtrail.config import load_config
    from pimtrail.controls.profiles import load_profile
    from pimtrail.controls.view import HoldingsHistory, build_view
    from pimtrail.evidence.series import holding_key, point
    from pimtrail.store import HistoryStore

    config = load_config(small[0].parent / "pimtrail.toml")
    profile = load_profile(None, config)
    with HistoryStore.open(str(tmp_path / "h.db"), create=True) as store:
        for root in small:
            store.ingest(read_export(root))
        tenant = store.tenant(None)
        snaps = store.snapshots(tenant)
        history = HoldingsHistory(store, tenant, snaps, profile, config)
        for snap in snaps:
            light, full = history.view(snap), build_view(store, tenant, snap, profile, config)
            assert sorted(map(holding_key, light.holdings())) == sorted(map(holding_key, full.holdings()))
            assert point(light) == point(full)
            assert light.break_glass_ids() == full.break_glass_ids() != set()


def test_command_line(tmp_path, capsys):
    assert synthetic_main(["--preset", "small", "--days", "2", "--every", "7", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-07-01", "2026-07-08", "pimtrail.toml"]
    assert "wrote 2 export(s)" in capsys.readouterr().out
    assert synthetic_main(["--preset", "small", "--layout", "graph", "--out", str(tmp_path / "graph")]) == 0
    lines, graph = files(tmp_path / "2026-07-01"), files(tmp_path / "graph" / "2026-07-01")
    assert lines.keys() == graph.keys() and lines["users.json"] != graph["users.json"]
    for name in lines:  # the same objects, laid out otherwise (manifest: the same bytes)
        assert json.loads(lines[name]) == json.loads(graph[name]), name


def test_scaled_preset_keeps_the_shape():
    large = PRESETS["large"]
    tenth = large.scaled(0.1)
    assert (tenth.users, tenth.eligible, tenth.active, tenth.groups) == (10_000, 2_000, 200, 50)
    assert tenth.privileged_users > 0 and tenth.audit_days == large.audit_days
    gen = Generator(PRESETS["small"].scaled(0.2), seed=3)
    assert len(gen.tenant.user_ids) == 100


@pytest.mark.slow
def test_bench_smoke_run(tmp_path):
    """The benchmark harness end to end on the small preset: one table, and results.json."""
    results = tmp_path / "results.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--preset", "small", "--repeat", "1",
                           "--history-days", "2", "--signin-share", "0.5", "--results", str(results),
                           "--workdir", str(tmp_path / "work")],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "measure" in done.stdout and "target" in done.stdout and "met?" in done.stdout
    data = json.loads(results.read_text())
    measures = {r["measure"] for r in data["rows"]}
    for expected in ("`pimtrail --help`", "live collection: requests made", "evidence pack PDF pages",
                     "bulk path / executemany ratio", "  daily ingest of an export holding the whole audit window instead"):
        assert expected in measures
    assert all(r["value"] is not None for r in data["rows"])
    assert data["signin_share"] == 0.5 and any("50 % signing in" in m for m in measures)
    assert any(r["extrapolated"] for r in data["rows"])


def sweep_matches_points(store, config) -> int:
    from pimtrail.controls.profiles import load_profile
    from pimtrail.controls.view import HoldingsHistory
    from pimtrail.evidence.series import point
    from pimtrail.evidence.standing import standing_points

    tenant = store.tenant(None)
    snaps = store.snapshots(tenant)
    history = HoldingsHistory(store, tenant, snaps, load_profile(None, config), config)
    swept = standing_points(history, snaps)
    assert swept == [point(history.view(s)) for s in snaps]
    assert standing_points(history, snaps[1:]) == swept[1:]  # starting anywhere
    return len(snaps)


def test_trend_sweep_equals_a_view_per_snapshot(small, tmp_path):
    from pimtrail.config import load_config
    from pimtrail.store import HistoryStore

    with HistoryStore.open(str(tmp_path / "h.db"), create=True) as store:
        for root in small:
            store.ingest(read_export(root))
        assert sweep_matches_points(store, load_config(small[0].parent / "pimtrail.toml")) == 3


def test_trend_sweep_equals_a_view_per_snapshot_on_the_sample(sample_history):
    from pimtrail.sample_data import SCENARIO_PATH
    from pimtrail.config import load_config
    from pimtrail.store import HistoryStore

    with HistoryStore.open(sample_history) as store:
        assert sweep_matches_points(store, load_config(SCENARIO_PATH.parent / "pimtrail.toml")) == 14


def test_incremental_audit_holds_what_arrived_since_the_previous_collection(tmp_path):
    """`--incremental-audit`: the second export holds exactly the full window's events from the
    previous collection less the overlap on, and says so in its manifest window."""
    from pimtrail.synthetic import AUDIT_OVERLAP

    full = generate(tmp_path / "full", "small", days=2, churn=0.05)
    part = generate(tmp_path / "part", "small", days=2, churn=0.05, incremental_audit=True)
    first, second_full, second = read_export(full[0]), read_export(full[1]), read_export(part[1])
    since = first.collected_at - AUDIT_OVERLAP
    expected = {e.source_id for e in second_full.events if e.occurred_at >= since}
    assert {e.source_id for e in second.events} == expected
    assert 0 < len(expected) < len(second_full.events)
    window = json.loads((part[1] / "manifest.json").read_text())["datasets"]["directory_audits"]["window"]
    assert window["from"] == since.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert read_export(part[0]).events == first.events  # the first export holds the whole window


def test_signin_share_moves_the_sign_ins_of_that_share_of_enabled_users(small, tmp_path):
    """`signin_share`: a real tenant's sign-in times move daily for most users. Only the sign-in activity
    file (the privileged users' and the break-glass accounts') differs from the same tenant without it; about
    that share of the enabled users it holds have new sign-in times each day (the same users), the
    break-glass accounts none; the same seed gives the same bytes."""
    moving = generate(tmp_path / "a", "small", days=3, churn=CHURN, seed=7, signin_share=0.8)
    again = generate(tmp_path / "b", "small", days=3, churn=CHURN, seed=7, signin_share=0.8)
    for ours, theirs, plain in zip(moving, again, small):
        assert files(ours) == files(theirs), ours.name
        differ = {name for name, text in files(ours).items() if files(plain)[name] != text}
        assert differ == (set() if ours == moving[0] else {"sign_in_activity.json"}), ours.name
    gen = Generator("small", seed=7)
    break_glass = {gen.tenant.user_id(i) for i in gen.tenant.break_glass}
    snaps = [read_export(root) for root in moving]
    sign_ins = [{f.key: f.data for f in s.facts if f.kind == "sign_in_activity"} for s in snaps]
    enabled = {f.key for f in snaps[2].facts if f.kind == "principal" and f.data["type"] == "user" and f.data["enabled"]}
    assert break_glass <= set(sign_ins[0]) and len(sign_ins[0]) < len(enabled) / 2  # asked for the privileged only
    enabled &= set(sign_ins[2])
    movers = []
    for before, after, snap in zip(sign_ins, sign_ins[1:], snaps[1:]):
        moved = {k for k in enabled & set(before) & set(after) if before[k] != after[k]}
        assert 0.65 <= len(moved) / len(enabled) <= 0.95, len(moved) / len(enabled)
        assert not moved & break_glass
        day = snap.collected_at.strftime("%Y-%m-%d")
        yesterday = (snap.collected_at - timedelta(days=1)).strftime("%Y-%m-%d")
        for k in moved:  # signed in since the previous collection
            assert after[k]["last_non_interactive_sign_in"][:10] in (yesterday, day)
        latest = [k for k in moved  # the last success is the latest of both (but for those the churn signed in)
                  if after[k]["last_successful_sign_in"] == max(after[k]["last_sign_in"],
                                                                after[k]["last_non_interactive_sign_in"])]
        assert len(latest) >= 0.9 * len(moved)
        movers.append(moved)
    assert len(movers[0] & movers[1]) >= 0.9 * min(map(len, movers))  # the same users, day after day
    with pytest.raises(SystemExit):
        synthetic_main(["--preset", "small", "--signin-share", "1.5", "--out", str(tmp_path / "c")])
