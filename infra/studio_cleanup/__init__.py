"""The Studio clean-up custom resource's Lambda code (the folder is the function's asset)."""
