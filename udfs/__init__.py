"""Python functions used inside Flink, only where SQL cannot express them."""
