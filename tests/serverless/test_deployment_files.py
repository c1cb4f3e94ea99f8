"""The deployment files: the SAM template passes cfn-lint and `sam validate --lint`, and
docker-compose.yml passes the compose specification's schema. Docker itself does not run here,
so the compose stack is checked, not started."""
import os
import subprocess

from conftest import ROOT, VENV_BIN


def run(*command):
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_sam_template_passes_cfn_lint():
    out = run(os.path.join(VENV_BIN, "cfn-lint"), "template.yaml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_sam_template_passes_sam_validate_lint():
    out = run(os.path.join(VENV_BIN, "sam"), "validate", "--lint", "--region", "us-east-1",
              "--template-file", "template.yaml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_compose_file_matches_the_compose_specification():
    validator = os.path.join(ROOT, ".venv-compose", "bin", "check-jsonschema")
    out = run(validator, "--builtin-schema", "vendor.compose-spec", "docker-compose.yml")
    assert out.returncode == 0, out.stdout + out.stderr
