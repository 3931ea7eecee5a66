"""GET /api/timeline and /api/lecture: the lecture's figures beside the exact values."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.core.across import across_figures
from app.core.calculator import builtin_table
from app.core.timeline import timeline
from app.specs import builtin_registry


def test_the_timeline_is_the_cores(client: TestClient) -> None:
    response = client.get("/api/timeline")
    assert response.status_code == 200
    assert response.json() == timeline().model_dump(mode="json")


def test_the_timeline_spans_the_lectures_years(client: TestClient) -> None:
    points = client.get("/api/timeline").json()["points"]
    assert (points[0]["year"], points[0]["verdict"]["stated"]) == (2010, "28.2 %")
    assert (points[-1]["year"], points[-1]["top5_error"]) == (2015, 3.57)


def _every_verdict() -> list[tuple[int, str, str, str]]:
    found = [
        (p.verdict.ref, p.verdict.stated, p.verdict.exact, p.verdict.verdict)
        for p in timeline().points
    ]
    found += [(v.ref, v.stated, v.exact, v.verdict) for v in timeline().depth_verdicts]
    found += [
        (f.verdict.ref, f.verdict.stated, f.verdict.exact, f.verdict.verdict)
        for f in timeline().figures
    ]
    found += [
        (f.verdict.ref, f.verdict.stated, f.verdict.exact, f.verdict.verdict)
        for f in across_figures()
    ]
    for spec in builtin_registry():
        table = builtin_table(spec.id or "")
        verdicts = [*table.lecture, *(v for row in table.layers for v in row.lecture)]
        found += [(v.ref, v.stated, v.exact, v.verdict) for v in verdicts]
    return found


def test_the_lecture_check_lists_every_figure_the_data_carries(client: TestClient) -> None:
    entries = client.get("/api/lecture").json()
    checked = [(e["ref"], e["stated"], e["exact"], e["verdict"]) for e in entries]
    assert sorted(e for e in checked if e[3] != "context") == sorted(_every_verdict())
    context = [e["ref"] for e in entries if e["verdict"] == "context"]
    assert context == [fact.ref for fact in timeline().context]
    assert [e["ref"] for e in entries] == sorted(e["ref"] for e in entries)


def test_layer_figures_come_with_their_computation(client: TestClient) -> None:
    entries = client.get("/api/lecture").json()
    conv1 = [e for e in entries if e["layer"] == "conv1" and e["net_id"] == "alexnet-lecture"]
    row = builtin_table("alexnet-lecture").layers[0]
    assert [e["computation"] for e in conv1] == [row.formula.output, row.formula.params]


def test_the_unstated_outputs_are_served_with_their_exact_volume(client: TestClient) -> None:
    skipped = client.get("/api/lecture/unstated").json()
    rows = {row.name: row for row in builtin_table("alexnet-lecture").layers}
    pool2 = next(s for s in skipped if (s["net_id"], s["layer"]) == ("alexnet-lecture", "pool2"))
    assert pool2["exact"] == "11 x 11 x 256"
    assert pool2["computation"] == rows["pool2"].formula.output
    lecture_layers = {s["layer"] for s in skipped if s["net_id"] == "alexnet-lecture"}
    assert lecture_layers == {"pool2", "conv3", "conv4", "conv5"}
    assert {s["net_id"] for s in skipped} == {"alexnet-lecture", "zfnet-lecture"}


def test_the_lecture_check_downloads_as_csv(client: TestClient) -> None:
    response = client.get("/api/lecture", params={"format": "csv"})
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert lines[0].startswith("ref,net_id,where,layer,says")
    assert len(lines) == 1 + len(client.get("/api/lecture").json())
