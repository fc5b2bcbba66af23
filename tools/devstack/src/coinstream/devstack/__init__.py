"""Local development stack: broker, database, simulator and the demo runner."""
