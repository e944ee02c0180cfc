"""Instruction data for multimodal (video + IMU) activity models: the JSONL schema, a templated toy set and a
teacher that writes instruction–response pairs with an OpenAI-compatible vision model."""
