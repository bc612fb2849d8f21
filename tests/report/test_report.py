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


def test_redrawn_report_keeps_the_sections_the_run_added(tmp_path):
    from gradwise.report import Section, plot_curves

    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in _records()))
    extra_png = plot_curves({"a": ([1, 2], [3.0, 1.0])}, tmp_path / "special.png")
    lead = Section("The point", text="four rates", tables=[("t", [{"run": "x", "acc": 0.5}])],
                   images=[(extra_png, "Four rates compared")])  # fmt: skip
    write_report(tmp_path, title="my demo", lead=[lead], extra=[Section("After", pre="p")])
    first = (tmp_path / "report.html").read_text()
    # what `gradwise report DIR` does: no sections given, the stored ones come back
    write_report(tmp_path)
    again = (tmp_path / "report.html").read_text()
    assert again == first
    assert "<title>my demo</title>" in again
    assert again.index("<h2>The point</h2>") < again.index("<h2>Training curves</h2>")
    assert again.index("<h2>Training curves</h2>") < again.index("<h2>After</h2>")
    assert 'alt="Four rates compared"' in again
    # a run directory moved elsewhere still finds its plots (stored relative to it)
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    tmp_path.rename(moved)
    write_report(moved)
    assert 'alt="Four rates compared"' in (moved / "report.html").read_text()


def test_tables_drop_empty_columns_and_results_group_by_keys():
    from gradwise.report import Section, render_html
    from gradwise.report._html import _results_tables

    results = {
        "before": {"exact_match": 0.0, "n": 4},
        "after": {"exact_match": 1.0, "n": 4},
        "data": {"train_examples": 4, "packed_attention": None},
    }
    tables = _results_tables(results)
    assert tables[0] == ("final metrics", [{"split": "before", "exact_match": 0.0, "n": 4},
                                           {"split": "after", "exact_match": 1.0, "n": 4}])  # fmt: skip
    assert tables[1] == ("data", [{"": "train_examples", "value": 4},
                                  {"": "packed_attention", "value": None}])  # fmt: skip
    page = render_html("t", [Section("s", tables=[("", [{"a": 1, "b": None}, {"a": 2, "b": ""}])])])
    assert "<th>a</th>" in page and "<th>b</th>" not in page
    assert '<div class="table"><table>' in page  # a wide table scrolls in its box


def test_captions_are_words_not_file_stems():
    from gradwise.report._html import caption

    assert caption("plots/step_loss.png") == "Training loss per step"
    assert caption("plots/lr.png") == "Learning rate per step"
    assert caption("plots/val_f1.png") == "Val f1"


def test_step_loss_marks_the_kept_epoch_not_each_checkpoint():
    from gradwise.report._plots import _kept_epoch

    epochs = [{"type": "epoch", "epoch": e, "step": 10 * e, "val_loss": v}
              for e, v in zip(range(1, 5), (1.0, 0.5, 0.7, 0.9))]  # fmt: skip
    ckpts = [{"type": "event", "kind": "checkpoint", "epoch": e, "step": 10 * e} for e in (1, 2, 3)]
    # no restore event: the epoch of the lowest val_loss is the one marked
    assert _kept_epoch(epochs, ckpts) == (2, "best val_loss: epoch 2")
    restored = {"type": "event", "kind": "restore_best", "epoch": 4, "step": 40, "best_epoch": 2}
    assert _kept_epoch(epochs, [*ckpts, restored]) == (2, "restored: epoch 2")
    guard = {"type": "event", "kind": "best_weights", "epoch": 3, "step": 40,
             "monitor": "val_loss", "restored": True}  # fmt: skip
    assert _kept_epoch(epochs, [*ckpts, guard]) == (3, "restored: epoch 3 (best val_loss)")
    assert _kept_epoch(epochs[:1], ckpts) is None  # one epoch: nothing to choose
