-- docker-compose: the DuckLake catalog's own database, beside the shop's
CREATE DATABASE lakehouse;
