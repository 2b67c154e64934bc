"""Named profiles: an INI file `config` in the user's config dir (as `~/.aws/config` or
rclone.conf), one section per profile, holding where and as whom nxup works: the server URL, the
user, the target folder, the admin's S3 settings (an AWS profile's name, never keys) and the
start-up cleanup's age. Never a password or a token: those stay in `tokens` (see `token_store`).

The dir is `NXUP_CONFIG_DIR`, else platformdirs' user config dir for nxup (mode 0700); the
files in it are 0600.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_DIR_ENV = "NXUP_CONFIG_DIR"
PROFILE_ENV = "NXUP_PROFILE"
CONFIG_FILENAME = "config"
DEFAULT_PROFILE = "default"
# What a profile may hold, with what each key is.
PROFILE_KEYS = {
    "url": "the Nuxeo URL, e.g. https://host/nuxeo",
    "user": "the Nuxeo user",
    "target": "the Nuxeo folder `nxup upload` sends to when --to is not given",
    "s3_bucket": "the bucket, for admin access direct to S3 (nxup stale)",
    "s3_endpoint": "the S3 endpoint URL, for S3-compatible stores",
    "s3_region": "the S3 region",
    "s3_profile": "the AWS profile holding the admin's keys (its name; the keys stay with AWS)",
    "stale_after": "how long nxup's own unresumed uploads are kept before the start-up cleanup aborts them",
}


class ProfileError(ValueError):
    """A profile file that cannot be read or written, or a value it may not hold."""


def config_dir() -> Path:
    """$NXUP_CONFIG_DIR, else the platform's user config dir for nxup."""
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("nxup"))


def private_dir(directory: Path) -> Path:
    """`directory`, made if missing, readable by its owner only."""
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
        directory.chmod(0o700)  # mkdir's mode goes through the umask
    return directory


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, in a file that is 0600 from its first byte."""
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_ini(path: Path) -> configparser.ConfigParser:
    """An INI file as written by `write_private`; a missing file is an empty one."""
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00none")
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ProfileError(f"{path}: cannot be read ({exc})") from exc
    return parser


def ini_text(parser: configparser.ConfigParser) -> str:
    import io

    buffer = io.StringIO()
    parser.write(buffer)
    return buffer.getvalue()


@dataclass
class Profiles:
    """The profile file, read once; `save` writes it back whole."""

    path: Path
    _parser: configparser.ConfigParser = field(repr=False)

    @classmethod
    def load(cls, directory: Path | None = None) -> Profiles:
        path = (directory or config_dir()) / CONFIG_FILENAME
        return cls(path, read_ini(path))

    def names(self) -> list[str]:
        return self._parser.sections()

    def get(self, name: str) -> dict[str, str] | None:
        """The profile's known keys with a value, or None when there is no such profile."""
        if not self._parser.has_section(name):
            return None
        section = self._parser[name]
        return {key: section[key] for key in PROFILE_KEYS if section.get(key, "").strip()}

    def set(self, name: str, **values: str | None) -> None:
        """Set (or, with None or "", remove) keys of profile `name`, making it if needed."""
        unknown = set(values) - set(PROFILE_KEYS)
        if unknown:
            raise ProfileError(f"a profile holds no {', '.join(sorted(unknown))} (it holds {', '.join(PROFILE_KEYS)})")
        if not name or any(char in name for char in "[]\n\r") or name != name.strip():
            raise ProfileError(f"{name!r} cannot name a profile")
        if not self._parser.has_section(name):
            self._parser.add_section(name)
        for key, value in values.items():
            if value and ("\n" in value or "\r" in value):
                raise ProfileError(f"{key}: a value of one line only")
            if value:
                self._parser[name][key] = value
            else:
                self._parser.remove_option(name, key)

    def save(self) -> None:
        write_private(self.path, ini_text(self._parser))


__all__ = [
    "CONFIG_DIR_ENV",
    "CONFIG_FILENAME",
    "DEFAULT_PROFILE",
    "PROFILE_ENV",
    "PROFILE_KEYS",
    "ProfileError",
    "Profiles",
    "config_dir",
    "private_dir",
    "read_ini",
    "write_private",
]
