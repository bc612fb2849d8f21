import json

from gradwise.report import plot_history, read_metrics, write_report


def _records():
    recs = []
    for e in range(1, 4):
        recs.append({"type": "step", "epoch": e, "step": e * 10, "batch": 10, "loss": 1.0 / e, "lr": 0.1 / e})
        recs.append(
            {"type": "epoch", "epoch": e, "step": e * 10, "train_loss": 1.0 / e, "val_loss": 1.2 / e,
             "train_accuracy": 0.5 + 0.1 * e, "val_accuracy": 0.45 + 0.1 * e, "lr": 0.1 / e}
        )
    recs.append({"type": "event", "kind": "rescue", "epoch": 2, "step": 15, "message": "lr halved"})
    return recs


def test_read_metrics_skips_torn_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"type": "epoch", "epoch": 1}) + "\n{\"type\": \"ep")
    assert read_metrics(path) == [{"type": "epoch", "epoch": 1}]


def test_plot_history_writes_one_png_per_metric(tmp_path):
    paths = plot_history(_records(), tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["accuracy.png", "loss.png", "lr.png", "step_loss.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_is_self_contained(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in _records()))
    (tmp_path / "results.json").write_text(json.dumps({"test": {"loss": 0.3, "accuracy": 0.9}}))
    (tmp_path / "config.yaml").write_text("name: demo\n")
    out = write_report(tmp_path, title="t")
    page = out.read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "lr halved" in page  # events are shown
    assert "accuracy" in page and "name: demo" in page
    assert "src=\"http" not in page and "src='http" not in page
