"""Storage: peewee on SQLite, migrations, named queries, the write gate, backups."""
