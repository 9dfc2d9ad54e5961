"""Load realistic, deterministic demo products.

The same --count and --seed give the same products (ids demo-0000001...),
and loading again skips those already there, so the command can be rerun.
"""

import random
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import connections, router
from django.utils import timezone
from tqdm import tqdm

from apps.products import db
from apps.products.models import Product

CATALOG = {
    # category: (nouns, tags, attribute makers)
    "Laptops": (
        ["Laptop", "Notebook", "Ultrabook", "Chromebook"],
        ["computer", "portable", "work", "gaming"],
        {
            "ram_gb": [8, 16, 32, 64],
            "screen_in": [13.3, 14, 15.6, 16],
            "os": ["linux", "windows", "chromeos"],
        },
    ),
    "Phones": (
        ["Smartphone", "Phone", "Mini Phone"],
        ["mobile", "5g", "camera", "android"],
        {
            "storage_gb": [64, 128, 256, 512],
            "colour": ["black", "white", "blue", "green"],
        },
    ),
    "Audio": (
        ["Headphones", "Earbuds", "Speaker", "Soundbar", "Turntable"],
        ["music", "wireless", "bluetooth", "noise-cancelling"],
        {"wireless": [True, False], "colour": ["black", "silver", "red"]},
    ),
    "Kitchen": (
        [
            "Kettle",
            "Toaster",
            "Blender",
            "Coffee Grinder",
            "Espresso Machine",
            "Frying Pan",
        ],
        ["home", "cooking", "breakfast", "coffee"],
        {
            "voltage": [110, 220, 230],
            "material": ["steel", "ceramic", "cast iron", "aluminium"],
        },
    ),
    "Clothing": (
        ["T-Shirt", "Hoodie", "Jacket", "Jeans", "Sweater", "Raincoat"],
        ["fashion", "cotton", "winter", "summer"],
        {
            "size": ["XS", "S", "M", "L", "XL"],
            "colour": ["navy", "olive", "grey", "crème"],
        },
    ),
    "Books": (
        ["Cookbook", "Novel", "Field Guide", "Atlas", "Handbook"],
        ["reading", "paperback", "hardcover", "gift"],
        {"pages": [120, 240, 320, 480, 640], "language": ["en", "fr", "de", "es"]},
    ),
    "Garden": (
        ["Hose", "Trowel", "Planter", "Lawn Mower", "Pruning Shears"],
        ["outdoor", "plants", "tools", "summer"],
        {"material": ["plastic", "steel", "wood"], "colour": ["green", "terracotta"]},
    ),
    "Sports": (
        ["Running Shoes", "Yoga Mat", "Bike Helmet", "Tennis Racket", "Water Bottle"],
        ["fitness", "outdoor", "training", "running"],
        {"size": ["S", "M", "L"], "colour": ["black", "orange", "teal"]},
    ),
}
ADJECTIVES = [
    "Classic",
    "Compact",
    "Deluxe",
    "Eco",
    "Everyday",
    "Nordic",
    "Pro",
    "Rugged",
    "Smart",
    "Soft",
    "Swift",
    "Ultra",
    "Vintage",
    "Zen",
    "Crème",
    "Café",
]
BRANDS = [
    "Acme",
    "Borealis",
    "Cobalt",
    "Dune",
    "Ember",
    "Fjord",
    "Granite",
    "Helix",
    "Ion",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Mistral",
    "Nimbus",
    "Orchid",
    "Pioneer",
]
DESCRIPTIONS = [
    "Built to last, with a two-year warranty.",
    "A favourite of reviewers for its value.",
    "Designed in Europe, made from recycled materials where possible.",
    "Light, sturdy and easy to clean.",
    "Pairs well with the rest of the {brand} range.",
    "Ideal as a gift; arrives in plastic-free packaging.",
]


def make_product(index: int, rng: random.Random, now) -> Product:
    category = rng.choice(sorted(CATALOG))
    nouns, tags, attribute_makers = CATALOG[category]
    brand = rng.choice(BRANDS)
    noun = rng.choice(nouns)
    name = f"{brand} {rng.choice(ADJECTIVES)} {noun}"
    description = f"The {name} from our {category.lower()} range. " + " ".join(
        rng.sample(DESCRIPTIONS, 2)
    ).format(brand=brand)
    price = Decimal(rng.randint(199, 199_999)) / 100
    return Product(
        id=f"demo-{index:07d}",
        name=name,
        description=description,
        price=price.quantize(Decimal("0.01")),
        stock=rng.choice([0, 3, 10, 25, 50, 100, 250]),
        category=category,
        tags=sorted(rng.sample(tags, 2)),
        images=[f"https://images.shop.example/demo/{index:07d}.jpg"],
        attributes={
            key: rng.choice(values) for key, values in attribute_makers.items()
        },
        sold_count=rng.randint(0, 500),
        created_at=now,
        updated_at=now,
    )


class Command(BaseCommand):
    help = "Load deterministic demo products into the catalog."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--batch-size", type=int, default=2000)

    def handle(self, *args, count, seed, batch_size, **options):
        rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
        now = timezone.now()
        alias = router.db_for_write(Product)
        # MongoDB has no ON CONFLICT: skip existing ids by reading them first.
        skip_existing = connections[alias].vendor == "mongodb"
        existing = (
            set(Product.objects.values_list("id", flat=True))
            if skip_existing
            else set()
        )
        created_before = Product.objects.count()
        batch = []
        progress = tqdm(total=count, unit="products", disable=options["verbosity"] < 1)
        for index in range(1, count + 1):
            product = make_product(index, rng, now)
            if product.id not in existing:
                batch.append(product)
            if len(batch) >= batch_size:
                self._write(batch, skip_existing)
                batch = []
            progress.update(1)
        if batch:
            self._write(batch, skip_existing)
        progress.close()
        connection = connections[alias]
        if connection.vendor == "postgresql":
            # Fresh statistics, or the planner guesses row counts for the
            # new rows and picks poor plans until autovacuum catches up; and
            # VACUUM: it marks the new pages all-visible (the list indexes
            # then answer without reading the table) and moves the GIN
            # indexes' pending entries into the index proper (every search
            # scans what is pending), the search vocabulary's too (migration
            # 0008). VACUUM cannot run in a transaction.
            vacuum = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
            with connection.cursor() as cursor:
                cursor.execute(
                    f"{vacuum} {Product._meta.db_table}, products_search_word"
                )
        added = Product.objects.count() - created_before
        self.stdout.write(f"Catalog: {added} products added ({count} requested).")

    def _write(self, batch, skip_existing):
        # Rows already there are skipped, not changed; a product created
        # here has no detail cached, but list and search pages may show
        # the catalog without it (ADR 0027): forgetting kills them.
        with db.touched(*(product.id for product in batch)):
            if skip_existing:
                Product.objects.bulk_create(batch)
            else:
                Product.objects.bulk_create(batch, ignore_conflicts=True)
