import dataclasses
from pathlib import Path

from c3seg.cli import main
from c3seg.config import Config, PretrainConfig, TrainConfig
from c3seg.config_doc import field_doc, markdown, sections

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_committed_configuration_md_is_the_generated_text():
    # regenerate with: c3seg config show --markdown > docs/configuration.md
    assert DOCS.read_text() == markdown(Config())


def test_every_setting_has_a_doc_from_its_comment():
    rows = [r for _, _, settings in sections(Config()) for r in settings]
    assert len(rows) == sum(
        len(dataclasses.fields(v)) if dataclasses.is_dataclass(v) else 1
        for v in (getattr(Config(), f.name) for f in dataclasses.fields(Config))
    )
    assert [r.name for r in rows if not r.doc] == []
    assert field_doc(TrainConfig, "compile").startswith("torch.compile the training network")  # its line's comment
    assert field_doc(TrainConfig, "head_lr_mult").startswith(
        "learning-rate multiple of the output layer"
    )  # above
    assert field_doc(PretrainConfig, "lr") == field_doc(
        TrainConfig, "lr"
    )  # redefined without one: the base's


def test_config_show_prints_values_ranges_defaults_and_docs(capsys):
    assert main(["config", "show", "--config", "benchmark", "seg.epochs=3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for section in ("[data]", "[pretrain]", "[lnet]", "[cam]", "[seg]", "[pnet]", "[labels]", "[top level]"):
        assert any(line.startswith(section) for line in lines)
    line = {x.split(" = ")[0].strip(): x for x in lines if x.startswith("  ")}
    assert len(line) == sum(len(rows) for _, _, rows in sections(Config()))
    assert line["lnet.epochs"].split("#")[0].strip() == "lnet.epochs = 100"
    assert line["lnet.epochs"].endswith("# passes over the training images [>= 0; default 20]")
    assert line["seg.epochs"].split("#")[0].strip() == "seg.epochs = 3"
    assert line["data.holdout"].endswith("[0.0 .. 0.9]") and "default" not in line["data.holdout"]
    assert line["cam.pool"].split("#")[0].strip() == "cam.pool = gmp" and "[default gap]" in line["cam.pool"]
    assert main(["config", "show", "--markdown"]) == 0
    assert capsys.readouterr().out == DOCS.read_text()
