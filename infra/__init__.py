"""The AWS CDK app (Python) that deploys what the job needs: `cdk synth` / `cdk deploy` from the repo root."""
