"""Engine-specific search indexes for the catalog.

PostgreSQL: unaccent and pg_trgm, an immutable unaccent wrapper, a stored
generated tsvector column with a GIN index for the weighted document (name A; category and tags B; description C) and a
trigram GIN index on the folded name. The name expression must stay equal to
apps.products.search._PG_NAME for the index to be used.
MongoDB: a weighted text index. SQLite: nothing (a simpler match).
"""

from django.db import migrations

PG_FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # unaccent() is only STABLE; an index needs an IMMUTABLE function.
    """
    CREATE OR REPLACE FUNCTION shop_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$
    """,
    # A stored generated column: computed once per write, not per query.
    # Django's model does not know it; only the search SQL reads it.
    """
    ALTER TABLE products_product ADD COLUMN search_document tsvector
    GENERATED ALWAYS AS (
      setweight(to_tsvector('simple', shop_unaccent(coalesce(name, ''))), 'A')
      || setweight(to_tsvector('simple', shop_unaccent(coalesce(category, '')
         || ' ' || coalesce(tags::text, ''))), 'B')
      || setweight(to_tsvector('simple', shop_unaccent(coalesce(description, ''))),
         'C')
    ) STORED
    """,
    """
    CREATE INDEX IF NOT EXISTS product_search_document ON products_product
    USING GIN (search_document)
    """,
    """
    CREATE INDEX IF NOT EXISTS product_name_trigram ON products_product
    USING GIN (shop_unaccent(lower(name)) gin_trgm_ops)
    """,
    "CREATE INDEX IF NOT EXISTS product_tags ON products_product USING GIN (tags)",
]
PG_BACKWARD = [
    "DROP INDEX IF EXISTS product_tags",
    "DROP INDEX IF EXISTS product_name_trigram",
    "DROP INDEX IF EXISTS product_search_document",
    "ALTER TABLE products_product DROP COLUMN IF EXISTS search_document",
    "DROP FUNCTION IF EXISTS shop_unaccent(text)",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for statement in PG_FORWARD:
            schema_editor.execute(statement)
    elif vendor == "mongodb":  # pragma: no cover - runs where MONGODB_URI is set
        from pymongo import ASCENDING, TEXT, IndexModel

        product = apps.get_model("products", "Product")
        collection = schema_editor.get_collection(product._meta.db_table)
        collection.create_indexes(
            [
                IndexModel(
                    [
                        ("name", TEXT),
                        ("category", TEXT),
                        ("tags", TEXT),
                        ("description", TEXT),
                    ],
                    name="product_text",
                    weights={"name": 10, "category": 4, "tags": 4, "description": 1},
                    default_language="none",
                ),
                IndexModel([("tags", ASCENDING)], name="product_tags"),
            ]
        )


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for statement in PG_BACKWARD:
            schema_editor.execute(statement)
    elif vendor == "mongodb":  # pragma: no cover
        product = apps.get_model("products", "Product")
        collection = schema_editor.get_collection(product._meta.db_table)
        collection.drop_index("product_text")
        collection.drop_index("product_tags")


class Migration(migrations.Migration):
    dependencies = [("products", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
