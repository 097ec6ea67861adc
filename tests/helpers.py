"""Paths every test module shares (conftest.py files cannot be imported by name from subfolders)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_REPOSITORY = ROOT / "model_repository"
GPU_HOSTS = Path(__file__).resolve().parent / "fixtures" / "gpu-hosts"
