"""The AWS CDK app (run from a checkout: `cdk synth`)."""

from pathlib import Path

# The checkout the app is run from: the Dockerfile, notebooks/ and the code the stacks stage as assets.
REPO_ROOT = Path(__file__).resolve().parent.parent
