"""Every command line: no prefix matching (`--method` must not become `--methods`), a help text on every flag,
a fast `--help` for pretraining, and clean errors for missing folders."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for p in [*ROOT.glob("src/*/*/**/*.py"), *ROOT.glob("benchmarks/*.py")]
                 if "/test/" not in str(p) and ".venv" not in p.parts)


def parser_calls():
    for path in SOURCES:
        text = path.read_text()
        if "argparse" not in text:
            continue
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                yield path, node


def test_every_parser_turns_off_prefix_matching():
    """`allow_abbrev=False` on every ArgumentParser and sub-command parser (subparsers do not inherit it)."""
    seen, missing = 0, []
    for path, call in parser_calls():
        if call.func.attr in ("ArgumentParser", "add_parser"):
            seen += 1
            kw = {k.arg: k.value for k in call.keywords}
            if not (isinstance(kw.get("allow_abbrev"), ast.Constant) and kw["allow_abbrev"].value is False):
                missing.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert seen >= 12, "the scan found too few parsers: is the source list right?"
    assert not missing, "ArgumentParser / add_parser without allow_abbrev=False:\n  " + "\n  ".join(missing)


def test_every_flag_has_a_help_text():
    missing = []
    for path, call in parser_calls():
        if call.func.attr == "add_argument":
            help_kw = next((k.value for k in call.keywords if k.arg == "help"), None)
            if help_kw is None or (isinstance(help_kw, ast.Constant) and not help_kw.value):
                flag = call.args[0].value if call.args and isinstance(call.args[0], ast.Constant) else "?"
                missing.append(f"{path.relative_to(ROOT)}:{call.lineno} {flag}")
    assert not missing, "add_argument without help=:\n  " + "\n  ".join(missing)


def test_a_flag_prefix_is_an_error_not_another_flag(tmp_path, capsys):
    """`grasp-experiments run --method ours` used to become `--methods ours` and start a 35-run grid."""
    from grasp_experiments.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["run", "--method", "ours", "--steps", "5", "--out", str(tmp_path / "exp")])
    assert stop.value.code == 2
    assert "unrecognized arguments: --method ours" in capsys.readouterr().err
    assert not (tmp_path / "exp").exists()
    from grasp_bringup.demo import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--attempt", "3"])  # not --attempts
    assert "unrecognized arguments: --attempt" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["report", "novel"])
def test_missing_runs_folder_is_a_clean_error_and_creates_nothing(tmp_path, capsys, command):
    from grasp_experiments.cli import main

    out = tmp_path / "report"
    argv = [command, "--runs", str(tmp_path / "missing")] + (["--out", str(out)] if command == "report" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and "grasp-experiments run" in err
    assert "Errno" not in err and "Traceback" not in err
    assert not out.exists()
    (tmp_path / "not_an_experiment").mkdir()
    argv[2] = str(tmp_path / "not_an_experiment")
    assert main(argv) == 2
    assert "not an experiment folder" in capsys.readouterr().err and not out.exists()


def test_pretrain_help_does_not_import_torch():
    """`python -m grasp_core.pretrain --help` answers before torch is imported (it took 8.5 s)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "grasp_core.pretrain", "--help"],
                            capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--dataset" in result.stdout and "--profile" in result.stdout and "kl" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")}
    assert "grasp_core.pretrain_cli" in imported
    assert not {m for m in imported if m.split(".")[0] in ("torch", "cv2", "numpy")}, "heavy modules imported"
    bad = subprocess.run([sys.executable, "-m", "grasp_core.pretrain", "--dataset", "x", "--out", "y.safetensors",
                          "--epoch", "3"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unrecognized arguments: --epoch" in bad.stderr
