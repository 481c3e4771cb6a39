"""Streaming side: settings, records, ports (Redis, Milvus), the recall core and its faces."""
