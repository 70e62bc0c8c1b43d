"""The Spring-2026 course API (job submission, a seconds budget): its wire schemas."""
