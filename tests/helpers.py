"""Paths every test module shares (conftest.py files cannot be imported by name from subfolders)."""

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
