import django.core.validators
import django.db.models.deletion
from django.db import migrations, models

import apps.products.models


class Migration(migrations.Migration):
    """The product rules as field validators and help text (no SQL), and a
    stock adjustment's product as an unconstrained foreign key over the
    same product_id column (state only: the column and its index stay)."""

    dependencies = [
        ("products", "0006_product_incarnation"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="stockadjustment", name="product_id"),
                migrations.AddField(
                    model_name="stockadjustment",
                    name="product",
                    field=models.ForeignKey(
                        db_constraint=False,
                        help_text="Search by name, id or category.",
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="products.product",
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterField(
            model_name="product",
            name="attributes",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Up to 50 names (a letter, then letters, digits or _) with a value each: text up to 200 characters, a number, true, false or null.",
            ),
        ),
        migrations.AlterField(
            model_name="product",
            name="id",
            field=models.CharField(
                default=apps.products.models.new_product_id,
                help_text="Letters, digits, '.', '_' or '-'; chosen once, in URLs.",
                max_length=64,
                primary_key=True,
                serialize=False,
                validators=[apps.products.models.validate_product_id],
            ),
        ),
        migrations.AlterField(
            model_name="product",
            name="images",
            field=models.JSONField(
                blank=True, default=list, help_text="Up to 10 http(s) URLs."
            ),
        ),
        migrations.AlterField(
            model_name="product",
            name="stock",
            field=models.PositiveIntegerField(
                default=0,
                help_text="Changes only through stock adjustments and orders.",
                validators=[django.core.validators.MaxValueValidator(1000000000)],
            ),
        ),
        migrations.AlterField(
            model_name="product",
            name="tags",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Up to 20 words or phrases, each up to 50 characters; stored lower-case.",
            ),
        ),
        migrations.AlterField(
            model_name="stockadjustment",
            name="delta",
            field=models.IntegerField(
                help_text="Units added (negative: removed).",
                validators=[
                    django.core.validators.MinValueValidator(-1000000000),
                    django.core.validators.MaxValueValidator(1000000000),
                ],
            ),
        ),
    ]
