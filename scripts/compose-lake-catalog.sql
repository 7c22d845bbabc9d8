-- docker-compose: the DuckLake catalog's and the BI serving databases, beside the shop's
CREATE DATABASE lakehouse;
CREATE DATABASE serving;   -- the marts for BI tools (lakehouse.yml: serving.postgres)
