"""What the results show: tables, embeddings and their measures, the report, predictions."""
