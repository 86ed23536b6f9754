"""Click commands of the ``keras-attention`` tool (thin wrappers over the library)."""
