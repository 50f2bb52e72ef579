"""Local emulator of Infor M3's MI REST API (v1, v2, bulk, ION API OAuth2) over SQLite state."""
