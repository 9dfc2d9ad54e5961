"""PostgreSQL: the catalog's vocabulary, for prefixes and typos (ADR 0028).

``products_search_word`` holds every lexeme of every product's
``search_document``, kept by triggers in the transaction that writes the
product, so a search sees the words of exactly the products it sees. A
trigram index on it finds the known words nearest a misspelt one; its
primary key (byte order, "C") lists the words a prefix stands for.
``shop_search_query`` turns a query's words into the tsquery the search
matches: each word as the known words it is a prefix of (exact lexemes,
which the GIN index intersects far faster than a prefix), or as a prefix
when it stands for too many; a word no product has is replaced by its
nearest known words, and with ``typos`` every word gets them.

The trigram index on product names is dropped: nothing reads it now.
Other engines: nothing (their search needs no vocabulary).
"""

from django.db import migrations

PG_FORWARD = [
    """
    CREATE TABLE products_search_word (word text COLLATE "C" PRIMARY KEY)
    """,
    """
    CREATE INDEX product_search_word_trigram ON products_search_word
    USING GIN (word gin_trgm_ops)
    """,
    # A lexeme as a tsquery operand: quoted, quotes and backslashes escaped.
    r"""
    CREATE FUNCTION shop_lexeme(word text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT '''' || replace(replace(word, '\', '\\'), '''', '''''')
                 || '''' $$
    """,
    # New rows: one statement's words at once (load_catalog's batches);
    # sorted, so two writers adding the same new words cannot deadlock.
    """
    CREATE FUNCTION shop_search_words_of_new_rows() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO products_search_word (word)
      SELECT DISTINCT w.lexeme FROM new_rows, unnest(new_rows.search_document) w
      ORDER BY 1
      ON CONFLICT DO NOTHING;
      RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER product_search_words_insert AFTER INSERT ON products_product
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION shop_search_words_of_new_rows()
    """,
    # Updates: only rows whose text changed (stock, sales and archiving do
    # not reach the words table at all).
    """
    CREATE FUNCTION shop_search_words_of_row() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO products_search_word (word)
      SELECT w.lexeme FROM unnest(NEW.search_document) w
      ORDER BY 1
      ON CONFLICT DO NOTHING;
      RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER product_search_words_update AFTER UPDATE ON products_product
    FOR EACH ROW
    WHEN (OLD.search_document IS DISTINCT FROM NEW.search_document)
    EXECUTE FUNCTION shop_search_words_of_row()
    """,
    """
    CREATE FUNCTION shop_search_words_clear() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      TRUNCATE products_search_word;
      RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER product_search_words_truncate AFTER TRUNCATE ON products_product
    FOR EACH STATEMENT EXECUTE FUNCTION shop_search_words_clear()
    """,
    """
    INSERT INTO products_search_word (word)
    SELECT DISTINCT w.lexeme FROM products_product p, unnest(p.search_document) w
    ON CONFLICT DO NOTHING
    """,
    # The tsquery for a search's words (apps.products.search). Deleted
    # products' words may linger until search_words_prune(): as a prefix's
    # words they match nothing; as typo corrections they take a place.
    """
    CREATE FUNCTION shop_search_query(
      terms text[], typos boolean, max_words integer, max_fixes integer,
      stop_words text[]
    ) RETURNS tsquery
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    AS $$
    DECLARE
      term text;
      words text[];
      own text;
      fixes text;
      part text;
      parts text[] := '{}';
    BEGIN
      FOREACH term IN ARRAY terms LOOP
        -- The known words with this prefix (byte order, as the GIN
        -- index compares a prefix).
        words := array(
          SELECT w.word FROM products_search_word w
          WHERE w.word >= term AND w.word < term || chr(1114111)
          ORDER BY w.word LIMIT max_words + 1);
        IF cardinality(words) > max_words
           OR to_tsquery('simple', term)::text <> '''' || term || '''' THEN
          -- Too many to list, or a word the parser would split: a prefix
          -- (none, if the parser finds no word in it).
          own := nullif(to_tsquery('simple', term || ':*')::text, '');
        ELSIF cardinality(words) > 0 THEN
          own := (SELECT string_agg(shop_lexeme(x), ' | ') FROM unnest(words) x);
        ELSE
          own := NULL;
        END IF;
        fixes := NULL;
        IF typos OR own IS NULL THEN
          -- The known words nearest this one (word similarity at least
          -- pg_trgm.word_similarity_threshold), not those it is a prefix of.
          fixes := (
            SELECT string_agg(shop_lexeme(f.word), ' | ')
            FROM (SELECT w.word FROM products_search_word w
                  WHERE term <% w.word AND NOT starts_with(w.word, term)
                    AND length(w.word) > 1 AND w.word <> ALL (stop_words)
                  ORDER BY similarity(term, w.word) DESC, w.word
                  LIMIT max_fixes) f);
        END IF;
        part := concat_ws(' | ', own, fixes);
        IF part = '' THEN
          RETURN NULL;  -- a word that matches nothing: nothing matches
        END IF;
        parts := parts || ('(' || part || ')');
      END LOOP;
      RETURN array_to_string(parts, ' & ')::tsquery;
    END $$
    """,
    "DROP INDEX IF EXISTS product_name_trigram",
]
PG_BACKWARD = [
    """
    CREATE INDEX IF NOT EXISTS product_name_trigram ON products_product
    USING GIN (shop_unaccent(lower(name)) gin_trgm_ops)
    """,
    "DROP FUNCTION IF EXISTS shop_search_query(text[], boolean, integer, integer,"
    " text[])",
    "DROP TRIGGER IF EXISTS product_search_words_truncate ON products_product",
    "DROP TRIGGER IF EXISTS product_search_words_update ON products_product",
    "DROP TRIGGER IF EXISTS product_search_words_insert ON products_product",
    "DROP FUNCTION IF EXISTS shop_search_words_clear()",
    "DROP FUNCTION IF EXISTS shop_search_words_of_row()",
    "DROP FUNCTION IF EXISTS shop_search_words_of_new_rows()",
    "DROP FUNCTION IF EXISTS shop_lexeme(text)",
    "DROP TABLE IF EXISTS products_search_word",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in PG_FORWARD:
            # No parameters: "%" is SQL here, not a placeholder.
            schema_editor.execute(statement, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in PG_BACKWARD:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("products", "0007_product_rules")]

    operations = [migrations.RunPython(forward, backward)]
