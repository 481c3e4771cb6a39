"""Integration tests: they start real servers (tansu, Redis, Milvus-lite) through LocalStack."""
