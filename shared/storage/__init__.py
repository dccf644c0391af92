"""Where rendered images go: output names from a template, and the stores that keep the files."""

from shared.storage.directory import DirectoryStore
from shared.storage.naming import NameTemplate, sanitize_name

__all__ = ["DirectoryStore", "NameTemplate", "sanitize_name"]
