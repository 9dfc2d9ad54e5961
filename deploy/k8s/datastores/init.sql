-- One PostgreSQL server, one database per alias: default, orders, catalog.
-- Run once by the postgres image, on the first start with an empty volume.
-- Separate databases keep the aliases honest: nothing may depend on two
-- contexts sharing a database (docs/decisions/0002).
CREATE DATABASE shop;
CREATE DATABASE shop_orders;
CREATE DATABASE shop_catalog;
