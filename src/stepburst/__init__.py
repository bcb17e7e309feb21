"""stepburst: a serverless batch coordinator for AWS."""

__version__ = "0.1.0"
