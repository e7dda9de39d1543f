"""blockchain.com: the poller, its live and replay sources, and synthetic recordings."""
