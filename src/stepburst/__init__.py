"""stepburst: a serverless batch coordinator for AWS."""

from importlib.metadata import PackageNotFoundError, version

try:
    # Installed with pip: the version setuptools-scm read from the git tags.
    __version__ = version("stepburst")
except PackageNotFoundError:
    # The Lambda layer carries the package's files without its metadata.
    __version__ = "0.1.0"
