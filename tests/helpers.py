"""Paths and small helpers every test module shares (conftest.py cannot be imported by name)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_REPOSITORY = ROOT / "model_repository"
GPU_HOSTS = Path(__file__).resolve().parent / "fixtures" / "gpu-hosts"


def dotenv(path: Path = ROOT / ".env") -> dict[str, str]:
    """The KEY=VALUE settings of .env (compose's own file), comments and blank lines skipped."""
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def write(folder: Path, name: str, content: str | bytes) -> Path:
    """A file in FOLDER holding CONTENT (bytes as they are, text as UTF-8)."""
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def error_line(excinfo) -> str:
    """The InputError's line, which must be one line."""
    line = str(excinfo.value)
    assert "\n" not in line
    return line
