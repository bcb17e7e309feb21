"""One adapter module per AWS service stepburst calls.

Each adapter builds its client with :func:`stepburst.aws.client`, speaks in plain Python values
and domain types, and turns every botocore failure into a domain error from
:mod:`stepburst.errors`, raised ``from`` the original: AWS error codes (never message text)
decide the class, and connection problems become :class:`~stepburst.errors.AwsUnavailableError`.

Together with :mod:`stepburst.aws` and :mod:`stepburst.storage` (the S3 adapter, which streams
ranged reads and multipart writes), these are the only modules of the package that import
boto3 or botocore; ``make imports`` checks it.
"""
